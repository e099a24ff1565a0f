"""The plan and apply policies as library calls, without click: the pure rules one by one,
the report registries, and whole runs against the emulator with a recording observer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from cli_workspace import CREDENTIALS, live_records, workspace, write_desired

from numsync.config import Environment, load_config
from numsync.core.diff import Diff
from numsync.core.fmt import FileResult
from numsync.core.safety import LiftContext, Violation
from numsync.emulator.process import EmulatorProcess
from numsync.errors import (
    ConfirmationRefusal,
    FreezeRefusal,
    ImportRefusal,
    MissingFolderError,
    PlanFileError,
    TamperedPlanError,
)
from numsync.ocp.rows import Batch, OperationRow, Phase
from numsync.ocp.vocabulary import Operation
from numsync.reports import drift as drift_reports
from numsync.reports import plan_formats, problems
from numsync.reports.registry import Format, Registry, UnknownFormat
from numsync.workflow import policy
from numsync.workflow.apply import ApplyResult, BatchOutcome, RowFailure
from numsync.workflow.events import ApplyObserver, FmtObserver, ImportObserver, PlanObserver
from numsync.workflow.plan import Notice, NoticeKind, Plan
from numsync.workflow.run_apply import ApplyRequest, run_apply
from numsync.workflow.run_fmt import FmtRequest, run_fmt
from numsync.workflow.run_import import ImportRequest, run_import
from numsync.workflow.run_plan import PlanRequest, run_plan

# --- the pure rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("explicit", "environ", "expected"),
    [
        (None, {}, None),
        (None, {"CI": ""}, None),
        (None, {"CI": "true"}, Path("numsync-journal.jsonl")),
        (Path("mine.jsonl"), {"CI": "true"}, Path("mine.jsonl")),
        (Path("mine.jsonl"), {}, Path("mine.jsonl")),
    ],
)
def test_journal_path_defaults_only_in_ci(
    explicit: Path | None, environ: dict[str, str], expected: Path | None
) -> None:
    assert policy.journal_path(explicit, environ) == expected


def test_no_freeze_needs_no_reason() -> None:
    assert policy.freeze_decision(None, None) is False
    assert policy.freeze_decision(None, "a reason nobody needed") is False


def test_a_reason_overrides_a_freeze() -> None:
    assert policy.freeze_decision("holiday freeze", "outage fix, INC-1") is True


@pytest.mark.parametrize("reason", [None, "", "   \t"])
def test_a_freeze_without_a_real_reason_refuses(reason: str | None) -> None:
    with pytest.raises(FreezeRefusal) as refused:
        policy.freeze_decision("holiday freeze", reason)
    message = refused.value.explain()
    assert message.startswith("apply refused: a change freeze is in force: holiday freeze. Nothing was written.")
    assert ("blank reason, which does not count" in message) is (reason is not None)
    assert message.endswith('pass --override-freeze "<why>" (recorded in the journal)')


@pytest.mark.parametrize(
    ("saved_plan", "auto_approve", "needed"),
    [(False, False, True), (False, True, False), (True, False, False), (True, True, False)],
)
def test_only_a_fresh_plan_without_auto_approve_needs_confirmation(
    saved_plan: bool, auto_approve: bool, needed: bool
) -> None:
    assert policy.confirmation_needed(saved_plan=saved_plan, auto_approve=auto_approve) is needed


def test_confirmation_without_a_terminal_refuses_without_asking() -> None:
    asked: list[str] = []
    with pytest.raises(ConfirmationRefusal, match="no terminal to ask on; pass --auto-approve"):
        policy.confirm("Apply?", interactive=False, ask=lambda q: asked.append(q) or True)
    assert asked == []


def test_confirmation_asks_and_a_no_refuses() -> None:
    asked: list[str] = []
    policy.confirm("Apply these changes to test?", interactive=True, ask=lambda q: asked.append(q) or True)
    assert asked == ["Apply these changes to test?"]
    with pytest.raises(ConfirmationRefusal, match="cancelled"):
        policy.confirm("Apply?", interactive=True, ask=lambda q: False)


def test_safety_refusal_lists_each_violation_and_the_gitlab_hint_only_in_gitlab_ci() -> None:
    violations = [Violation("3 deletes exceed max_deletes 2.", "--override-thresholds")]
    assert policy.safety_refusal([], {"GITLAB_CI": "true"}) is None
    plain = policy.safety_refusal(violations, {})
    assert plain is not None
    make = 'numsync plan --override-thresholds --reason "<why>" --out plan.json'
    assert plain.details == [
        "Refused: 3 deletes exceed max_deletes 2. To apply anyway after review, make the plan with "
        f"--override-thresholds and a reason: {make}."
    ]
    assert plain.explain() == "1 safety check(s) failed (above); nothing was written"
    # apply of a saved plan: a flag to apply would be refused (the plan must record it), so: plan again
    saved = policy.safety_refusal(violations, {}, LiftContext.SAVED_PLAN)
    assert saved is not None
    assert saved.details == [
        "Refused: 3 deletes exceed max_deletes 2. To apply anyway after review, make the plan again with "
        f"--override-thresholds and a reason ({make}), then apply that plan."
    ]
    in_ci = policy.safety_refusal(violations, {"GITLAB_CI": "true"})
    assert in_ci is not None and len(in_ci.details) == 2
    # in a pipeline the flag is no way out: only the label hint says how
    assert in_ci.details[0] == "Refused: 3 deletes exceed max_deletes 2." and "--reason" not in in_ci.details[1]
    assert (
        in_ci.details[1].startswith("In GitLab CI:")
        and '"numsync::override-thresholds" to the merge request' in in_ci.details[1]
    )


def _plan(phases: list[Phase] | None = None, conflicts: Sequence[str] = ()) -> Plan:
    return Plan("test", phases or [], [], conflicts=list(conflicts))


def test_plan_exit_code_is_2_only_for_changes_with_detailed_exitcode() -> None:
    changes = _plan([Phase((Batch((OperationRow(Operation.DELETE, "+12015550100"),)),))])
    assert policy.plan_exit_code(changes, detailed=True) == 2
    assert policy.plan_exit_code(changes, detailed=False) == 0
    assert policy.plan_exit_code(_plan(), detailed=True) == 0


def test_apply_exit_code_needs_every_row_applied_and_convergence() -> None:
    converged, differs = Diff(), Diff(changes=[object()])  # type: ignore[list-item]
    assert policy.apply_exit_code(None, None) == 0  # nothing to do
    assert policy.apply_exit_code(ApplyResult(applied=3), converged) == 0
    assert policy.apply_exit_code(ApplyResult(applied=3), differs) == 1
    assert policy.apply_exit_code(ApplyResult(interrupted="stopped"), converged) == 1


def test_conflicts_refuse() -> None:
    policy.refuse_conflicts(_plan())
    with pytest.raises(Exception, match="the plan has conflicts"):
        policy.refuse_conflicts(_plan(conflicts=["+1 is in two files"]))


def test_a_saved_plan_must_upload_what_its_state_gives() -> None:
    delete = OperationRow(Operation.DELETE, "+12015550100")
    fresh = _plan([Phase((Batch((OperationRow(Operation.DETACH, "+12015550100"),)),)), Phase((Batch((delete,)),))])
    policy.check_untampered(fresh, replace(fresh), Path("plan.json"))
    edited = replace(fresh, phases=fresh.phases[:1])  # the Delete taken out by hand
    with pytest.raises(TamperedPlanError, match=r"plan.json: its operations do not follow"):
        policy.check_untampered(edited, fresh, Path("plan.json"))


# --- the registries ---------------------------------------------------------------------------


def test_registry_names_help_and_lookup() -> None:
    registry: Registry[int] = Registry("numbers", (Format("dec", "decimal", str), Format("hex", "hexadecimal", hex)))
    assert registry.names == ("dec", "hex")
    assert registry.help_text() == "dec: decimal; hex: hexadecimal"
    assert registry.get("hex").render(255) == "0xff"
    with pytest.raises(UnknownFormat) as unknown:
        registry.get("oct")
    assert str(unknown.value) == "'oct' is not one of dec, hex"


def test_registry_refuses_two_formats_of_one_name() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        Registry("numbers", (Format("dec", "a", str), Format("dec", "b", str)))


def test_the_families_and_their_formats() -> None:
    assert plan_formats.FORMATS.names == ("text", "markdown", "json")
    assert drift_reports.FORMATS.names == ("text", "markdown", "json", "junit", "html")
    assert problems.FORMATS.names == ("text", "json", "codequality")


def test_every_notice_reaches_every_plan_format_and_survives_saving() -> None:
    plan = _plan()
    plan.notices = [
        Notice(NoticeKind.FREEZE, "a change freeze is in force: year-end"),
        Notice(NoticeKind.SAFETY, "max_deletes exceeded.", "--override-thresholds"),
    ]
    rendered = {f.name: f.render(plan_formats.PlanReport(plan)) for f in plan_formats.FORMATS.formats}
    assert "No changes." in rendered["text"]
    assert "Note: a change freeze is in force: year-end" in rendered["text"]
    assert (
        "Apply would be refused by these safety checks:\n  - max_deletes exceeded. To apply anyway" in rendered["text"]
    )
    assert "`a change freeze is in force: year-end`" in rendered["markdown"]
    assert (
        "Apply would be refused" in rendered["markdown"]
        and "`max_deletes exceeded. To apply anyway" in rendered["markdown"]
    )
    saved = json.loads(rendered["json"])
    assert saved["environment"] == "test"
    assert saved["notices"] == [
        {"kind": "freeze", "text": "a change freeze is in force: year-end"},
        {"kind": "safety", "text": "max_deletes exceeded.", "flag": "--override-thresholds"},
    ]
    # read back (show): the same notices; a saved plan is lifted by planning again, not by a flag to apply
    again = Plan.from_json(saved)
    assert again.notices == plan.notices
    shown = plan_formats.FORMATS.get("text").render(plan_formats.PlanReport(again, LiftContext.SAVED_PLAN))
    assert "Note: a change freeze is in force" in shown and "make the plan again with --override-thresholds" in shown
    # a plan saved before notices existed reads as one without any
    del saved["notices"]
    assert Plan.from_json(saved).notices == []
    with pytest.raises(PlanFileError, match=r"at notices\[0\]"):
        Plan.from_json(json.loads(rendered["json"]) | {"notices": [{"kind": "bogus", "text": "x"}]})


def test_the_problems_text_format_keeps_its_scope() -> None:
    rendered = problems.FORMATS.get("text").render(problems.ProblemReport([], "3 number(s) in 1 environment(s)"))
    assert rendered == "OK: no problems (3 number(s) in 1 environment(s))\n"
    assert problems.FORMATS.get("json").render(problems.ProblemReport([])) == "[]\n"


# --- whole runs against the emulator ------------------------------------------------------------


class Recorder(PlanObserver, ApplyObserver):
    """Every event as (name, detail), in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def planned(self, plan: Plan, violations: Sequence[Violation] = (), notices: Sequence[str] = ()) -> None:  # type: ignore[override]
        self.events.append(("planned", plan.summary_line()))

    def saved(self, path: Path, *, refused: bool = False) -> None:
        self.events.append(("saved", path))

    def applying(self, environment: str, base_url: str) -> None:
        self.events.append(("applying", environment))

    def batch_done(self, outcome: BatchOutcome) -> None:
        self.events.append(("batch", outcome.status))

    def applied(self, result: ApplyResult, desired: object) -> None:
        self.events.append(("applied", result.applied))

    def verified(self, remaining: Diff) -> None:
        self.events.append(("verified", remaining.empty))


