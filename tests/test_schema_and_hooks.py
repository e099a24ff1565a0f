"""The shipped JSON Schemas describe every property; `numsync schema` prints them; the pre-commit hooks name real commands."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from numsync.cli import main
from numsync.core.schema import load_schema

ROOT = Path(__file__).resolve().parents[1]


def _resolve(root: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema and "description" not in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def described(root: dict[str, Any]) -> Iterator[tuple[str, bool]]:
    """(JSON pointer, has a description) for every property and every per-key schema (additionalProperties)."""

    def walk(node: Any, pointer: str) -> Iterator[tuple[str, bool]]:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                yield f"{pointer}/properties/{name}", "description" in _resolve(root, sub)
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                yield f"{pointer}/additionalProperties", "description" in _resolve(root, extra)
            for key, sub in node.items():
                yield from walk(sub, f"{pointer}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                yield from walk(sub, f"{pointer}/{i}")

    return walk(root, "#")


@pytest.mark.parametrize("name", ["desired", "config"])
def test_every_property_has_a_description(name: str) -> None:
    found = list(described(load_schema(name)))
    assert len(found) > 10  # the walk reached the nested properties
    assert [pointer for pointer, ok in found if not ok] == []


def test_the_walk_notices_a_missing_description() -> None:
    schema = {
        "$defs": {"x": {"type": "string"}},
        "properties": {"a": {"description": "A", "properties": {"b": {"$ref": "#/$defs/x"}}}},
    }
    assert [p for p, ok in described(schema) if not ok] == ["#/properties/a/properties/b"]


@pytest.mark.parametrize(("args", "name"), [([], "desired"), (["--config"], "config")])
def test_schema_command_prints_the_shipped_schema(args: list[str], name: str) -> None:
    result = CliRunner().invoke(main, ["schema", *args], catch_exceptions=False)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(
        (ROOT / "numsync" / "schema" / f"{name}.schema.json").read_text("utf-8")
    )


# --------------------------------------------------------------------------- pre-commit


def hooks() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text("utf-8"))
    assert isinstance(data, list)
    return {hook["id"]: hook for hook in data}


def test_the_hooks_exist_and_run_python() -> None:
    found = hooks()
    assert set(found) == {"numsync-validate", "numsync-fmt"}
    for hook in found.values():
        assert hook["language"] == "python"
        assert hook["name"] and hook["entry"]
    assert found["numsync-validate"]["pass_filenames"] is False


@pytest.mark.parametrize("hook_id", ["numsync-validate", "numsync-fmt"])
def test_each_hook_entry_is_a_real_numsync_command_with_real_options(hook_id: str) -> None:
    program, command_name, *options = shlex.split(hooks()[hook_id]["entry"])
    assert program == "numsync"  # the console script in pyproject.toml
    scripts = (ROOT / "pyproject.toml").read_text("utf-8")
    assert 'numsync = "numsync.cli:run"' in scripts
    command = main.commands[command_name]
    known = {opt for param in command.params if isinstance(param, click.Option) for opt in param.opts}
    assert set(options) <= known, options
    with click.Context(main) as ctx:  # the options parse
        command.make_context(command_name, list(options), parent=ctx)


@pytest.mark.parametrize(
    ("hook_id", "path", "runs"),
    [
        ("numsync-validate", "numsync.yaml", True),
        ("numsync-validate", "desired/ocp-qa.yaml", True),
        ("numsync-validate", "README.md", False),
        ("numsync-fmt", "desired/ocp-qa.yaml", True),
        ("numsync-fmt", "teams/x/desired/sub/a.yml", True),
        ("numsync-fmt", "numsync.yaml", False),
        ("numsync-fmt", ".gitlab-ci.yml", False),
    ],
)
def test_hooks_run_on_the_right_files(hook_id: str, path: str, runs: bool) -> None:
    assert bool(re.search(hooks()[hook_id]["files"], path)) is runs


SHIPPED_SCHEMAS = sorted(
    p.name.removesuffix(".schema.json")
    for p in (Path(__file__).parents[1] / "numsync" / "schema").glob("*.schema.json")
)


@pytest.mark.parametrize("name", SHIPPED_SCHEMAS)
def test_every_shipped_schema_is_valid_against_its_metaschema(name: str) -> None:
    """numsync does not check its own schemas at run time (it cost every command ~0.1 s): this does."""
    import jsonschema

    schema = load_schema(name)
    jsonschema.validators.validator_for(schema).check_schema(schema)
