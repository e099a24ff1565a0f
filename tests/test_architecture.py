"""The layout's rules, checked over the source by AST: layering, where the vendor's words live, GC tuning, private names.

Each rule says what a reader may rely on; a failure names the file, the line and what to change.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from numsync.core.desired import RESERVED_CLEAR_MARKER
from numsync.core.model import Field
from numsync.ocp import vocabulary

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "numsync"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if ".venv" not in p.parts)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text("utf-8"), str(path))


def _imports(path: Path) -> Iterator[tuple[int, set[str]]]:
    """(line, the modules an import may name) for every import in ``path``, relative ones resolved.

    ``from a.b import c`` may import the module ``a.b.c`` or the name ``c`` of ``a.b``: both are given.
    """
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            yield node.lineno, {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            yield node.lineno, {base} | {f"{base}.{alias.name}" for alias in node.names}


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _numsync_imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of each numsync module ``path`` imports (for ``from x import y``: x, or x.y when y is a module)."""
    for line, names in _imports(path):
        for name in sorted(names):
            if (name == "numsync" or name.startswith("numsync.")) and _is_module(name):
                yield line, name


def _is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (ROOT / relative).with_suffix(".py").is_file() or (ROOT / relative / "__init__.py").is_file()


CORE_MAY_NOT = ("numsync.ocp", "numsync.workflow", "numsync.config", "numsync.reports", "numsync.cli")
CORE_MAY_NOT += ("numsync.emulator", "numsync.gitlab")
#: Modules every layer may use: they import nothing above the core (pinned below).
LEAVES = ("numsync.errors", "numsync.redaction")
OCP_MAY = ("numsync.core", "numsync.ocp", *LEAVES)


def test_core_imports_nothing_above_it() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in _sources(PACKAGE / "core")
        for line, module in _numsync_imports(path)
        if module == "numsync" or _within(module, CORE_MAY_NOT)  # the package itself pulls in every layer
    ]
    assert found == [], "numsync.core is the typed domain; move the code that needs these up a layer"


def test_ocp_imports_only_core_errors_and_itself() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in _sources(PACKAGE / "ocp")
        for line, module in _numsync_imports(path)
        if not _within(module, OCP_MAY)
    ]
    assert found == [], "numsync.ocp may use numsync.core, numsync.errors and numsync.redaction only"


@pytest.mark.parametrize("leaf", LEAVES)
def test_the_shared_modules_import_nothing_above_the_core(leaf: str) -> None:
    path = ROOT / Path(*leaf.split(".")).with_suffix(".py")
    assert [m for _, m in _numsync_imports(path) if not _within(m, ("numsync.core",))] == []


def test_the_emulator_is_reached_only_through_its_process_and_the_cli_command() -> None:
    allowed = {"numsync.emulator.process"}
    found = []
    for path in _sources(PACKAGE):
        if path.is_relative_to(PACKAGE / "emulator"):
            continue
        for line, module in _numsync_imports(path):
            if not _within(module, ("numsync.emulator",)) or module in allowed:
                continue
            if path == PACKAGE / "cli.py" and module == "numsync.emulator.command":
                continue  # registers the `numsync emulator` command
            found.append(f"{path.relative_to(ROOT)}:{line}: imports {module}")
    assert found == [], "start the emulator with numsync.emulator.process.EmulatorProcess"


def test_the_rules_see_imports() -> None:
    """The checks above would pass over a tree they cannot read; this one pins that they read it."""
    rehearse = {m for _, m in _numsync_imports(PACKAGE / "workflow" / "rehearse.py")}
    assert "numsync.emulator.process" in rehearse and "numsync.emulator.process.EmulatorProcess" not in rehearse
    assert any(_within(m, ("numsync.core",)) for _, m in _numsync_imports(PACKAGE / "ocp" / "vocabulary.py"))
    assert _within("numsync.ocp.client", CORE_MAY_NOT) and not _within("numsync.ocpx", CORE_MAY_NOT)


COLUMNS = frozenset(vocabulary.EXPORT_COLUMNS) | frozenset(vocabulary.OPERATION_COLUMNS)


def test_no_csv_column_is_spelled_outside_the_vendor_modules() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}:{node.col_offset + 1}: {node.value!r}"
        for path in _sources(PACKAGE)
        if not path.is_relative_to(PACKAGE / "ocp") and not path.is_relative_to(PACKAGE / "emulator")
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.Constant) and node.value in COLUMNS
    ]
    assert found == [], "use the constants of numsync.ocp.vocabulary (COLUMN[Field.…], NUMBER, GROUP_ID, …)"
    assert {"APPLICATION_TAG", "COUNTRY", "LOCALE", "MINIAPP_ID", "NOTE", "OPERATION", "PROVIDER"} <= COLUMNS


def _gc_switches(path: Path) -> Iterator[int]:
    switches = ("freeze", "disable")
    for node in ast.walk(_tree(path)):
        used = isinstance(node, ast.Attribute) and node.attr in switches and ast.unparse(node.value) == "gc"
        imported = (
            isinstance(node, ast.ImportFrom) and node.module == "gc" and any(a.name in switches for a in node.names)
        )
        if used or imported:
            yield node.lineno


def test_only_gctuning_switches_the_garbage_collector() -> None:
    paths = [p for folder in ("numsync", "benchmarks", "scripts", "tests") for p in _sources(ROOT / folder)]
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in paths
        if path != PACKAGE / "gctuning.py"
        for line in _gc_switches(path)
    ]
    assert found == [], "gc.freeze/gc.disable change the whole process: call numsync.gctuning from an entry point"
    assert list(_gc_switches(PACKAGE / "gctuning.py")), "the rule no longer sees the one allowed call"


def test_tests_use_public_names_only() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {node.module}.{alias.name}"
        for path in _sources(ROOT / "tests")
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("numsync")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert found == [], "test through the public function, or make the name public where it is meant to be used"


def _schema(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((PACKAGE / "schema" / f"{name}.schema.json").read_text("utf-8"))
    return loaded


#: Keys of a desired number that are not OCP fields: the Create-only carrier and a validation switch.
NON_FIELD_NUMBER_KEYS = {"provider", "allow_possible"}


def test_the_schemas_the_vocabulary_and_field_name_the_same_fields() -> None:
    fields = {f.value for f in Field}
    desired = _schema("desired")["$defs"]
    assert isinstance(desired, dict)
    assert set(desired["number"]["properties"]) - NON_FIELD_NUMBER_KEYS == fields
    for f in Field:  # each field's description starts with the column it is
        assert desired["fields"][f.value]["description"].startswith(f"{vocabulary.COLUMN[f]}:"), f
    assert set(vocabulary.COLUMN) == set(Field)
    assert all(
        column in vocabulary.EXPORT_COLUMNS and column in vocabulary.OPERATION_COLUMNS
        for column in vocabulary.COLUMN.values()
    )
    config = json.dumps(_schema("config"))
    enums = _ignore_fields_enums(_schema("config"))
    assert len(enums) >= 2 and "ignore_fields" in config  # the environment's and the group's
    assert all(set(enum) == fields for enum in enums)


def _ignore_fields_enums(node: object) -> list[list[str]]:
    if isinstance(node, dict):
        found = [node["ignore_fields"]["items"]["enum"]] if "ignore_fields" in node else []
        return found + [e for value in node.values() for e in _ignore_fields_enums(value)]
    if isinstance(node, list):
        return [e for value in node for e in _ignore_fields_enums(value)]
    return []


def test_the_refused_desired_marker_is_the_vendors_clear_marker() -> None:
    assert RESERVED_CLEAR_MARKER == vocabulary.NULL