def _environment(tmp_path: Path, emulator: EmulatorProcess) -> Environment:
    """``test`` with au-support pruned and one of its numbers left out of desired: one Detach and one Delete."""
    config = workspace(tmp_path, emulator.base_url, {"au-support": True})
    write_desired(tmp_path, [r for r in live_records(emulator) if r.group_id == "au-support"][:-1], ["au-support"])
    return load_config(config).environment("test")


def test_plan_reports_saves_and_exits_2_with_detailed_exitcode(tmp_path: Path, emulator: EmulatorProcess) -> None:
    env = _environment(tmp_path, emulator)
    recorder = Recorder()
    request = PlanRequest(env, save_to=tmp_path / "plan.json", detailed_exitcode=True, environ=CREDENTIALS)
    outcome = run_plan(request, recorder)
    assert outcome.exit_code == 2 and not outcome.plan.empty
    assert recorder.events == [("planned", outcome.plan.summary_line()), ("saved", tmp_path / "plan.json")]
    assert Plan.from_json(json.loads((tmp_path / "plan.json").read_text())).to_json() == outcome.plan.to_json()
    assert emulator.stats()["put_requests"] == 0


def test_apply_without_a_terminal_refuses_before_writing(tmp_path: Path, emulator: EmulatorProcess) -> None:
    request = ApplyRequest(_environment(tmp_path, emulator), interactive=True, environ=CREDENTIALS)
    with pytest.raises(ConfirmationRefusal, match="cancelled"):
        run_apply(request, confirm=lambda question: False)
    with pytest.raises(ConfirmationRefusal, match="no terminal"):
        run_apply(replace(request, interactive=False), confirm=lambda question: True)
    assert emulator.stats()["put_requests"] == 0


