"""Retirement with a grace period (retire_after): detached and marked now, deleted only after the grace, restored
without a Create if it comes back. The CLI runs in-process under freezegun; the emulator is a real process over HTTP."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from cli_workspace import REAL_CLOCK, live_records, run, workspace, write_desired
from freezegun import freeze_time

from numsync.config import load_config
from numsync.core.diff import ChangeKind, diff
from numsync.core.model import Field, NumberRecord, normalize_value
from numsync.core.policy import GroupPolicy, RetireMark
from numsync.emulator.process import EmulatorProcess
from numsync.errors import ConfigError
from numsync.ocp.compile import chain
from numsync.ocp.vocabulary import Operation

RETIRING = '{prune: true, retire_after: 14d, retire_mark: {field: note, value: "retiring since {date}"}}'


def _day(day: str) -> freeze_time:
    return freeze_time(f"{day}T09:00:00+00:00", tick=True, ignore=REAL_CLOCK)


def _log(emulator: EmulatorProcess) -> list[dict[str, str]]:
    entries: list[dict[str, str]] = httpx.get(f"{emulator.url}/_emulator/log").json()
    return entries


def test_a_removed_number_is_detached_and_marked_deleted_only_after_the_grace_and_restored_if_it_returns(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    qa = sorted((r for r in live_records(emulator) if r.group_id == "ocp-qa"), key=lambda r: r.number)
    attached = [r for r in qa if r.get(Field.MINIAPP_ID)]
    gone, back = attached[0], attached[1]
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": RETIRING})
    keep = [r for r in qa if r.number not in (gone.number, back.number)]
    write_desired(tmp_path, keep, ["ocp-qa"])

    with _day("2026-12-02"):
        planned = run(config, "plan")
        assert planned.exit_code == 0, planned.output
        assert f"{gone.number}  (ocp-qa)  retire  retiring, deleted on or after 2026-12-16" in planned.output
        markdown = run(config, "plan", "--format", "markdown")
        assert "retire: detached and marked; retiring, deleted on or after 2026-12-16" in markdown.output
        applied = run(config, "apply", "--auto-approve")
        assert applied.exit_code == 0, applied.output
        assert "Verified: live now matches desired." in applied.output
    numbers = emulator.numbers()
    for r in (gone, back):  # detached and marked now, not deleted
        assert numbers[r.number]["MINIAPP_ID"] == "" and numbers[r.number]["NOTE"] == "retiring since 2026-12-02"
    assert not any(e["OPERATION"] == "Delete" for e in _log(emulator))

    with _day("2026-12-07"):
        drift = run(config, "drift")  # the marked numbers are expected: no drift
        assert drift.exit_code == 0, drift.output
        write_desired(tmp_path, [*keep, back], ["ocp-qa"])  # it comes back within the grace
        restored_plan = run(config, "plan")
        assert "Retiring: 1 number(s)" in restored_plan.output
        assert f"{gone.number}  (ocp-qa)  marked 2026-12-02: retiring, deleted on or after 2026-12-16" in (
            restored_plan.output
        )
        logged = len(_log(emulator))
        restored = run(config, "apply", "--auto-approve")
        assert restored.exit_code == 0, restored.output
    sent = _log(emulator)[logged:]
    assert [e["NUMBER"] for e in sent] == [back.number]
    assert all(e["OPERATION"] != "Create" for e in sent)  # restored, never created
    numbers = emulator.numbers()
    assert numbers[back.number]["MINIAPP_ID"] == back.get(Field.MINIAPP_ID)
    assert numbers[back.number]["NOTE"] == (back.get(Field.NOTE) or "")

    with _day("2026-12-15"):  # one day before the grace ends: nothing to do
        early = run(config, "plan", "--detailed-exitcode")
        assert early.exit_code == 0, early.output
        assert gone.number in emulator.numbers()

    with _day("2026-12-16"):
        assert run(config, "drift").exit_code == 0  # due for deletion: expected, still no drift
        due = run(config, "plan")
        assert (
            f"- {gone.number}  (ocp-qa)  delete  (retired: marked 2026-12-02, its grace period ended on 2026-12-16)"
            in (due.output)
        )
        deleted = run(config, "apply", "--auto-approve")
        assert deleted.exit_code == 0, deleted.output
    assert gone.number not in emulator.numbers()
    assert [e["OPERATION"] for e in _log(emulator) if e["NUMBER"] == gone.number][-1] == "Delete"


def test_a_due_number_attached_again_by_hand_is_a_conflict_not_a_release(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    qa = sorted((r for r in live_records(emulator) if r.group_id == "ocp-qa"), key=lambda r: r.number)
    gone = next(r for r in qa if r.get(Field.MINIAPP_ID))
    miniapp = gone.get(Field.MINIAPP_ID)
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": RETIRING})
    keep = [r for r in qa if r.number != gone.number]
    write_desired(tmp_path, keep, ["ocp-qa"])
    with _day("2026-12-02"):
        assert run(config, "apply", "--auto-approve").exit_code == 0  # detached and marked
    assert emulator.numbers()[gone.number]["MINIAPP_ID"] == ""
    # someone attaches it again on the tenant: it is in use
    httpx.patch(f"{emulator.url}/_emulator/numbers/{gone.number}", json={"MINIAPP_ID": miniapp}).raise_for_status()

    logged = len(_log(emulator))
    with _day("2026-12-16"):  # the grace has ended
        planned = run(config, "plan")
        assert planned.exit_code == 1, planned.output
        assert "Conflicts (numsync will not resolve these):" in planned.output
        assert f"{gone.number} in group 'ocp-qa' was marked for retirement on 2026-12-02" in planned.output
        assert f"attached to miniapp {miniapp!r} again" in planned.output
        assert "put it back in a desired file" in planned.output and "detach it by hand" in planned.output
        assert f"- {gone.number}" not in planned.output  # no Delete, no Detach planned
        markdown = run(config, "plan", "--format", "markdown")
        assert f"attached to miniapp {miniapp!r} again" in markdown.output
        refused = run(config, "apply", "--auto-approve")
        assert refused.exit_code == 1, refused.output
        assert "conflict" in refused.output
    assert _log(emulator)[logged:] == []  # nothing sent
    assert emulator.numbers()[gone.number]["MINIAPP_ID"] == miniapp

    # a person decides: detached by hand, the next apply deletes it as the retirement said
    httpx.patch(f"{emulator.url}/_emulator/numbers/{gone.number}", json={"MINIAPP_ID": ""}).raise_for_status()
    with _day("2026-12-16"):
        deleted = run(config, "apply", "--auto-approve")
        assert deleted.exit_code == 0, deleted.output
    assert gone.number not in emulator.numbers()


def test_protected_numbers_are_never_retired_and_max_deletes_counts_the_deletion_after_the_grace(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    qa = sorted((r for r in live_records(emulator) if r.group_id == "ocp-qa"), key=lambda r: r.number)
    config = workspace(
        tmp_path,
        emulator.base_url,
        {"ocp-qa": "{prune: true, retire_after: 1d, max_deletes: 0}"},
        f'protected: ["{qa[0].number}"]',
    )
    write_desired(tmp_path, qa[1:], ["ocp-qa"])
    refused = run(config, "apply", "--auto-approve")
    assert refused.exit_code == 1 and f"protected number(s) {qa[0].number}" in refused.output
    assert emulator.stats()["put_requests"] == 0

    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": "{prune: true, retire_after: 1d, max_deletes: 0}"})
    with _day("2026-12-02"):
        assert run(config, "apply", "--auto-approve").exit_code == 0  # marked: no delete yet
    with _day("2026-12-03"):
        over = run(config, "apply", "--auto-approve")
        assert over.exit_code == 1 and "its max_deletes is 0" in over.output
    assert qa[0].number in emulator.numbers()
    assert (
        emulator.numbers()[qa[0].number]["APPLICATION_TAG"] == "numsync:retiring-since:2026-12-02"
    )  # the default mark


def test_the_diff_retires_by_the_mark_s_own_date() -> None:
    policy = GroupPolicy("g", prune=True, retire_after=14, retire_mark=RetireMark(Field.NOTE, "retiring since {date}"))
    groups = {"g": policy}
    number = "+12015550123"
    attached = NumberRecord(number, "g", {Field.MINIAPP_ID: "app", Field.LOCALE: "en-US", Field.NOTE: "hotline"})
    [marking] = diff({}, [attached], groups, today=dt.date(2026, 12, 2)).changes
    assert marking.kind is ChangeKind.RETIRE and marking.delete_on == dt.date(2026, 12, 16)
    assert {c.field: c.desired for c in marking.fields} == {
        Field.MINIAPP_ID: None,
        Field.NOTE: "retiring since 2026-12-02",
    }
    marked = NumberRecord(number, "g", {Field.LOCALE: "en-US", Field.NOTE: "retiring since 2026-12-02"})
    waiting = diff({}, [marked], groups, today=dt.date(2026, 12, 15))
    assert not waiting.changes and [r.delete_on for r in waiting.retiring] == [dt.date(2026, 12, 16)]
    assert [c.kind for c in diff({}, [marked], groups, today=dt.date(2026, 12, 16)).changes] == [ChangeKind.DELETE]
    # a NOTE that only looks like a mark is no mark: it is marked afresh
    odd = NumberRecord(number, "g", {Field.NOTE: "retiring since 2026-13-40"})
    assert [c.kind for c in diff({}, [odd], groups, today=dt.date(2026, 12, 2)).changes] == [ChangeKind.RETIRE]
    # a mark dated after today was written by no run (a hand edit, a wrong clock): it is marked afresh, from today
    future = NumberRecord(number, "g", {Field.NOTE: "retiring since 2099-01-01"})
    [afresh] = diff({}, [future], groups, today=dt.date(2026, 12, 2)).changes
    assert afresh.kind is ChangeKind.RETIRE and afresh.delete_on == dt.date(2026, 12, 16)
    assert {c.field: c.desired for c in afresh.fields} == {Field.NOTE: "retiring since 2026-12-02"}
    last_day = NumberRecord(number, "g", {Field.NOTE: "retiring since 9999-12-31"})  # + grace overflowed: a crash
    assert [c.kind for c in diff({}, [last_day], groups, today=dt.date(2026, 12, 2)).changes] == [ChangeKind.RETIRE]
    # re-attached by hand during the grace: detached again, the mark (and its date) kept
    again = NumberRecord(number, "g", marked.fields | {Field.MINIAPP_ID: "app"})
    [redo] = diff({}, [again], groups, today=dt.date(2026, 12, 5)).changes
    assert redo.kind is ChangeKind.RETIRE and [c.field for c in redo.fields] == [Field.MINIAPP_ID]
    assert redo.delete_on == dt.date(2026, 12, 16)
    assert [(r.operation, r.values) for r in chain(redo)] == [(Operation.DETACH, {"GROUP_ID": "g"})]  # the guard
    # re-attached by hand and found after the grace: in use, so a conflict that names it, never a Detach + Delete
    due = diff({}, [again], groups, today=dt.date(2026, 12, 16))
    assert not due.changes and not due.retiring
    [conflict] = due.conflicts
    assert number in conflict and "miniapp 'app'" in conflict and "grace period ended on 2026-12-16" in conflict


def test_a_desired_value_that_reads_as_the_retire_mark_is_refused(tmp_path: Path, emulator: EmulatorProcess) -> None:
    # removed from desired later, such a number would count as marked on that day and be deleted at once
    qa = sorted((r for r in live_records(emulator) if r.group_id == "ocp-qa"), key=lambda r: r.number)
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": RETIRING, "uk-care": "{prune: true, retire_after: 14d}"})
    clash = NumberRecord(qa[0].number, "ocp-qa", qa[0].fields | {Field.NOTE: "retiring since 2026-01-01"})
    uk = sorted((r for r in live_records(emulator) if r.group_id == "uk-care"), key=lambda r: r.number)
    same_note = NumberRecord(uk[0].number, "uk-care", uk[0].fields | {Field.NOTE: "retiring since 2026-01-01"})
    write_desired(tmp_path, [clash, *qa[1:], same_note, *uk[1:]], ["ocp-qa", "uk-care"])
    checked = run(config, "validate")
    assert checked.exit_code == 1
    assert (
        f"{qa[0].number}: note 'retiring since 2026-01-01' reads as the retire mark of group 'ocp-qa'" in checked.output
    )
    assert "ocp-qa.yaml:" in checked.output
    assert uk[0].number not in checked.output  # uk-care marks application_tag: its note is no mark
    planned = run(config, "plan")
    assert planned.exit_code == 1 and "retire mark" in planned.output
    assert emulator.stats()["put_requests"] == 0


def test_a_mark_with_a_carriage_return_is_read_back_as_written(tmp_path: Path) -> None:
    # live NOTEs are read with \n line ends; a mark kept with \r\n never matched its own value read back,
    # so the number was marked afresh every day and never deleted
    config = workspace(
        tmp_path,
        "http://127.0.0.1:9/integrations",
        {"g": '{prune: true, retire_after: 14d, retire_mark: {field: note, value: "retiring\\r\\nsince {date}"}}'},
    )
    policy = load_config(config).environment("test").groups["g"]
    written = policy.retire_mark.value(dt.date(2026, 12, 2))
    live = NumberRecord("+12015550123", "g", {Field.NOTE: normalize_value(Field.NOTE, written)})
    assert policy.retirement_mark(live) == dt.date(2026, 12, 2)
    assert not diff({}, [live], {"g": policy}, today=dt.date(2026, 12, 3)).changes


@pytest.mark.parametrize(
    ("group", "said"),
    [
        (
            "{retire_after: 14d}",
            "retire_after retires numbers removed from desired before deleting them, so it needs prune: true",
        ),
        (
            "{prune: true, retire_after: 14d, ignore_fields: [application_tag]}",
            "the retire mark's field application_tag is in ignore_fields",
        ),
        ("{prune: true, retire_mark: {field: note, value: 'x {date}'}}", "retire_mark is only used with retire_after"),
        (
            "{prune: true, retire_after: 14d, retire_mark: {field: note, value: 'no date'}}",
            '"no date" is not in the expected form: The mark, holding {date} exactly once',
        ),
        (
            "{prune: true, retire_after: two weeks}",
            '"two weeks" is not in the expected form: The grace period, in whole',
        ),
        # YAML reads 14 as a number; quoting it would not help, so the form is named, not "quote this value"
        (
            "{prune: true, retire_after: 14}",
            '"14" is not in the expected form: The grace period, in whole days from 1d',
        ),
        (
            "{prune: true, retire_after: 0d}",
            '"0d" is not in the expected form: The grace period, in whole days from 1d',
        ),
    ],
)
def test_retirement_settings_are_checked_with_their_place(tmp_path: Path, group: str, said: str) -> None:
    config = workspace(tmp_path, "http://127.0.0.1:9/integrations", {"g": group})
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert said in str(caught.value) and f"{config}:" in str(caught.value)


def test_a_saved_plan_of_a_retiring_environment_is_stale_the_next_day(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    qa = sorted((r for r in live_records(emulator) if r.group_id == "ocp-qa"), key=lambda r: r.number)
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": RETIRING})
    write_desired(tmp_path, qa[1:], ["ocp-qa"])
    plan_file = tmp_path / "plan.json"
    with _day("2026-12-02"):
        assert run(config, "plan", "--out", str(plan_file)).exit_code == 0
    with _day("2026-12-03"):
        stale = run(config, "apply", str(plan_file))
        assert stale.exit_code == 1
        assert (
            "it was made on 2026-12-02, and retirements (retire_after) are judged by the day (today is 2026-12-03)"
            in (stale.output)
        )
        assert emulator.stats()["put_requests"] == 0
        assert run(config, "plan", "--out", str(plan_file)).exit_code == 0
        fresh = run(config, "apply", str(plan_file))
        assert fresh.exit_code == 0, fresh.output
    assert emulator.numbers()[qa[0].number]["NOTE"] == "retiring since 2026-12-03"
