"""Output (issue 18, item 6): ``--format json`` on every command that reports something, each checked against
its published schema; ``--quiet`` (errors and the final result only) and ``--verbose`` (every request to OCP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cli_workspace import CREDENTIALS, live_records, run, workspace, write_desired
from click.testing import CliRunner

from numsync.cli import main
from numsync.core.schema import load_schema
from numsync.emulator.process import EmulatorProcess


def valid(output: str, schema: str) -> Any:
    """``output`` as JSON, checked against ``numsync/schema/<schema>.schema.json``."""
    data = json.loads(output)
    jsonschema.validate(data, load_schema(schema))
    return data


@pytest.mark.parametrize("name", ["apply", "import", "init", "export", "environments"])
def test_each_output_schema_is_a_valid_schema_with_every_property_described(name: str) -> None:
    schema = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)

    def properties(node: Any) -> list[tuple[str, Any]]:
        found = []
        if isinstance(node, dict):
            for key, sub in (node.get("properties") or {}).items():
                found.append((key, sub))
            for sub in node.values():
                found += properties(sub)
        elif isinstance(node, list):
            for sub in node:
                found += properties(sub)
        return found

    described = properties(schema)
    assert described and [key for key, sub in described if "description" not in sub] == []


def uk_care_with_one_note_changed(tmp_path: Path, emulator: EmulatorProcess) -> Path:
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False})
    write_desired(tmp_path, [r for r in live_records(emulator) if r.group_id == "uk-care"], ["uk-care"])
    path = tmp_path / "desired" / "uk-care.yaml"
    text = path.read_text()
    assert text.count('note: "Main line, after-hours routing"') == 1  # +442079460958's
    path.write_text(text.replace("Main line, after-hours routing", "from review"))
    return config


def test_apply_json_is_one_object_on_stdout_with_every_file_sent(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = uk_care_with_one_note_changed(tmp_path, emulator)
    result = run(config, "apply", "--auto-approve", "--format", "json")
    assert result.exit_code == 0, result.output
    data = valid(result.stdout, "apply")
    assert (data["command"], data["environment"], data["outcome"]) == ("apply", "test", "applied")
    assert data["applied"] == sum(len(b["rows"]) for b in data["batches"]) >= 1
    assert data["plan"]["requests"] == len(data["batches"]) == emulator.stats()["put_requests"]
    assert data["remaining"] == 0
    assert "Applying to test" in result.stderr and "Verified: live now matches desired." in result.stderr

    again = run(config, "apply", "--auto-approve", "--format", "json")
    assert again.exit_code == 0
    nothing = valid(again.stdout, "apply")
    assert (nothing["outcome"], nothing["batches"], nothing["remaining"]) == ("nothing", [], None)


def test_a_refused_apply_still_reports_json_and_exits_1(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": "{prune: true, max_deletes: 1}"})
    write_desired(tmp_path, [r for r in live_records(emulator) if r.group_id == "ocp-qa"][:-3], ["ocp-qa"])
    result = run(config, "apply", "--auto-approve", "--format", "json")
    assert result.exit_code == 1
    data = valid(result.stdout, "apply")
    assert data["outcome"] == "refused" and "--override-thresholds" in data["flags"]
    assert data["batches"] == [] and emulator.stats()["put_requests"] == 0
    assert "Error:" in result.stderr


def test_show_renders_a_saved_plan_in_every_plan_format(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = uk_care_with_one_note_changed(tmp_path, emulator)
    plan_file = tmp_path / "plan.json"
    assert run(config, "plan", "--out", str(plan_file)).exit_code == 0
    shown = run(config, "show", str(plan_file), "--format", "json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == json.loads(plan_file.read_text())
    markdown = run(config, "show", str(plan_file), "--format", "markdown")
    assert markdown.exit_code == 0 and "+442079460958" in markdown.stdout and "from review" in markdown.stdout
    text = run(config, "show", str(plan_file))
    assert "1 to update" in text.stdout


def test_export_json_summarizes_the_file_it_wrote(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False})
    out = tmp_path / "live.csv"
    result = run(config, "export", "--out", str(out), "--format", "json")
    assert result.exit_code == 0, result.output
    data = valid(result.stdout, "export")
    live = live_records(emulator)
    assert (data["path"], data["bytes"]) == (str(out), out.stat().st_size)
    assert data["numbers"] == len(live) == sum(data["groups"].values())
    assert data["groups"]["uk-care"] == sum(1 for r in live if r.group_id == "uk-care")

    stdout_csv = run(config, "export", "--format", "json")
    assert stdout_csv.exit_code == 1 and "--format json needs --out" in stdout_csv.output


def test_import_json_lists_the_files_and_their_numbers(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False, "au-support": False})
    result = run(config, "import", "--format", "json")
    assert result.exit_code == 0, result.output
    data = valid(result.stdout, "import")
    live = live_records(emulator)
    assert sorted(Path(p).name for p in data["written"]) == ["au-support.yaml", "uk-care.yaml"]
    assert data["numbers"] == sum(1 for r in live if r.group_id in ("uk-care", "au-support"))
    assert data["adopted"] is None
    assert "wrote" in result.stderr  # the per-file lines, off stdout

    text = run(config, "import", "--force")
    assert text.stdout.splitlines()[-1] == f"imported {data['numbers']} number(s) into 2 file(s)"


def test_init_json_names_the_file_and_its_groups(tmp_path: Path) -> None:
    config = tmp_path / "numsync.yaml"
    result = CliRunner().invoke(
        main,
        ["--config", str(config), "init", "--region", "EU1", "--group", "uk-care", "--format", "json"],
        env={"OCP_USERNAME": None, "OCP_PASSWORD": None, "OCP_TOKEN": None},
    )
    assert result.exit_code == 0, result.output
    data = valid(result.stdout, "init")
    assert data == {
        "format_version": 1,
        "command": "init",
        "path": str(config),
        "environment": "prod",
        "groups": {"uk-care": None},
        "discovered_from": None,
    }
    assert config.exists()


def test_environments_json_matches_its_schema(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False})
    result = run(config, "environments", "--format", "json")
    assert result.exit_code == 0
    [entry] = valid(result.stdout, "environments")
    assert entry["base_url"] == emulator.base_url


# ---------------------------------------------------------------------------- --quiet, --verbose


def test_quiet_prints_only_the_result_and_errors(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = uk_care_with_one_note_changed(tmp_path, emulator)
    plan_file = tmp_path / "plan.json"
    planned = run(config, "--quiet", "plan", "--out", str(plan_file))
    assert planned.exit_code == 0, planned.output
    assert "1 to update" in planned.stdout  # the plan is the result
    assert "Saved the plan" not in planned.output

    applied = run(config, "-q", "apply", str(plan_file))
    assert applied.exit_code == 0, applied.output
    assert "Applying to" not in applied.output and "phase 1" not in applied.output.lower()
    assert "Verified: live now matches desired." in applied.stdout  # the final result

    imported = run(config, "-q", "import", "--force")
    assert imported.stdout.splitlines() == [imported.stdout.splitlines()[-1]]
    assert imported.stdout.startswith("imported ")

    failed = run(config, "-q", "apply", str(plan_file))  # applied already: the saved plan is stale
    assert failed.exit_code == 1 and "Error:" in failed.stderr


def test_verbose_shows_every_request_to_ocp_without_secrets(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False})
    write_desired(tmp_path, [r for r in live_records(emulator) if r.group_id == "uk-care"], ["uk-care"])
    result = run(config, "--verbose", "plan")
    assert result.exit_code == 0, result.output
    lines = [line.strip() for line in result.stderr.splitlines()]
    assert any(line.startswith(f"POST {emulator.base_url}/api/numbers/csv: HTTP 200 in ") for line in lines), lines
    assert any("/protocol/openid-connect/token: HTTP 200 in " in line for line in lines), lines
    assert CREDENTIALS["OCP_PASSWORD"] not in result.output and CREDENTIALS["OCP_TOTP_SECRET"] not in result.output

    plain = run(config, "plan")  # without --verbose (and after it, in the same process): no request lines
    assert "openid-connect/token: HTTP" not in plain.output


def test_quiet_and_verbose_together_are_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--quiet", "--verbose", "environments"])
    assert result.exit_code == 1 and "--quiet and --verbose cannot be used together" in result.output
