"""The plan artifact (plan --out / show / apply PLAN), --emit-csv, --detailed-exitcode, --rehearse."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest
from cli_workspace import live_records, run, workspace, write_desired
from click.testing import CliRunner

from numsync.cli import main
from numsync.config import Environment, load_config
from numsync.core.diff import diff
from numsync.core.model import Field, NumberRecord
from numsync.core.policy import GroupPolicy
from numsync.emulator.process import EmulatorProcess
from numsync.ocp.client import ExecuteResult
from numsync.ocp.csvcodec import upload_file_name, write_operations
from numsync.ocp.vocabulary import NULL, OPERATION_COLUMNS, Operation
from numsync.reports.text import render_plan
from numsync.workflow.apply import apply_plan
from numsync.workflow.pipeline import load_environment_desired
from numsync.workflow.plan import PLAN_FORMAT_VERSION, Plan, fingerprint, make_plan

UK_MINIAPP = "0b7f3a90-2c4d-4e1b-9a55-7d2e8c6f1a3b.care_router.Flow.uk-care@care_router.uk-care"
QA_MINIAPP = "3781bcc1-7c76-439b-ba26-05d22217b316.SND_billing_flow.Flow.ocp-qa@SND_billing_flow.ocp-qa"


def rec(n: str, group: str, **fields: str) -> NumberRecord:
    return NumberRecord(n, group, {Field(k): v for k, v in fields.items()}, provider="twilio")


def with_fields(record: NumberRecord, **fields: str | None) -> NumberRecord:
    values = dict(record.fields)
    for key, value in fields.items():
        if value is None:
            values.pop(Field(key), None)
        else:
            values[Field(key)] = value
    return NumberRecord(record.number, record.group_id, values, provider=record.provider)


# --- JSON round trip -----------------------------------------------------------------------


def every_kind_of_plan() -> Plan:
    env = Environment(
        name="prod",
        base_url="http://127.0.0.1:9/integrations",
        token_url="http://127.0.0.1:9/token",
        desired=Path("/nonexistent"),
        groups={"a": GroupPolicy("a", prune=True), "b": GroupPolicy("b")},
        limits={
            Operation.CREATE: 1,
            Operation.UPDATE: 2,
            Operation.ATTACH: 1,
            Operation.DETACH: 1,
            Operation.DELETE: 1,
        },
    )
    live = [
        rec("+12015550100", "a", miniapp_id="app-1", locale="en-US", note="old"),  # changed: detach + other fields
        rec("+12015550101", "a", miniapp_id="app-1", locale="en-US"),  # pruned, attached
        rec("+12015550102", "a"),  # pruned
        rec(
            "+12015550103", "a", miniapp_id="app-1", locale="en-US", note='Zeile 1\nZeile 2, "quoted" — ünïcödé'
        ),  # replaced into b
        rec("+12015550104", "b", application_tag="t"),  # unmanaged (b does not prune)
        rec("+12015550105", "elsewhere"),  # conflict: desired in a
        rec("+12015550106", "elsewhere"),  # out of scope
        rec("+12015550107", "a", miniapp_id="app-1", locale="en-US"),  # miniapp X → Y
    ]
    desired_list = [
        rec("+12015550100", "a", locale="en-GB", application_tag="=cmd"),
        rec("+12015550103", "b", note='Zeile 1\nZeile 2, "quoted" — ünïcödé', miniapp_id="app-2", locale="de-DE"),
        rec("+12015550105", "a"),
        rec("+12015550107", "a", miniapp_id="app-3", locale="en-US"),
        rec("+12015550108", "b", miniapp_id="app-2", locale="en-US"),  # create → attach
        rec("+12015550109", "b", note="@team"),  # create → update
    ]
    desired = {r.number: r for r in desired_list}
    return make_plan(
        env, desired, live, diff(desired, live, env.groups), git_commit="0123456789abcdef0123456789abcdef01234567"
    )


def test_json_round_trip_is_exact() -> None:
    original = every_kind_of_plan()
    assert {c.kind for c in original.changes} == {"create", "update", "replace", "delete"}
    assert original.conflicts and original.unmanaged and original.out_of_scope == 1
    # every operation type and several phases; phase by phase this took 7 files, packed it takes 4
    assert len(original.phases) == 4 and original.request_count() == 4
    assert {r.operation for p in original.phases for r in p.rows} == set(Operation)

    text = json.dumps(original.to_json(), ensure_ascii=False)
    again = Plan.from_json(json.loads(text))

    assert json.dumps(again.to_json(), ensure_ascii=False) == text
    assert again.phases == original.phases
    assert again.changes == original.changes
    assert (again.environment, again.git_commit, again.live_fingerprint, again.desired_hash) == (
        original.environment,
        original.git_commit,
        original.live_fingerprint,
        original.desired_hash,
    )
    assert again.request_count() == original.request_count() and again.replacements() == ["+12015550103"]


def test_the_artifact_lists_every_batch_with_its_rows() -> None:
    data = every_kind_of_plan().to_json()
    assert data["format_version"] == PLAN_FORMAT_VERSION
    assert data["environment"] == "prod"
    assert data["summary"] == {"Create": 3, "Update": 4, "Attach": 1, "Detach": 3, "Delete": 3, "requests": 4}
    # packed: Detach, Delete, Create 1 per file, Update 2 per file; a number's next row in a later file
    assert data["phases"] == [
        [
            [
                {"OPERATION": "Detach", "GROUP_ID": "a", "NUMBER": "+12015550103"},
                {"OPERATION": "Delete", "GROUP_ID": "a", "NUMBER": "+12015550102"},
                {"OPERATION": "Create", "GROUP_ID": "b", "NUMBER": "+12015550108", "PROVIDER": "twilio"},
                {"OPERATION": "Update", "NUMBER": "+12015550107", "MINIAPP_ID": "app-3"},
            ]
        ],
        [
            [
                {"OPERATION": "Detach", "GROUP_ID": "a", "NUMBER": "+12015550100"},  # an update: its miniapp removed
                {"OPERATION": "Delete", "GROUP_ID": "a", "NUMBER": "+12015550103"},
                {"OPERATION": "Create", "GROUP_ID": "b", "NUMBER": "+12015550109", "PROVIDER": "twilio"},
                {"OPERATION": "Attach", "NUMBER": "+12015550108", "MINIAPP_ID": "app-2", "LOCALE": "en-US"},
            ]
        ],
        [
            [
                {"OPERATION": "Detach", "GROUP_ID": "a", "NUMBER": "+12015550101"},
                {"OPERATION": "Create", "GROUP_ID": "b", "NUMBER": "+12015550103", "PROVIDER": "twilio"},
                {
                    "OPERATION": "Update",
                    "NUMBER": "+12015550100",
                    "APPLICATION_TAG": "=cmd",
                    "LOCALE": "en-GB",
                    "NOTE": NULL,
                },
                {"OPERATION": "Update", "NUMBER": "+12015550109", "NOTE": "@team"},
            ]
        ],
        [
            [
                {"OPERATION": "Delete", "GROUP_ID": "a", "NUMBER": "+12015550101"},
                {
                    "OPERATION": "Update",
                    "NUMBER": "+12015550103",
                    "MINIAPP_ID": "app-2",
                    "LOCALE": "de-DE",
                    "NOTE": 'Zeile 1\nZeile 2, "quoted" — ünïcödé',
                },
            ]
        ],
    ]
    assert data["live_counts"] == {"a": 5, "b": 1} and data["desired_count"] == 6
    assert (
        data["unmanaged"] == ["+12015550104"] and len(data["conflicts"]) == 1 and "+12015550105" in data["conflicts"][0]
    )


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_another_format_version_is_refused(version: object) -> None:
    data = every_kind_of_plan().to_json()
    if version is None:
        del data["format_version"]
    else:
        data["format_version"] = version
    expected = (
        "it has no format_version"
        if version is None
        else f"plan format version {version!r} is not {PLAN_FORMAT_VERSION}"
    )
    with pytest.raises(ValueError, match=expected):
        Plan.from_json(data)


def test_a_bad_shape_is_refused() -> None:
    data = every_kind_of_plan().to_json()
    data["phases"][0][0][0]["OPERATION"] = "Explode"
    with pytest.raises(ValueError, match="not a numsync plan"):
        Plan.from_json(data)
    del data["phases"]
    with pytest.raises(ValueError, match="not a numsync plan"):
        Plan.from_json(data)


# --- against the emulator ------------------------------------------------------------------


def uk_change(emulator: EmulatorProcess, tmp_path: Path) -> tuple[Path, list[NumberRecord], list[NumberRecord]]:
    """uk-care with one note changed and one number created (attached): live, desired, config."""
    live = live_records(emulator)
    uk = [r for r in live if r.group_id == "uk-care"]
    desired = [with_fields(r, note="changed by review") if r.number == "+442079460958" else r for r in uk]
    desired.append(rec("+442079460999", "uk-care", miniapp_id=UK_MINIAPP, locale="en-GB"))
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False})
    write_desired(tmp_path, desired, ["uk-care"])
    return config, live, desired


def git(folder: Path, *args: str) -> str:
    return subprocess.run(
        [
            "git",
            "-C",
            str(folder),
            "-c",
            "user.name=numsync tests",
            "-c",
            "user.email=tests@numsync.invalid",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_plan_out_writes_the_artifact(tmp_path: Path, emulator: EmulatorProcess) -> None:
    if subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True).returncode == 0:
        pytest.skip("the temporary folder is inside a git checkout")
    config, live, desired = uk_change(emulator, tmp_path)
    plan_file = tmp_path / "plan.json"

    result = run(config, "plan", "--out", str(plan_file))

    assert result.exit_code == 0, result.output
    assert f"Saved the plan to {plan_file}; apply it with: numsync apply {plan_file}" in result.output
    data = json.loads(plan_file.read_text())
    assert data["format_version"] == PLAN_FORMAT_VERSION
    assert data["environment"] == "test"
    assert data["git_commit"] is None
    loaded = load_environment_desired(load_config(config).environment(None)).records
    assert {n: r.fields for n, r in loaded.items()} == {r.number: r.fields for r in desired}
    assert data["desired_hash"] == fingerprint(loaded.values())
    assert data["live_fingerprint"] == fingerprint(r for r in live if r.group_id == "uk-care")
    assert data["live_fingerprint"] != fingerprint(live)  # only the managed groups count
    assert data["live_counts"] == {"uk-care": 60} and data["desired_count"] == 61
    assert data["limits"] == {"Update": 800, "Attach": 800, "Detach": 100, "Delete": 10, "Create": 100}
    assert data["summary"] == {"Create": 1, "Update": 1, "Attach": 1, "Detach": 0, "Delete": 0, "requests": 2}
    assert data["phases"] == [
        [
            [
                {"OPERATION": "Create", "GROUP_ID": "uk-care", "NUMBER": "+442079460999", "PROVIDER": "twilio"},
                {"OPERATION": "Update", "NUMBER": "+442079460958", "NOTE": "changed by review"},
            ]
        ],
        [[{"OPERATION": "Attach", "NUMBER": "+442079460999", "MINIAPP_ID": UK_MINIAPP, "LOCALE": "en-GB"}]],
    ]
    assert [(c["number"], c["kind"]) for c in data["changes"]] == [
        ("+442079460958", "update"),
        ("+442079460999", "create"),
    ]
    assert data["changes"][0]["fields"] == {
        "NOTE": {"live": "Main line, after-hours routing", "desired": "changed by review"}
    }
    assert data["in_sync"] == 59 and data["out_of_scope"] == 239
    assert emulator.stats()["put_requests"] == 0


def test_git_commit_is_recorded_inside_a_git_repository(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config, _, _ = uk_change(emulator, tmp_path)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "desired state")
    head = git(tmp_path, "rev-parse", "HEAD")
    assert len(head) == 40
    plan_file = tmp_path / "plan.json"

    assert run(config, "plan", "--out", str(plan_file)).exit_code == 0
    assert json.loads(plan_file.read_text())["git_commit"] == head

    # Uncommitted edits in the desired folder are flagged.
    (tmp_path / "desired" / "uk-care.yaml").write_text(
        (tmp_path / "desired" / "uk-care.yaml").read_text().replace("changed by review", "edited, not committed")
    )
    assert run(config, "plan", "--out", str(plan_file)).exit_code == 0
    assert json.loads(plan_file.read_text())["git_commit"] == head + "-dirty"


def test_show_renders_a_saved_plan_without_contacting_ocp(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config, _, _ = uk_change(emulator, tmp_path)
    plan_file = tmp_path / "plan.json"
    planned = run(config, "plan", "--out", str(plan_file))
    exports = emulator.stats()["export_requests"]

    shown = CliRunner().invoke(main, ["show", str(plan_file)], env={}, catch_exceptions=False)

    assert shown.exit_code == 0, shown.output
    assert shown.output == render_plan(Plan.from_json(json.loads(plan_file.read_text()))) + "\n"
    assert shown.output in planned.output
    assert "Operations, in order (2 request(s)):" in shown.output
    assert '    Attach  +442079460999    MINIAPP_ID="' + UK_MINIAPP + '"  LOCALE="en-GB"' in shown.output
    assert "Plan: 1 to create, 1 to update, 1 to attach, 0 to detach, 0 to delete." in shown.output
    assert emulator.stats()["export_requests"] == exports


def test_show_and_apply_refuse_another_format_version(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config, _, _ = uk_change(emulator, tmp_path)
    plan_file = tmp_path / "plan.json"
    assert run(config, "plan", "--out", str(plan_file)).exit_code == 0
    data = json.loads(plan_file.read_text())
    data["format_version"] = PLAN_FORMAT_VERSION + 1
    plan_file.write_text(json.dumps(data))

    for args in (("show", str(plan_file)), ("apply", str(plan_file))):
        result = run(config, *args)
        assert result.exit_code == 1
        assert (
            f"is not a numsync plan: plan format version {PLAN_FORMAT_VERSION + 1} is not {PLAN_FORMAT_VERSION}"
            in result.output
        )
    assert emulator.stats()["put_requests"] == 0


def test_apply_refuses_a_plan_made_for_another_environment(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config, _, _ = uk_change(emulator, tmp_path)
    plan_file = tmp_path / "plan.json"
    assert run(config, "plan", "--out", str(plan_file)).exit_code == 0
    data = json.loads(plan_file.read_text())
    data["environment"] = "prod"
    plan_file.write_text(json.dumps(data))

    result = run(config, "apply", str(plan_file))

    assert result.exit_code == 1
    assert "the plan is for environment 'prod', not 'test'" in result.output and "Nothing was written." in result.output
    assert emulator.stats()["put_requests"] == 0


def test_apply_uploads_exactly_the_artifacts_rows(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config, _, _ = uk_change(emulator, tmp_path)
    plan_file = tmp_path / "plan.json"
    assert run(config, "plan", "--out", str(plan_file)).exit_code == 0
    data = json.loads(plan_file.read_text())
    before = emulator.stats()

    applied = run(config, "apply", str(plan_file))

    assert applied.exit_code == 0, applied.output
    after = emulator.stats()
    assert after["put_requests"] - before["put_requests"] == data["summary"]["requests"] == 2
    assert after["rows_applied"] - before["rows_applied"] == sum(len(b) for p in data["phases"] for b in p) == 3
    numbers = emulator.numbers()
    assert numbers["+442079460958"]["NOTE"] == "changed by review"
    assert (numbers["+442079460999"]["MINIAPP_ID"], numbers["+442079460999"]["LOCALE"]) == (UK_MINIAPP, "en-GB")


def test_apply_refuses_a_saved_plan_whose_rows_were_edited(tmp_path: Path, emulator: EmulatorProcess) -> None:
    """The artifact's rows must follow from the inputs it records: a hand-edited plan is refused, nothing sent."""
    config, _, _ = uk_change(emulator, tmp_path)
    plan_file = tmp_path / "plan.json"
    assert run(config, "plan", "--out", str(plan_file)).exit_code == 0
    data = json.loads(plan_file.read_text())
    data["phases"][0][0][1]["NOTE"] = "as the artifact says"
    data["phases"][0][0].append({"OPERATION": "Delete", "NUMBER": "+442079460959"})
    plan_file.write_text(json.dumps(data))
    puts = emulator.stats()["put_requests"]

    applied = run(config, "apply", str(plan_file))

    assert applied.exit_code == 1
    assert "do not follow from the desired and live state it records" in applied.output
    assert emulator.stats()["put_requests"] == puts
    assert "+442079460959" in emulator.numbers()


