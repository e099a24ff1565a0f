"""The results rows, their files (CSV, JSON, JUnit) and the reader --retry-failed uses; the diff's scope."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from numsync.core.desired import DesiredState
from numsync.core.diff import ChangeKind, Diff, Scope, diff
from numsync.core.model import Field, NumberRecord
from numsync.core.policy import GroupPolicy
from numsync.core.yamlsrc import Location
from numsync.errors import ResultsFileError
from numsync.ocp.rows import Batch, OperationRow, Phase
from numsync.ocp.vocabulary import Operation
from numsync.reports import results as files
from numsync.workflow.apply import BatchOutcome, RowFailure
from numsync.workflow.plan import Plan
from numsync.workflow.plandiff import compare_plans
from numsync.workflow.results import Outcome, ResultFormat, ResultsRecorder, read_results

A, B, C = "+442079460958", "+442079460959", "+442079460960"


def _plan() -> Plan:
    update = OperationRow(Operation.UPDATE, A, {"NOTE": "x"})
    detach, delete = OperationRow(Operation.DETACH, B), OperationRow(Operation.DELETE, B)
    other = OperationRow(Operation.UPDATE, C, {"NOTE": "y"})
    return Plan("prod", [Phase((Batch((update, detach)), Batch((other,)))), Phase((Batch((delete,)),))], [])


def _desired() -> DesiredState:
    state = DesiredState()
    state.locations = {A: Location("desired/uk.yaml", 4, 3), C: Location("desired/uk.yaml", 9, 3)}
    return state


def _recorded() -> ResultsRecorder:
    plan = _plan()
    recorder = ResultsRecorder(plan, _desired())
    first, second = plan.phases[0].batches
    recorder.sending(1, 1, first.rows)
    hostile = '=HYPERLINK("http://x")\u202e\x01'
    recorder.batch_done(BatchOutcome(1, 1, 2, 200, (RowFailure(first.rows[1], hostile),), rows_sent=first.rows))
    recorder.sending(1, 2, second.rows)
    recorder.batch_done(BatchOutcome(1, 2, 1, None, error="reset", ambiguous=True, rows_sent=second.rows))
    recorder.batch_done(BatchOutcome(2, 1, 0, None, skipped=plan.phases[1].batches[0].rows))
    return recorder


def test_rows_follow_the_plan_and_each_file_s_outcome() -> None:
    rows = _recorded().finish(None).rows
    assert [(r.number, r.operation, r.phase, r.batch, r.outcome) for r in rows] == [
        (A, Operation.UPDATE, 1, 1, Outcome.APPLIED),
        (B, Operation.DETACH, 1, 1, Outcome.FAILED),
        (C, Operation.UPDATE, 1, 2, Outcome.UNKNOWN),
        (B, Operation.DELETE, 2, 1, Outcome.NOT_SENT),
    ]
    assert [r.desired_at for r in rows] == ["desired/uk.yaml:4", "", "desired/uk.yaml:9", ""]  # B is a removal
    assert rows[3].message == "not sent: an earlier row of this number failed"


def test_the_verify_turns_an_unknown_outcome_into_applied_only_when_the_number_converged() -> None:
    recorder = _recorded()
    recorder.verified(Diff())
    assert recorder.finish(None).rows[2].outcome is Outcome.APPLIED
    still = _recorded()
    live = NumberRecord(C, "uk", {Field.NOTE: "old"})
    want = NumberRecord(C, "uk", {Field.NOTE: "y"})
    still.verified(diff({C: want}, [live], {"uk": GroupPolicy("uk")}))
    assert still.finish(None).rows[2].outcome is Outcome.UNKNOWN


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_a_results_file_round_trips_and_neutralizes_formulas_in_csv(tmp_path: Path, suffix: str) -> None:
    results = _recorded().finish(None)
    path = tmp_path / f"results{suffix}"
    text = files.render(results, ResultFormat.of(path))
    path.write_text(text, "utf-8")
    back = read_results(path)
    assert back.environment == "prod"
    assert [(r.number, r.operation, r.outcome) for r in back.rows] == [
        (r.number, r.operation, r.outcome) for r in results.rows
    ]
    assert back.not_applied() == [B, C]
    if suffix == ".csv":
        cells = list(csv.reader(io.StringIO(text, newline="")))
        assert cells[2][6].startswith("'=HYPERLINK")  # a spreadsheet shows it, never runs it
        assert cells[1][1] == A  # NUMBER keeps its +


def test_junit_has_one_failing_case_per_number_not_applied_and_is_valid_xml_whatever_the_message() -> None:
    root = ET.fromstring(files.render_junit(_recorded().finish(None)))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("failures") == "2" and suite.get("tests") == "3"
    failing = {c.get("name"): c.find("failure") for c in suite.iter("testcase") if c.find("failure") is not None}
    assert set(failing) == {B, C}
    failure = failing[B]
    assert failure is not None and "\\u202e" in (failure.get("message") or "")  # visible, not raw
    assert "Delete (phase 2, file 1): not_sent" in (failure.text or "")


def test_an_unknown_extension_is_refused_in_words() -> None:
    with pytest.raises(ResultsFileError, match=r"ends in \.csv or \.json"):
        ResultFormat.of(Path("results.xlsx"))


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("number,outcome\n", "row 1 must be the header"),
        (
            "environment,number,operation,phase,batch,outcome,message,desired_at\nprod,+44,Update,1,1,failed,,\n",
            "row 2, column 2 (number)",
        ),
        (
            "environment,number,operation,phase,batch,outcome,message,desired_at\nprod,+442079460958,Upsert,1,1,failed,,\n",
            "row 2, column 3 (operation): 'Upsert'",
        ),
        (
            "environment,number,operation,phase,batch,outcome,message,desired_at\nprod,+442079460958,Update,one,1,failed,,\n",
            "row 2, column 4 (phase): 'one' is not a whole number",
        ),
        (
            "environment,number,operation,phase,batch,outcome,message,desired_at\nprod,+442079460958,Update,1,1\n",
            "row 2 has 5 cells",
        ),
        (
            "environment,number,operation,phase,batch,outcome,message,desired_at\n,+442079460958,Update,1,1,failed,,\n",
            "row 2, column 1 (environment): empty",
        ),
    ],
)
def test_a_bad_csv_results_file_is_refused_naming_row_and_column(tmp_path: Path, text: str, said: str) -> None:
    path = tmp_path / "r.csv"
    path.write_text(text)
    with pytest.raises(ResultsFileError, match=said.replace("(", r"\(").replace(")", r"\)")):
        read_results(path)


def test_a_json_results_file_without_its_environment_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text('{"format": "numsync-results", "version": 1, "complete": true, "rows": []}')
    with pytest.raises(ResultsFileError, match='"environment" must name the environment'):
        read_results(path)


def test_scope_limits_the_diff_to_named_numbers_and_groups() -> None:
    groups = {"a": GroupPolicy("a", prune=True), "b": GroupPolicy("b", prune=True)}
    live = [NumberRecord(A, "a"), NumberRecord(B, "b"), NumberRecord(C, "b", {Field.NOTE: "n"})]
    desired = {C: NumberRecord(C, "b")}
    full = diff(desired, live, groups)
    assert [(c.number, c.kind) for c in full.changes] == [
        (A, ChangeKind.DELETE),
        (B, ChangeKind.DELETE),
        (C, ChangeKind.UPDATE),
    ]
    only_c = diff(desired, live, groups, Scope(numbers=frozenset({C})))
    assert [c.number for c in only_c.changes] == [C] and only_c.excluded == 2  # A and B neither diffed nor pruned
    group_a = diff(desired, live, groups, Scope(groups=frozenset({"a"})))
    assert [c.number for c in group_a.changes] == [A]
    # a replacement is in scope by either of its groups
    moving = diff({A: NumberRecord(A, "b")}, [NumberRecord(A, "a")], groups, Scope(groups=frozenset({"b"})))
    assert [c.kind for c in moving.changes] == [ChangeKind.REPLACE]


def test_a_retry_with_nothing_left_says_so_in_words() -> None:
    # every row of the results file ended as applied: the scope is empty, and the warning must say that
    # rather than "only no number are planned"
    warning = Scope().warning()
    assert "nothing in scope" in warning and "no row left that did not end as applied" in warning
    assert "only" not in warning
    assert Scope(numbers=frozenset({A})).warning().startswith(f"Partial run: only number(s) {A} are planned.")


def test_files_in_flight_together_are_tracked_apart() -> None:
    plan = _plan()
    recorder = ResultsRecorder(plan, _desired())
    first, second = plan.phases[0].batches
    recorder.sending(1, 1, first.rows)
    recorder.sending(1, 2, second.rows)  # two files out at once (concurrent apply)
    recorder.batch_done(BatchOutcome(1, 1, 2, 200, rows_sent=first.rows))
    recorder.not_sent("no token")  # the other one never left
    rows = recorder.finish(None).rows
    assert [r.outcome for r in rows] == [Outcome.APPLIED, Outcome.APPLIED, Outcome.NOT_SENT, Outcome.NOT_SENT]
    assert rows[2].message == "not sent: no token"


def test_plan_diff_names_a_changed_scope() -> None:
    full, partial = _plan(), _plan()
    partial.scope = Scope(groups=frozenset({"uk"}), numbers=frozenset({A}))
    assert compare_plans(full, partial).other == [f"scope: every number → group(s) uk and number(s) {A}"]
    assert compare_plans(partial, partial).empty
