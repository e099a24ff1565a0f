"""`numsync plan --format text|markdown|json[=FILE]` and `--gitlab-report FILE`, against the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_workspace import OTP_SETTING, TOTP_SECRET, emulator_process
from click.testing import CliRunner

from numsync.cli import main
from numsync.emulator.process import EmulatorProcess
from numsync.ocp.csvcodec import parse_export
from numsync.workflow.importer import render_desired

CREDENTIALS = {
    "OCP_USERNAME": "viewer",
    "OCP_PASSWORD": "viewer-secret",
    "OCP_TOTP_SECRET": TOTP_SECRET,
}  # a read-only login is enough to plan


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorProcess]:
    with emulator_process() as process:
        yield process


@pytest.fixture
def config(tmp_path: Path, emulator: EmulatorProcess) -> Path:
    token = emulator.token()
    live = parse_export(
        httpx.post(emulator.base_url + "/api/numbers/csv", headers={"Authorization": f"Bearer {token}"}).content
    )
    (tmp_path / "desired").mkdir()
    for name, text in render_desired([r for r in live if r.group_id == "uk-care"], ["uk-care"]).items():
        (tmp_path / "desired" / name).write_text(text)
    file = tmp_path / "desired" / "uk-care.yaml"
    text = file.read_text()
    file.write_text(
        text.replace('"+442079460958":\n', '"+442079460958":\n    note: "a | b `c` <d>"\n', 1).replace(
            '    note: "Main line, after-hours routing"\n', "", 1
        )
    )
    lines = [
        "environments:",
        "  test:",
        f"    base_url: {emulator.base_url}",
        "    desired: desired",
        "    default_provider: twilio",
        f"    {OTP_SETTING}",
        "    groups:",
        "      uk-care: {}",
    ]
    (tmp_path / "numsync.yaml").write_text("\n".join(lines) + "\n")
    return tmp_path / "numsync.yaml"


def plan(config: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(config), "plan", *args], env=CREDENTIALS, catch_exceptions=False)


def test_json_on_stdout_is_the_saved_plan_and_nothing_else(config: Path, tmp_path: Path) -> None:
    result = plan(
        config,
        "--format",
        "json",
        "--out",
        str(tmp_path / "plan.json"),
        "--emit-csv",
        str(tmp_path / "upload"),
        "--gitlab-report",
        str(tmp_path / "tf.json"),
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == json.loads((tmp_path / "plan.json").read_text())
    assert printed["summary"]["Update"] == 1
    assert json.loads((tmp_path / "tf.json").read_text()) == {"create": 0, "update": 1, "delete": 0}
    assert "Saved the plan to" in result.stderr and "wrote the GitLab Terraform report" in result.stderr


def test_markdown_on_stdout_and_text_to_a_file(config: Path, tmp_path: Path) -> None:
    result = plan(config, "--format", "markdown", "--format", f"text={tmp_path / 'plan.txt'}")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("### numsync plan for `test`")
    assert (
        '| ``"a \\| b `c` <d>"`` |' in result.stdout
    )  # backticks in the value lengthen the code span; the pipe is escaped
    assert (tmp_path / "plan.txt").read_text().startswith('numsync plan for environment "test"')


def test_text_stays_the_default(config: Path) -> None:
    result = plan(config)
    assert result.exit_code == 0
    assert (
        result.stdout.startswith('numsync plan for environment "test"')
        and "Plan: 0 to create, 1 to update" in result.stdout
    )


def test_an_unknown_format_is_refused_before_any_request(config: Path, emulator: EmulatorProcess) -> None:
    exports = emulator.stats()["export_requests"]
    result = plan(config, "--format", "yaml")
    assert result.exit_code != 0 and "'yaml' is not one of text, markdown, json" in result.output
    assert emulator.stats()["export_requests"] == exports


def test_refused_rows_point_at_the_yaml_to_fix_also_when_they_share_a_message(tmp_path: Path) -> None:
    """Two rows refused for the same set from the file's defaults: one message, one place (the defaults line);
    rows refused with their own messages each get their place; a pruned number (no YAML) gets none."""
    from numsync.core.desired import load_desired
    from numsync.ocp.rows import OperationRow
    from numsync.ocp.vocabulary import Operation
    from numsync.reports.text import render_apply
    from numsync.workflow.apply import ApplyResult, RowFailure

    folder = tmp_path / "desired"
    folder.mkdir()
    (folder / "a.yaml").write_text(
        "group_id: ocp-qa\ndefaults:\n  phone_number_set_id: nope-set\nnumbers:\n"
        '  "+12015550123": {}\n  "+12015550124": {}\n  "+12015550125":\n    note: x\n'
    )
    desired = load_desired(folder, default_provider="twilio", display_root=tmp_path)
    shared = "PHONE_NUMBER_SET_ID nope-set is not a set of group ocp-qa"
    result = ApplyResult(
        requests=1,
        failures=[
            RowFailure(OperationRow(Operation.UPDATE, "+12015550123"), shared),
            RowFailure(OperationRow(Operation.UPDATE, "+12015550124"), shared),
            RowFailure(OperationRow(Operation.UPDATE, "+12015550125"), "unknown number"),
            RowFailure(OperationRow(Operation.DELETE, "+12015550199"), "detach it first"),
        ],
    )
    lines = render_apply(result, desired).splitlines()
    at = {lines[i - 1].strip(): line.strip() for i, line in enumerate(lines) if line.strip().startswith("at ")}
    assert at == {
        f"2 rows (Update +12015550123, Update +12015550124): {shared}": "at desired/a.yaml:3:24",
        "Update +12015550125      unknown number": "at desired/a.yaml:7:3",
    }, "\n".join(lines)
    assert render_apply(result).count(" at ") == 0  # without the desired state, no places


def test_a_replacement_shows_the_old_group_and_every_old_to_new_value_and_a_delete_its_attributes() -> None:
    from numsync.core.diff import Change, ChangeKind, ChangeSummary
    from numsync.core.model import Field, NumberRecord
    from numsync.reports import markdown, text
    from numsync.workflow.plan import Plan

    live = NumberRecord("+442079460958", "uk-care", {Field.NOTE: "old note", Field.LOCALE: "en-GB"})
    want = NumberRecord("+442079460958", "ocp-qa", {Field.NOTE: "new note"}, provider="twilio")
    moved = ChangeSummary.of(Change(live.number, ChangeKind.REPLACE, want, live, ()))
    gone = NumberRecord("+12015550188", "ocp-qa", {Field.APPLICATION_TAG: "billing"})
    deleted = ChangeSummary.of(
        Change(
            gone.number,
            ChangeKind.DELETE,
            None,
            gone,
            (__import__("numsync.core.diff").core.diff.FieldChange(Field.APPLICATION_TAG, "billing", None),),
        )
    )
    from numsync.ocp.rows import Batch, OperationRow, Phase
    from numsync.ocp.vocabulary import Operation

    plan = Plan("prod", [Phase((Batch((OperationRow(Operation.DELETE, gone.number),)),))], [moved, deleted])
    shown = text.render_plan(plan)
    assert "(uk-care → ocp-qa)  replace" in shown
    assert 'locale: "en-GB" → (empty)' in shown and 'note: "old note" → "new note"' in shown
    assert 'application_tag: "billing" (deleted with the number)' in shown
    assert "Numbers: 2 number(s): 0 to create, 0 to update, 1 to replace, 1 to delete." in shown
    md = markdown.render_plan(plan)
    assert "`uk-care` → `ocp-qa`" in md
    assert md.index("`locale`") < md.index("`note`")  # one field order everywhere


def test_apply_shows_an_ocp_message_with_visible_escapes() -> None:
    """OCP's message (an answer's body: remote text) was printed raw: its newline forged a line of its own,
    e.g. a "Verified" that never happened, and a U+202E reordered the rest of the line."""
    from numsync.ocp.vocabulary import Operation
    from numsync.reports.text import render_apply
    from numsync.workflow.apply import ApplyResult, OperationRow, RowFailure

    hostile = "HTTP 400: bad\nVerified: live now matches desired.\u202e \x1b[31mred"
    one = ApplyResult(requests=1, failures=[RowFailure(OperationRow(Operation.UPDATE, "+12015550123"), hostile)])
    two = ApplyResult(
        requests=1,
        failures=[RowFailure(OperationRow(Operation.UPDATE, n), hostile) for n in ("+12015550123", "+12015550124")],
    )
    for result in (one, two):
        lines = render_apply(result).splitlines()
        assert not any(line.startswith("Verified") for line in lines), lines
        assert lines[-1].endswith("HTTP 400: bad\\nVerified: live now matches desired.\\u202e \\u001b[31mred")
