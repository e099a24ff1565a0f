"""plan diff: what differs between two saved plans, found with deepdiff and named in the project's words."""

from __future__ import annotations

from numsync.core.diff import ChangeKind, ChangeSummary
from numsync.core.model import Field
from numsync.ocp.rows import Batch, OperationRow, Phase
from numsync.ocp.vocabulary import Operation
from numsync.reports.plandiff import render_json, render_text
from numsync.workflow.plan import Plan
from numsync.workflow.plandiff import FieldDifference, compare_plans


def plan(changes: list[ChangeSummary], rows: list[OperationRow], fingerprint: str = "sha256:a") -> Plan:
    return Plan("prod", [Phase((Batch(tuple(rows)),))] if rows else [], changes, live_fingerprint=fingerprint)


NOTE_OLD = ChangeSummary("+12015550124", ChangeKind.UPDATE, "ocp-qa", {Field.NOTE: ("a", "b")})
NOTE_NEW = ChangeSummary("+12015550124", ChangeKind.UPDATE, "ocp-qa", {Field.NOTE: ("a", "c")})
CREATE = ChangeSummary("+12015550127", ChangeKind.CREATE, "ocp-qa", {})
DELETE = ChangeSummary("+12015550188", ChangeKind.DELETE, "ocp-qa", {})


def test_identical_plans_have_no_difference() -> None:
    one = plan([NOTE_OLD], [OperationRow(Operation.UPDATE, NOTE_OLD.number, {"NOTE": "b"})])
    difference = compare_plans(one, one)
    assert difference.empty
    assert render_text(difference).startswith("The plans are the same")


def test_numbers_fields_and_rows_that_differ_are_each_named() -> None:
    old = plan(
        [NOTE_OLD, DELETE],
        [OperationRow(Operation.UPDATE, NOTE_OLD.number, {"NOTE": "b"}), OperationRow(Operation.DELETE, DELETE.number)],
    )
    new = plan(
        [NOTE_NEW, CREATE],
        [
            OperationRow(Operation.UPDATE, NOTE_NEW.number, {"NOTE": "c"}),
            OperationRow(Operation.CREATE, CREATE.number, {"GROUP_ID": "ocp-qa", "PROVIDER": "twilio"}),
        ],
        fingerprint="sha256:b",
    )
    difference = compare_plans(old, new)
    assert difference.only_old == [DELETE.number] and difference.only_new == [CREATE.number]
    assert difference.changed == [FieldDifference(NOTE_OLD.number, "note (desired)", "b", "c")]
    assert difference.rows_only_old == [f"Delete {DELETE.number}", f"Update {NOTE_OLD.number} NOTE=b"]
    assert difference.rows_only_new == [
        f"Create {CREATE.number} GROUP_ID=ocp-qa PROVIDER=twilio",
        f"Update {NOTE_OLD.number} NOTE=c",
    ]
    assert difference.other == ["the live state differs between the two plans"]
    text = render_text(difference)
    assert f'  ~ {NOTE_OLD.number}  note (desired): "b" → "c"' in text
    assert "deepdiff" not in text.lower() and "root[" not in text  # no raw deepdiff dump
    assert '"numbers_only_in_new": [\n    "+12015550127"' in render_json(difference)


def test_a_kind_change_and_a_group_change_are_reported() -> None:
    moved = ChangeSummary("+12015550124", ChangeKind.REPLACE, "uk-care", {}, live_group_id="ocp-qa")
    difference = compare_plans(plan([NOTE_OLD], []), plan([moved], []))
    assert {c.what for c in difference.changed} >= {"kind", "group_id", "live_group_id"}
    assert FieldDifference(NOTE_OLD.number, "kind", "update", "replace") in difference.changed


def test_a_row_moved_to_another_file_is_not_a_difference_in_what_is_done() -> None:
    a = OperationRow(Operation.UPDATE, "+12015550124", {"NOTE": "b"})
    b = OperationRow(Operation.UPDATE, "+12015550125", {"NOTE": "b"})
    one = Plan("prod", [Phase((Batch((a, b)),))], [])
    two = Plan("prod", [Phase((Batch((a,)), Batch((b,))))], [])
    difference = compare_plans(one, two)
    assert difference.rows_only_old == [] == difference.rows_only_new
    assert difference.other == ["requests: 1 → 2"]


def test_edited_parts_names_every_reviewed_part_that_differs() -> None:
    from numsync.workflow.plandiff import edited_parts

    rows = [OperationRow(Operation.UPDATE, NOTE_OLD.number, {"NOTE": "b"})]
    fresh = plan([NOTE_OLD, DELETE], rows + [OperationRow(Operation.DELETE, DELETE.number)])
    assert edited_parts(fresh, fresh) == []
    tampered = plan([NOTE_OLD], rows + [OperationRow(Operation.DELETE, DELETE.number)])  # a change removed
    assert edited_parts(tampered, fresh) == ["changes"]
    fewer_rows = plan([NOTE_OLD, DELETE], rows)
    assert edited_parts(fewer_rows, fresh) == ["summary", "phases"]
    other_commit = plan([NOTE_OLD, DELETE], rows + [OperationRow(Operation.DELETE, DELETE.number)])
    other_commit.git_commit = "abc"
    assert edited_parts(other_commit, fresh) == []  # provenance, not something reviewed


def test_plan_diff_of_two_saved_plans_end_to_end(tmp_path, emulator) -> None:  # type: ignore[no-untyped-def]
    from cli_workspace import live_records, run, workspace, write_desired

    config = workspace(tmp_path, emulator.base_url, {"uk-care": False})
    records = sorted((r for r in live_records(emulator) if r.group_id == "uk-care"), key=lambda r: r.number)
    first, second = records[0], records[1]

    def desired_with(notes: dict[str, str]) -> None:
        edited = [
            type(r)(
                r.number,
                r.group_id,
                {**r.fields, Field.NOTE: notes[r.number]} if r.number in notes else r.fields,
                provider="twilio",
            )
            for r in records
        ]
        write_desired(tmp_path, edited, ["uk-care"])

    desired_with({first.number: "one"})
    assert run(config, "plan", "--out", str(tmp_path / "old.json")).exit_code == 0
    desired_with({first.number: "uno", second.number: "two"})
    assert run(config, "plan", "--out", str(tmp_path / "new.json")).exit_code == 0

    result = run(config, "plan", "diff", str(tmp_path / "old.json"), str(tmp_path / "new.json"))
    assert result.exit_code == 2, result.output
    assert f"Only in the new plan (1 number(s)):\n  + {second.number}" in result.output
    assert f'  ~ {first.number}  note (desired): "one" → "uno"' in result.output
    assert f"  + Update {second.number} NOTE=two" in result.output
    same = run(config, "plan", "diff", str(tmp_path / "new.json"), str(tmp_path / "new.json"))
    assert same.exit_code == 0 and "The plans are the same" in same.output


def test_a_plan_with_no_changes_against_one_with_changes() -> None:
    rows = [OperationRow(Operation.UPDATE, NOTE_OLD.number, {"NOTE": "b"})]
    busy, idle = plan([NOTE_OLD, CREATE], rows), plan([], [])
    forward, backward = compare_plans(idle, busy), compare_plans(busy, idle)
    assert forward.only_new == sorted([NOTE_OLD.number, CREATE.number]) and forward.only_old == []
    assert backward.only_old == sorted([NOTE_OLD.number, CREATE.number]) and backward.changed == []
