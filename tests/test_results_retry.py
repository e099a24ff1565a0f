"""apply --results / --junit / --retry-failed, and partial runs (--group, --number), against the emulator over HTTP."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
import yaml
from cli_workspace import emulator_process, live_records, run, workspace, write_desired

from numsync.core.model import Field
from numsync.emulator.process import EmulatorProcess


def _edit_notes(tmp_path: Path, emulator: EmulatorProcess, group: str, count: int) -> list[str]:
    """Desired files for ``group`` as live, with the NOTE of its first ``count`` numbers changed; those numbers."""
    records = sorted((r for r in live_records(emulator) if r.group_id == group), key=lambda r: r.number)
    changed = [r.number for r in records[:count]]
    edited = [
        r if r.number not in changed else type(r)(r.number, r.group_id, r.fields | {Field.NOTE: f"retry {r.number}"})
        for r in records
    ]
    write_desired(tmp_path, edited, [group])
    return changed


def _log(emulator: EmulatorProcess) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = httpx.get(f"{emulator.url}/_emulator/log").json()
    return entries


def test_a_failed_apply_then_retry_failed_sends_only_the_failed_numbers_and_converges(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    # the second file is refused before processing: its two rows fail, the files around it apply
    faults.write_text(yaml.safe_dump([{"target": "put", "kind": "status", "status": 400, "after": 1, "times": 1}]))
    with emulator_process("--faults", str(faults)) as emulator:
        # one file at a time, so "the second file" is the second one planned
        config = workspace(
            tmp_path, emulator.base_url, {"uk-care": False}, "limits: {Update: 2}", "apply_concurrency: 1"
        )
        changed = _edit_notes(tmp_path, emulator, "uk-care", 5)
        results, junit = tmp_path / "results.csv", tmp_path / "junit.xml"

        first = run(config, "apply", "--auto-approve", "--results", str(results), "--junit", str(junit))

        assert first.exit_code == 1, first.output
        with results.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert [r["number"] for r in rows] == changed  # one line per planned row, in upload order
        assert {r["operation"] for r in rows} == {"Update"}
        assert [(r["phase"], r["batch"]) for r in rows] == [("1", "1"), ("1", "1"), ("1", "2"), ("1", "2"), ("1", "3")]
        failed = [r["number"] for r in rows if r["outcome"] == "failed"]
        assert failed == changed[2:4]
        assert all(r["outcome"] == "applied" and not r["message"] for r in rows if r["number"] not in failed)
        assert all("HTTP 400" in r["message"] for r in rows if r["number"] in failed)
        assert all(r["environment"] == "test" for r in rows)
        assert all(r["desired_at"].endswith(tuple(f"uk-care.yaml:{n}" for n in range(1, 200))) for r in rows)
        suite = ET.parse(junit).getroot().find("testsuite")
        assert suite is not None and suite.get("failures") == "2"
        assert sorted(c.get("name") or "" for c in suite.iter("testcase") if c.find("failure") is not None) == failed

        logged = len(_log(emulator))
        puts = emulator.stats()["put_requests"]
        again = run(
            config, "apply", "--auto-approve", "--retry-failed", str(results), "--results", str(tmp_path / "r.json")
        )

        assert again.exit_code == 0, again.output
        assert "Warning: Partial run: only number(s)" in again.output
        assert "Verified: live now matches desired for the numbers in scope" in again.output
        assert sorted(str(e["NUMBER"]) for e in _log(emulator)[logged:]) == failed  # only the failed numbers sent
        assert emulator.stats()["put_requests"] == puts + 1
        retried = json.loads((tmp_path / "r.json").read_text())
        assert retried["format"] == "numsync-results" and retried["complete"] is True
        assert [(r["number"], r["outcome"]) for r in retried["rows"]] == [(n, "applied") for n in failed]
        # converged: a full plan has nothing left
        full = run(config, "plan", "--detailed-exitcode")
        assert full.exit_code == 0 and "No changes" in full.output


def test_results_are_written_when_apply_is_refused_and_a_bad_extension_is_a_usage_error(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False})
    _edit_notes(tmp_path, emulator, "uk-care", 2)
    results = tmp_path / "results.json"
    refused = run(config, "apply", "--results", str(results))  # no terminal, no --auto-approve: refused
    assert refused.exit_code == 1
    data = json.loads(results.read_text())
    assert [r["outcome"] for r in data["rows"]] == ["not_sent", "not_sent"]
    assert all(r["message"].startswith("not sent: refusing to apply without confirmation") for r in data["rows"])

    bad = run(config, "apply", "--auto-approve", "--results", str(tmp_path / "results.txt"))
    assert bad.exit_code == 1 and ".csv or .json" in bad.output
    # a folder that is not there is found before anything is sent, not after the changes are made
    for option, name in (("--results", "r.csv"), ("--junit", "j.xml")):
        missing = tmp_path / "no-such-folder" / name
        nowhere = run(config, "apply", "--auto-approve", option, str(missing))
        assert nowhere.exit_code == 1
        assert f"{option} {missing}: the folder {missing.parent} does not exist" in nowhere.output
        assert "Nothing was written" in nowhere.output
    # the results file, written last, would replace the journal of the same name
    journal = tmp_path / "run.json"
    same = run(config, "apply", "--auto-approve", "--journal", str(journal), "--results", str(journal))
    assert same.exit_code == 1 and f"--journal and --results name the same file, {journal}" in same.output
    assert not journal.exists()
    report = run(config, "apply", "--auto-approve", "--report", str(tmp_path / "no-such-folder" / "report.json"))
    assert report.exit_code == 1 and "--report" in report.output and "does not exist" in report.output
    assert emulator.stats()["put_requests"] == 0


def test_retry_failed_refuses_a_file_that_is_not_a_results_file(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False})
    _edit_notes(tmp_path, emulator, "uk-care", 1)
    bogus = tmp_path / "bogus.csv"
    bogus.write_text(
        "environment,number,operation,phase,batch,outcome,message,desired_at\ntest,+442079460958,Update,1,1,maybe,,\n"
    )
    result = run(config, "apply", "--auto-approve", "--retry-failed", str(bogus))
    assert result.exit_code == 1
    assert "row 2, column 6 (outcome): 'maybe' is not one of applied, failed, unknown, not_sent" in result.output
    assert emulator.stats()["put_requests"] == 0


def test_scoped_plan_and_apply_touch_only_what_is_in_scope(tmp_path: Path, emulator: EmulatorProcess) -> None:
    live = live_records(emulator)
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False, "ocp-qa": True})
    uk = sorted((r for r in live if r.group_id == "uk-care"), key=lambda r: r.number)
    qa = sorted((r for r in live if r.group_id == "ocp-qa"), key=lambda r: r.number)
    edited = [type(r)(r.number, r.group_id, r.fields | {Field.NOTE: "scoped"}) for r in uk[:2]] + uk[2:]
    write_desired(tmp_path, edited + qa[:-1], ["uk-care", "ocp-qa"])  # ocp-qa prunes its last number
    pruned = qa[-1].number

    plan_file = tmp_path / "plan.json"
    scoped = run(config, "plan", "--number", uk[0].number, "--out", str(plan_file))
    assert scoped.exit_code == 0, scoped.output
    assert "Warning: Partial run: only number(s) " + uk[0].number in scoped.output
    assert uk[1].number not in scoped.output.split("Changes:")[1] and pruned not in scoped.output
    saved = json.loads(plan_file.read_text())
    assert saved["format_version"] == 1 and saved["scope"] == {"groups": [], "numbers": [uk[0].number]}
    assert [c["number"] for c in saved["changes"]] == [uk[0].number]

    applied = run(config, "apply", str(plan_file))
    assert applied.exit_code == 0, applied.output
    assert "Verified: live now matches desired for the numbers in scope (" in applied.output
    numbers = emulator.numbers()
    assert numbers[uk[0].number]["NOTE"] == "scoped" and numbers[uk[1].number]["NOTE"] != "scoped"
    assert pruned in numbers  # out of scope: not pruned

    markdown = run(config, "plan", "--group", "ocp-qa", "--format", "markdown")
    assert ":warning: **Partial run** (as Terraform's `-target`): only group(s) `ocp-qa` are planned." in (
        markdown.output
    )
    assert markdown.output.count("Partial run") == 1  # said once

    nothing = run(config, "plan", "--number", uk[0].number)
    assert "No changes in scope (1 number(s) in scope in sync)." in nothing.output

    by_group = run(config, "plan", "--group", "ocp-qa")
    assert by_group.exit_code == 0 and pruned in by_group.output and uk[1].number not in by_group.output


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--group", "nope"], "--group nope: not managed by environment 'test'"),
        (["--number", "+441632960999"], "--number +441632960999: in no desired file and not live in a managed group"),
        (["--number", "12345"], "not in E.164 form"),
    ],
)
def test_unknown_scope_is_an_error_and_nothing_is_sent(
    tmp_path: Path, emulator: EmulatorProcess, args: list[str], said: str
) -> None:
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False})
    _edit_notes(tmp_path, emulator, "uk-care", 1)
    for command in (["plan"], ["apply", "--auto-approve"]):
        result = run(config, *command, *args)
        assert result.exit_code == 1 and said in result.output, result.output
    assert emulator.stats()["put_requests"] == 0


def test_safety_still_applies_in_scope(tmp_path: Path, emulator: EmulatorProcess) -> None:
    live = live_records(emulator)
    qa = sorted((r for r in live if r.group_id == "ocp-qa"), key=lambda r: r.number)
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": "{prune: true, max_deletes: 1}"})
    write_desired(tmp_path, qa[:-3], ["ocp-qa"])
    result = run(config, "apply", "--auto-approve", "--group", "ocp-qa")
    assert result.exit_code == 1 and "its max_deletes is 1" in result.output
    one = run(config, "apply", "--auto-approve", "--number", qa[-1].number)
    assert one.exit_code == 0, one.output
    assert qa[-1].number not in emulator.numbers() and qa[-2].number in emulator.numbers()


def test_an_unknown_outcome_that_landed_is_recorded_applied_after_the_verify(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    # the first file is applied, then the connection drops: its outcome is unknown until live is read again
    faults.write_text(yaml.safe_dump([{"target": "put", "kind": "reset_after", "times": 1}]))
    with emulator_process("--faults", str(faults)) as emulator:
        config = workspace(
            tmp_path,
            emulator.base_url,
            {"uk-care": False},
            "limits: {Update: 2}",
            "settle: {interval: 0.2, timeout: 20}",
        )
        changed = _edit_notes(tmp_path, emulator, "uk-care", 3)
        results = tmp_path / "results.json"
        applied = run(config, "apply", "--auto-approve", "--results", str(results))
        assert applied.exit_code == 0, applied.output
        rows = json.loads(results.read_text())["rows"]
        assert [(r["number"], r["outcome"]) for r in rows] == [(n, "applied") for n in changed]
        assert all("outcome unknown when sent" in r["message"] for r in rows[:2])  # the file whose answer was lost
        assert rows[2]["message"] == ""
        assert sum(1 for e in _log(emulator) if e["NUMBER"] in changed[:2]) == 2  # not sent again