def test_apply_confirms_applies_journals_and_verifies(tmp_path: Path, emulator: EmulatorProcess) -> None:
    env = _environment(tmp_path, emulator)
    recorder, asked = Recorder(), []
    request = ApplyRequest(env, interactive=True, journal=tmp_path / "journal.jsonl", environ=CREDENTIALS)
    outcome = run_apply(request, recorder, confirm=lambda question: asked.append(question) or True)
    assert outcome.exit_code == 0 and outcome.result is not None and outcome.result.ok
    assert asked == ["Apply these changes to test?"]
    names = [name for name, _ in recorder.events]
    assert names[:2] == ["planned", "applying"] and names[-2:] == ["applied", "verified"]
    assert set(names[2:-2]) == {"batch"} and recorder.events[-1] == ("verified", True)
    journal = [json.loads(line)["event"] for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert journal[0] == "apply-start" and journal[-1] == "apply-end"
    assert journal.count("request") == names.count("batch") == emulator.stats()["put_requests"]
    assert "demo-secret" not in (tmp_path / "journal.jsonl").read_text()


def test_an_empty_plan_applies_nothing_and_exits_0(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = workspace(tmp_path, emulator.base_url, {"au-support": True})
    write_desired(tmp_path, [r for r in live_records(emulator) if r.group_id == "au-support"], ["au-support"])
    recorder = Recorder()
    outcome = run_apply(ApplyRequest(load_config(config).environment("test"), environ=CREDENTIALS), recorder)
    assert outcome.plan.empty and outcome.result is None and outcome.exit_code == 0
    assert [name for name, _ in recorder.events] == ["planned"]
    assert emulator.stats()["put_requests"] == 0


def test_row_failures_make_apply_exit_1() -> None:
    failed = ApplyResult(failures=[RowFailure(object(), "refused")])  # type: ignore[arg-type]
    assert policy.apply_exit_code(failed, Diff()) == 1


def test_import_refuses_an_unmanaged_group_before_exporting(tmp_path: Path, emulator: EmulatorProcess) -> None:
    env = load_config(workspace(tmp_path, emulator.base_url, {"au-support": True})).environment("test")
    with pytest.raises(ImportRefusal, match="group\\(s\\) nowhere are not managed by environment 'test'"):
        run_import(ImportRequest(env, ["nowhere"], environ=CREDENTIALS))
    assert emulator.stats()["export_requests"] == 0


def test_import_writes_each_group_once_and_never_overwrites_without_force(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    env = load_config(workspace(tmp_path, emulator.base_url, {"au-support": True})).environment("test")
    written: list[Path] = []

    class Wrote(ImportObserver):
        def wrote(self, path: Path) -> None:
            written.append(path)

    assert (
        run_import(ImportRequest(env, environ=CREDENTIALS), Wrote()).written
        == written
        == [env.desired / "au-support.yaml"]
    )
    (env.desired / "au-support.yaml").write_text("# reviewed by hand\n")
    with pytest.raises(ImportRefusal, match="pass --force to replace them"):
        run_import(ImportRequest(env, environ=CREDENTIALS))
    assert (env.desired / "au-support.yaml").read_text() == "# reviewed by hand\n"
    run_import(ImportRequest(env, force=True, environ=CREDENTIALS))
    assert "group_id" in (env.desired / "au-support.yaml").read_text()


def test_fmt_check_reports_without_writing_and_a_file_with_problems_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("group_id: a\nnumbers:\n  '+12015550101': {}\n  '+12015550100': {}\n")
    (tmp_path / "b.yaml").write_text("group_id: [not, a, string\n")
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    seen: list[tuple[str, str]] = []

    class Seen(FmtObserver):
        def refused(self, result: FileResult) -> None:
            seen.append(("refused", result.path.name))

        def reformatted(self, result: FileResult, *, written: bool) -> None:
            seen.append(("written" if written else "would", result.path.name))

    check = run_fmt(FmtRequest([tmp_path], check=True), Seen())
    assert (check.files, check.changed, check.refused, check.exit_code) == (2, 1, 1, 1)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before
    assert sorted(seen) == [("refused", "b.yaml"), ("would", "a.yaml")]
    run_fmt(FmtRequest([tmp_path]))
    assert (tmp_path / "a.yaml").read_text() != before["a.yaml"] and (tmp_path / "b.yaml").read_text() == before[
        "b.yaml"
    ]


def test_fmt_without_paths_needs_each_desired_folder(tmp_path: Path) -> None:
    config = workspace(tmp_path, "http://127.0.0.1:9/integrations", {"a": False})
    (tmp_path / "desired").rmdir()
    with pytest.raises(MissingFolderError, match=r"desired folder .*desired does not exist"):
        run_fmt(FmtRequest(config_path=config))