class Recorder:
    """An Executor that keeps every uploaded body and accepts every row."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []

    def execute(self, body: bytes, *, filename: str = "operations.csv") -> ExecuteResult:
        self.bodies.append((filename, body))
        return ExecuteResult(200, [])


def test_emit_csv_writes_the_exact_upload_files_and_a_safe_review(tmp_path: Path, emulator: EmulatorProcess) -> None:
    ocp_qa = [r for r in live_records(emulator) if r.group_id == "ocp-qa"]
    notes = {
        "+12015550100": '=HYPERLINK("http://x.invalid")',
        "+12015550104": "+44 call back",
        "+12015550109": "-5 degrees",
        "+12015550114": "plain",
    }
    desired = [with_fields(r, note=notes[r.number]) if r.number in notes else r for r in ocp_qa]
    desired = [
        with_fields(r, application_tag=None) if r.number == "+12015550101" else r for r in desired
    ]  # billing → <NULL>
    desired.append(rec("+12015550250", "ocp-qa", application_tag="@ops", locale="en-US", miniapp_id=QA_MINIAPP))
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": False}, "limits: {Update: 2}")
    write_desired(tmp_path, desired, ["ocp-qa"])
    out, plan_file = tmp_path / "emitted", tmp_path / "plan.json"

    result = run(config, "plan", "--out", str(plan_file), "--emit-csv", str(out))

    assert result.exit_code == 0, result.output
    the_plan = Plan.from_json(json.loads(plan_file.read_text()))
    expected = {
        upload_file_name(p, b): write_operations(batch.rows)
        for p, phase in enumerate(the_plan.phases, 1)
        for b, batch in enumerate(phase.batches, 1)
    }
    assert len(expected) == 3  # 6 Updates at 2 per file; the Create in file 1, the new number's Update after it
    assert sorted(path.name for path in out.iterdir()) == sorted([*expected, "review.csv"])
    for name, body in expected.items():
        assert (out / name).read_bytes() == body
        assert f"wrote {out / name}" in result.output
    # Exactly what apply sends, file for file.
    recorder = Recorder()
    apply_plan(the_plan, recorder)
    assert recorder.bodies == list(expected.items())
    # The upload files keep values verbatim.
    uploads = b"".join(expected.values()).decode()
    assert '"=HYPERLINK(""http://x.invalid"")"' in uploads and ",+44 call back" in uploads and ",@ops," in uploads

    rows = list(csv.DictReader(io.StringIO((out / "review.csv").read_text("utf-8"), newline="")))
    assert list(rows[0]) == ["PHASE", "BATCH", *OPERATION_COLUMNS]
    assert len(rows) == sum(len(p.rows) for p in the_plan.phases) == 7
    by_number = {(r["NUMBER"], r["OPERATION"]): r for r in rows}
    assert by_number[("+12015550100", "Update")]["NOTE"] == '\'=HYPERLINK("http://x.invalid")'
    assert by_number[("+12015550104", "Update")]["NOTE"] == "'+44 call back"
    assert by_number[("+12015550109", "Update")]["NOTE"] == "'-5 degrees"
    assert by_number[("+12015550114", "Update")]["NOTE"] == "plain"
    assert by_number[("+12015550101", "Update")]["APPLICATION_TAG"] == NULL
    created = by_number[("+12015550250", "Update")]
    assert (
        created["APPLICATION_TAG"] == "'@ops" and created["MINIAPP_ID"] == QA_MINIAPP and created["LOCALE"] == "en-US"
    )
    assert (created["PHASE"], created["BATCH"]) == ("2", "1")
    assert all(r["NUMBER"].startswith("+1201555") for r in rows)  # NUMBER keeps its +
    assert emulator.stats()["put_requests"] == 0


def test_detailed_exitcode(tmp_path: Path, emulator: EmulatorProcess) -> None:
    de = [r for r in live_records(emulator) if r.group_id == "de-service"]
    config = workspace(tmp_path, emulator.base_url, {"de-service": False})
    write_desired(tmp_path, de, ["de-service"])

    same = run(config, "plan", "--detailed-exitcode")
    assert same.exit_code == 0 and "No changes." in same.output

    write_desired(tmp_path, [with_fields(r, note="neu") if r.number == de[0].number else r for r in de], ["de-service"])
    changed = run(config, "plan", "--detailed-exitcode")
    assert changed.exit_code == 2 and "Plan: 0 to create, 1 to update" in changed.output
    assert run(config, "plan").exit_code == 0  # without the flag, changes are success

    (tmp_path / "desired" / "de-service.yaml").write_text(
        "group_id: de-service\nnumbers:\n  +493012345678: {}\n"
    )  # unquoted number
    broken = run(config, "plan", "--detailed-exitcode")
    assert broken.exit_code == 1 and "quote this value" in broken.output

    write_desired(tmp_path, de, ["de-service"])
    denied = run(config, "plan", "--detailed-exitcode", env={"OCP_USERNAME": "demo", "OCP_PASSWORD": "wrong"})
    assert denied.exit_code == 1
    assert emulator.stats()["put_requests"] == 0


def test_detailed_exitcode_usage_error_is_not_mistaken_for_changes(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["--config", str(tmp_path / "numsync.yaml"), "plan", "--detailed-exitcode", "--detailed-exitcodes"],
        env={},
    )
    assert "No such option" in result.output
    assert result.exit_code == 1


def test_rehearsal_of_a_plan_naming_an_unknown_miniapp_fails_before_the_tenant_is_touched(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    ocp_qa = [r for r in live_records(emulator) if r.group_id == "ocp-qa"]
    nowhere = "00000000-0000-4000-8000-000000000000.no_such_flow.Flow.ocp-qa@no_such_flow.ocp-qa"
    desired = [with_fields(r, miniapp_id=nowhere, locale="en-US") if r.number == "+12015550104" else r for r in ocp_qa]
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": True})
    write_desired(tmp_path, desired, ["ocp-qa"])
    before = emulator.numbers()

    result = run(config, "plan", "--rehearse", "--detailed-exitcode")

    assert result.exit_code == 1, result.output
    assert "Rehearsal on a local emulator seeded from this export:" in result.output
    assert f"unknown MINIAPP_ID {nowhere}" in result.output
    assert "NOT converged" in result.output
    assert "the rehearsal did not converge" in result.output and "Nothing was written to OCP" in result.output
    assert emulator.stats()["put_requests"] == 0
    assert emulator.numbers() == before


def test_rehearsal_of_a_good_plan_converges(tmp_path: Path, emulator: EmulatorProcess) -> None:
    ocp_qa = [r for r in live_records(emulator) if r.group_id == "ocp-qa"]
    desired = [
        with_fields(r, miniapp_id=QA_MINIAPP, locale="en-US", note="rehearsed") if r.number == "+12015550104" else r
        for r in ocp_qa
        if r.number != "+12015550100"
    ]
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": True})
    write_desired(tmp_path, desired, ["ocp-qa"])
    before = emulator.numbers()

    result = run(config, "plan", "--rehearse", "--detailed-exitcode")

    assert result.exit_code == 2, result.output
    rehearsal = result.output.split("Rehearsal on a local emulator seeded from this export:", 1)[1]
    assert "Applied 3 of 3 operation(s) in 2 request(s), 0 failed, 0 skipped." in rehearsal  # Detach+Update → Delete
    assert "Verified: live now matches desired." in rehearsal
    assert emulator.stats()["put_requests"] == 0
    assert emulator.numbers() == before
