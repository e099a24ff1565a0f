"""Safety: thresholds, the small-export guard, replacements, protected numbers, ignore_fields.

Unit tests run :func:`numsync.core.safety.check` on plans made with diff + make_plan for a
hand-made :class:`Environment`; the end-to-end tests run the CLI against the emulator
process and check that a refused plan writes nothing (0 PUT requests).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from cli_workspace import emulator_process, live_records, run, workspace, write_desired

from numsync.config import Environment
from numsync.core.diff import diff
from numsync.core.model import Field, NumberRecord
from numsync.core.policy import GroupPolicy, Safety
from numsync.core.safety import REPLACE_FLAG, SMALL_EXPORT_FLAG, THRESHOLD_FLAG, Overrides, Violation, check
from numsync.emulator.process import EmulatorProcess
from numsync.workflow.plan import Plan, make_plan

ALL_FLAGS = Overrides(allow_replace=True, override_thresholds=True, allow_small_export=True)
MINIAPP = "3781bcc1-7c76-439b-ba26-05d22217b316.SND_billing_flow.Flow.ocp-qa@SND_billing_flow.ocp-qa"
SALES_MINIAPP = "69b43211-07d6-59be-b071-2457c853a94c.sales_router.Flow.us-sales@sales_router.us-sales"


# --- unit: safety.check on hand-made plans -------------------------------------------------


def number(i: int) -> str:
    return f"+1201555{1000 + i:04d}"


def rec(n: str, group: str, **fields: str) -> NumberRecord:
    return NumberRecord(n, group, {Field(k): v for k, v in fields.items()}, provider="twilio")


def environment(
    groups: dict[str, GroupPolicy] | Iterable[GroupPolicy],
    *,
    safety: Safety | None = None,
    protected: Iterable[str] = (),
) -> Environment:
    if not isinstance(groups, dict):
        groups = {g.group_id: g for g in groups}
    return Environment(
        name="test",
        base_url="http://127.0.0.1:9/integrations",
        token_url="http://127.0.0.1:9/auth/realms/master/protocol/openid-connect/token",
        desired=Path("/nonexistent/desired"),
        groups=groups,
        default_provider="twilio",
        protected=frozenset(protected),
        safety=safety or Safety(),
    )


def plan_for(env: Environment, desired: Iterable[NumberRecord], live: Iterable[NumberRecord]) -> Plan:
    wanted = {r.number: r for r in desired}
    live = list(live)
    return make_plan(env, wanted, live, diff(wanted, live, env.groups))


def only(violations: list[Violation]) -> Violation:
    assert len(violations) == 1, [str(v) for v in violations]
    return violations[0]


def the(violations: list[Violation], subject: str) -> Violation:
    """The one violation whose message contains ``subject`` (other checks may also speak)."""
    found = [v for v in violations if subject in v.message]
    assert len(found) == 1, [str(v) for v in violations]
    return found[0]


EXPORT_SHRUNK = "in the managed groups but desired lists"


#: Thresholds out of the way, so each test turns on only the one it is about.
LAX = Safety(max_deletes=10_000, max_change_percent=100.0, min_size=0, max_shrink_percent=100.0)


def test_a_plan_within_every_threshold_passes() -> None:
    env = environment([GroupPolicy("g", prune=True)])
    live = [rec(number(i), "g") for i in range(100)]
    desired = [rec(number(i), "g", note="n") for i in range(1, 5)] + [
        rec(number(i), "g") for i in range(5, 100)
    ]  # 1 delete, 4 updates
    the_plan = plan_for(env, desired, live)
    assert not the_plan.empty
    assert check(the_plan, env) == []


@pytest.mark.parametrize(("limit", "refused"), [(2, True), (3, False)])
def test_environment_max_deletes(limit: int, refused: bool) -> None:
    env = environment([GroupPolicy("g", prune=True)], safety=dataclasses.replace(LAX, max_deletes=limit))
    live = [rec(number(i), "g") for i in range(10)]
    the_plan = plan_for(env, live[3:], live)  # 3 pruned
    assert [c.kind for c in the_plan.changes] == ["delete"] * 3

    violations = check(the_plan, env)

    if not refused:
        assert violations == []
        return
    v = only(violations)
    assert v.flag == THRESHOLD_FLAG
    assert "deletes 3 number(s)" in v.message and f"max_deletes is {limit}" in v.message
    assert str(v).endswith(
        f'make the plan with {THRESHOLD_FLAG} and a reason: numsync plan {THRESHOLD_FLAG} --reason "<why>" --out plan.json.'
    )
    assert check(the_plan, env, Overrides(override_thresholds=True)) == []
    # The other flags do not lift it.
    assert only(check(the_plan, env, Overrides(allow_replace=True, allow_small_export=True))).flag == THRESHOLD_FLAG


def test_replacements_count_as_deletes() -> None:
    env = environment([GroupPolicy("a"), GroupPolicy("b")], safety=dataclasses.replace(LAX, max_deletes=1))
    live = [rec(number(i), "a") for i in range(4)]
    desired = [rec(number(0), "b"), rec(number(1), "b"), *live[2:]]
    the_plan = plan_for(env, desired, live)

    v = only(check(the_plan, env, Overrides(allow_replace=True)))

    assert "deletes 2 number(s)" in v.message and "max_deletes is 1" in v.message and v.flag == THRESHOLD_FLAG
    assert check(the_plan, env, Overrides(allow_replace=True, override_thresholds=True)) == []


def test_group_max_deletes() -> None:
    env = environment([GroupPolicy("a", prune=True, max_deletes=1), GroupPolicy("b", prune=True)], safety=LAX)
    live = [rec(number(i), "a") for i in range(5)] + [rec(number(i), "b") for i in range(5, 10)]
    desired = live[2:5] + live[7:]  # 2 deleted in a, 2 in b
    the_plan = plan_for(env, desired, live)

    v = only(check(the_plan, env))

    assert "deletes 2 number(s) in group 'a'" in v.message and "its max_deletes is 1" in v.message
    assert "'b'" not in v.message
    assert v.flag == THRESHOLD_FLAG and THRESHOLD_FLAG in str(v)
    assert check(the_plan, env, Overrides(override_thresholds=True)) == []
    # Within the group's limit: fine.
    assert check(plan_for(env, live[1:5] + live[7:], live), env) == []


def test_group_max_deletes_counts_a_replacement_in_the_group_it_leaves() -> None:
    env = environment([GroupPolicy("a", max_deletes=0), GroupPolicy("b")], safety=LAX)
    live = [rec(number(0), "a"), rec(number(1), "a")]
    the_plan = plan_for(env, [rec(number(0), "b"), live[1]], live)
    assert the_plan.replacements() == [number(0)]

    violations = check(the_plan, env, Overrides(allow_replace=True))

    assert any("group 'a'" in v.message and "max_deletes is 0" in v.message for v in violations), [
        str(v) for v in violations
    ]


@pytest.mark.parametrize("threshold", ["max_deletes", "max_change_percent"])
def test_a_group_threshold_overrides_the_environments(threshold: str) -> None:
    if threshold == "max_deletes":
        env = environment([GroupPolicy("a", prune=True, max_deletes=5)], safety=dataclasses.replace(LAX, max_deletes=2))
        live = [rec(number(i), "a") for i in range(10)]
        desired = live[3:]  # 3 deletes: over the environment's 2, within the group's 5
    else:
        env = environment(
            [GroupPolicy("a", max_change_percent=50.0)],
            safety=dataclasses.replace(LAX, max_change_percent=25.0, min_size=1),
        )
        live = [rec(number(i), "a") for i in range(10)]
        desired = [rec(r.number, "a", note="x") if i < 4 else r for i, r in enumerate(live)]  # 40%
    assert check(plan_for(env, desired, live), env) == []


def assert_threshold(the_plan: Plan, env: Environment, refused: bool, *fragments: str) -> None:
    """No violation when not ``refused``; else exactly one threshold violation naming every fragment, lifted by the override."""
    violations = check(the_plan, env)
    if not refused:
        assert violations == []
        return
    v = only(violations)
    assert all(f in v.message for f in fragments) and v.flag == THRESHOLD_FLAG, v.message
    assert check(the_plan, env, Overrides(override_thresholds=True)) == []


@pytest.mark.parametrize(("changed", "min_size", "refused"), [(3, 10, True), (2, 10, False), (3, 11, False)])
def test_environment_max_change_percent(changed: int, min_size: int, refused: bool) -> None:
    env = environment([GroupPolicy("g")], safety=dataclasses.replace(LAX, max_change_percent=20.0, min_size=min_size))
    live = [rec(number(i), "g") for i in range(10)]
    desired = [rec(r.number, "g", note="changed") if i < changed else r for i, r in enumerate(live)]
    desired += [rec(number(i), "g") for i in range(10, 30)]  # creates do not count
    the_plan = plan_for(env, desired, live)

    assert_threshold(
        the_plan, env, refused, "changes or deletes 3 of 10 live number(s) (30.0%)", "max_change_percent is 20%"
    )


def test_environment_max_change_percent_counts_deletes_not_creates() -> None:
    env = environment(
        [GroupPolicy("g", prune=True)], safety=dataclasses.replace(LAX, max_change_percent=10.0, min_size=1)
    )
    live = [rec(number(i), "g") for i in range(10)]
    only_creates = plan_for(env, live + [rec(number(i), "g") for i in range(10, 15)], live)
    assert check(only_creates, env) == []
    two_deletes = plan_for(env, live[2:], live)
    assert "changes or deletes 2 of 10" in only(check(two_deletes, env)).message


@pytest.mark.parametrize(("min_size", "refused"), [(4, True), (6, False)])
def test_group_max_change_percent(min_size: int, refused: bool) -> None:
    env = environment(
        [GroupPolicy("a", max_change_percent=10.0), GroupPolicy("b")],
        safety=dataclasses.replace(LAX, min_size=min_size),
    )
    live = [rec(number(i), "a") for i in range(5)] + [rec(number(i), "b") for i in range(5, 25)]
    desired = [
        rec(r.number, r.group_id, note="x") if i in (0, 5, 6) else r for i, r in enumerate(live)
    ]  # a: 1 of 5, b: 2 of 20
    the_plan = plan_for(env, desired, live)

    assert_threshold(
        the_plan,
        env,
        refused,
        "changes or deletes 1 of 5 live number(s) in group 'a' (20.0%)",
        "its max_change_percent is 10%",
    )


def test_small_export_guard_with_an_empty_export() -> None:
    env = environment([GroupPolicy("g", prune=True)], safety=Safety())
    desired = [rec(number(i), "g") for i in range(3)]
    the_plan = plan_for(env, desired, [])

    v = the(check(the_plan, env), EXPORT_SHRUNK)

    assert v.flag == SMALL_EXPORT_FLAG
    assert "holds 0 number(s) in the managed groups but desired lists 3" in v.message
    assert "more than 50% fewer" in v.message and SMALL_EXPORT_FLAG in str(v)
    assert check(the_plan, env, Overrides(allow_small_export=True)) == []
    assert (
        the(check(the_plan, env, Overrides(allow_replace=True, override_thresholds=True)), EXPORT_SHRUNK).flag
        == SMALL_EXPORT_FLAG
    )


@pytest.mark.parametrize(
    ("live_count", "shrink", "refused"), [(4, 50.0, True), (5, 50.0, False), (4, 70.0, False), (2, 70.0, True)]
)
def test_small_export_guard_with_a_shrunk_export(live_count: int, shrink: float, refused: bool) -> None:
    env = environment([GroupPolicy("g")], safety=dataclasses.replace(LAX, max_shrink_percent=shrink))
    desired = [rec(number(i), "g", note="x") for i in range(10)]
    live = [rec(number(i), "g") for i in range(live_count)]
    the_plan = plan_for(env, desired, live)

    violations = check(the_plan, env)

    if not refused:
        assert violations == []
        return
    v = the(violations, EXPORT_SHRUNK)
    assert f"holds {live_count} number(s)" in v.message and "desired lists 10" in v.message
    assert f"more than {shrink:g}% fewer" in v.message and v.flag == SMALL_EXPORT_FLAG
    assert check(the_plan, env, Overrides(allow_small_export=True)) == []


def test_small_export_guard_counts_only_managed_groups() -> None:
    env = environment([GroupPolicy("g")], safety=Safety())
    desired = [rec(number(i), "g") for i in range(4)]
    live = [rec(number(i), "elsewhere") for i in range(10, 30)]  # a big export, none of it managed
    violations = check(plan_for(env, desired, live), env)
    assert the(violations, EXPORT_SHRUNK).flag == SMALL_EXPORT_FLAG
    assert check(plan_for(env, desired, live), env, Overrides(allow_small_export=True)) == []


def test_replacement_needs_allow_replace() -> None:
    env = environment([GroupPolicy("a"), GroupPolicy("b")], safety=LAX)
    live = [rec(number(0), "a", miniapp_id="app-a", locale="en-US"), rec(number(1), "a")]
    the_plan = plan_for(env, [rec(number(0), "b", note="moved"), live[1]], live)
    assert the_plan.replacements() == [number(0)]

    v = only(check(the_plan, env))

    assert v.flag == REPLACE_FLAG
    assert "1 number(s) change group and would be DELETED and created again" in v.message and number(0) in v.message
    assert str(v).endswith(
        f'make the plan with {REPLACE_FLAG} and a reason: numsync plan {REPLACE_FLAG} --reason "<why>" --out plan.json.'
    )
    assert check(the_plan, env, Overrides(allow_replace=True)) == []
    assert only(check(the_plan, env, Overrides(override_thresholds=True, allow_small_export=True))).flag == REPLACE_FLAG


def test_many_replacements_are_listed_briefly() -> None:
    env = environment([GroupPolicy("a"), GroupPolicy("b")], safety=LAX)
    live = [rec(number(i), "a") for i in range(12)]
    v = only(check(plan_for(env, [rec(r.number, "b") for r in live], live), env))
    assert "12 number(s) change group" in v.message
    assert number(9) in v.message and number(10) not in v.message and "…" in v.message


@pytest.mark.parametrize("case", ["pruned", "pruned-attached", "replaced", "detached"])
def test_protected_numbers_are_never_detached_or_deleted(case: str) -> None:
    env = environment([GroupPolicy("a", prune=True), GroupPolicy("b")], safety=LAX, protected=[number(0)])
    attached = rec(number(0), "a", miniapp_id="app-a", locale="en-US")
    plain = rec(number(0), "a")
    other = rec(number(1), "a")
    live, desired = {
        "pruned": ([plain, other], [other]),
        "pruned-attached": ([attached, other], [other]),
        "replaced": ([plain, other], [rec(number(0), "b"), other]),
        "detached": ([attached, other], [rec(number(0), "a", locale="en-US"), other]),
    }[case]
    the_plan = plan_for(env, desired, live)

    for overrides in (Overrides(), ALL_FLAGS):
        protected = [v for v in check(the_plan, env, overrides) if "protected" in v.message]
        v = only(protected)
        assert v.flag is None
        assert number(0) in v.message and "remove them from protected in numsync.yaml" in v.message
        assert "To apply anyway" not in str(v)


def test_protected_numbers_may_still_be_updated() -> None:
    env = environment([GroupPolicy("a", prune=True)], safety=LAX, protected=[number(0)])
    live = [rec(number(0), "a", miniapp_id="app-a", locale="en-US")]
    the_plan = plan_for(env, [rec(number(0), "a", miniapp_id="app-b", locale="en-GB", note="x")], live)
    assert not the_plan.empty
    assert check(the_plan, env) == []


def test_an_empty_plan_is_never_refused() -> None:
    env = environment(
        [GroupPolicy("a", prune=True)],
        safety=Safety(max_deletes=0, max_change_percent=0.0, min_size=0, max_shrink_percent=0.0),
        protected=[number(0)],
    )
    live = [rec(number(0), "a")]
    the_plan = plan_for(env, live, live)
    assert the_plan.empty and check(the_plan, env) == []


# --- end to end: the CLI against the emulator ----------------------------------------------


def puts(emulator: EmulatorProcess) -> int:
    return emulator.stats()["put_requests"]


@pytest.mark.parametrize(
    ("group_spec", "extra", "message"),
    [
        ("{prune: true}", ["safety: {max_deletes: 2}"], "the plan deletes 3 number(s); safety.max_deletes is 2."),
        ("{prune: true, max_deletes: 2}", [], "the plan deletes 3 number(s) in group 'ocp-qa'; its max_deletes is 2."),
        (
            "{prune: true}",
            ["safety: {max_change_percent: 2, min_size: 50}"],
            "the plan changes or deletes 3 of 99 live number(s) (3.0%); safety.max_change_percent is 2%.",
        ),
        (
            "{prune: true, max_change_percent: 2}",
            [],
            "the plan changes or deletes 3 of 99 live number(s) in group 'ocp-qa' (3.0%); its max_change_percent is 2%.",
        ),
    ],
)
def test_threshold_exceeded_is_refused_then_applied_with_the_flag(
    tmp_path: Path, emulator: EmulatorProcess, group_spec: str, extra: list[str], message: str
) -> None:
    ocp_qa = sorted((r for r in live_records(emulator) if r.group_id == "ocp-qa"), key=lambda r: r.number)
    pruned = ["+12015550104", "+12015550109", "+12015550114"]  # unattached: one Delete each
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": group_spec}, *extra)
    write_desired(tmp_path, [r for r in ocp_qa if r.number not in pruned], ["ocp-qa"])

    planned = run(config, "plan", "--detailed-exitcode")

    assert planned.exit_code == 1, planned.output
    assert "0 to create, 0 to update, 0 to attach, 0 to detach, 3 to delete" in planned.output
    assert (
        f"Refused: {message} To apply anyway after review, make the plan with --override-thresholds" in planned.output
    )
    assert planned.output.index("Plan: ") < planned.output.index("Refused: ")  # the plan is shown first
    saved = run(config, "plan", "--out", str(tmp_path / "refused.json"))
    # the note comes before the checks it names, and a saved plan is lifted only by planning again
    note = saved.output[saved.output.index("Saved the plan") :]
    assert "safety check(s) below" in note and note.index("safety check(s) below") < note.index("Refused: ")
    assert 'numsync plan FLAG --reason "<why>" --out' in note and "numsync apply" not in note
    refused = run(config, "apply", "--auto-approve", "--allow-replace", "--allow-small-export")
    assert refused.exit_code == 1 and "--override-thresholds" in refused.output
    assert "nothing was written" in refused.output
    assert puts(emulator) == 0 and all(n in emulator.numbers() for n in pruned)

    applied = run(config, "apply", "--auto-approve", "--override-thresholds")

    assert applied.exit_code == 0, applied.output
    assert "Verified: live now matches desired." in applied.output
    assert not set(pruned) & emulator.numbers().keys()
    assert puts(emulator) == 1


def test_empty_export_is_refused_then_created_with_allow_small_export(tmp_path: Path) -> None:
    with emulator_process("--seed", "empty") as emulator:
        config = workspace(tmp_path, emulator.base_url, {"ocp-qa": "{prune: true}"})
        wanted = [
            rec("+12015550123", "ocp-qa", miniapp_id=MINIAPP, locale="en-US", phone_number_set_id="us-east"),
            rec("+12015550124", "ocp-qa", application_tag="billing", note="Billing hotline"),
            rec("+12015550126", "ocp-qa"),
        ]
        write_desired(tmp_path, wanted, ["ocp-qa"])

        planned = run(config, "plan")
        assert planned.exit_code == 1
        assert "3 to create" in planned.output
        assert "the live export holds 0 number(s) in the managed groups but desired lists 3" in planned.output
        assert 'numsync plan --allow-small-export --reason "<why>" --out plan.json' in planned.output
        refused = run(config, "apply", "--auto-approve", "--override-thresholds", "--allow-replace")
        assert refused.exit_code == 1 and "--allow-small-export" in refused.output
        assert puts(emulator) == 0 and emulator.numbers() == {}

        applied = run(config, "apply", "--auto-approve", "--allow-small-export")

        assert applied.exit_code == 0, applied.output
        numbers = emulator.numbers()
        assert sorted(numbers) == ["+12015550123", "+12015550124", "+12015550126"]
        assert numbers["+12015550123"]["MINIAPP_ID"] == MINIAPP and numbers["+12015550123"]["LOCALE"] == "en-US"
        assert numbers["+12015550124"]["NOTE"] == "Billing hotline"
        # Now the export is as big as desired: no flag needed any more.
        assert run(config, "plan", "--detailed-exitcode").exit_code == 0


def test_protected_number_in_a_prune_group_is_refused_even_with_every_flag(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    ocp_qa = [r for r in live_records(emulator) if r.group_id == "ocp-qa"]
    guarded = "+12015550100"  # attached: would be Detach → Delete
    assert Field.MINIAPP_ID in next(r for r in ocp_qa if r.number == guarded).fields
    # Written in another form than E.164 on purpose: protected is normalized.
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": "{prune: true}"}, 'protected: ["+1 201-555-0100"]')
    write_desired(tmp_path, [r for r in ocp_qa if r.number not in (guarded, "+12015550104")], ["ocp-qa"])
    flags = ("--allow-replace", "--override-thresholds", "--allow-small-export")

    planned = run(config, "plan", *flags)
    applied = run(config, "apply", "--auto-approve", *flags)

    for result in (planned, applied):
        assert result.exit_code == 1, result.output
        assert f"Refused: the plan would detach or delete protected number(s) {guarded}" in result.output
        assert "To apply anyway" not in result.output
    assert puts(emulator) == 0
    numbers = emulator.numbers()
    assert guarded in numbers and numbers[guarded]["MINIAPP_ID"] and "+12015550104" in numbers


def test_replacement_is_destructive_refused_then_applied_with_allow_replace(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    live = live_records(emulator)
    moved = "+12015550101"  # attached in ocp-qa
    records = [r for r in live if r.group_id in ("ocp-qa", "us-sales") and r.number != moved]
    records.append(
        rec(
            moved,
            "us-sales",
            miniapp_id=SALES_MINIAPP,
            locale="en-US",
            phone_number_set_id="new-york",
            note="moved to sales",
        )
    )
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": "{}", "us-sales": "{}"})
    write_desired(tmp_path, records, ["ocp-qa", "us-sales"])

    planned = run(config, "plan", "--detailed-exitcode")

    assert planned.exit_code == 1
    assert f"-/+ {moved}  (ocp-qa → us-sales)  replace  DESTRUCTIVE: GROUP_ID cannot be updated" in planned.output
    assert "Refused: 1 number(s) change group and would be DELETED and created again" in planned.output
    assert 'numsync plan --allow-replace --reason "<why>" --out plan.json' in planned.output
    assert run(config, "apply", "--auto-approve", "--override-thresholds", "--allow-small-export").exit_code == 1
    assert puts(emulator) == 0 and emulator.numbers()[moved]["GROUP_ID"] == "ocp-qa"

    applied = run(config, "apply", "--auto-approve", "--allow-replace")

    assert applied.exit_code == 0, applied.output
    assert "Verified: live now matches desired." in applied.output
    row = emulator.numbers()[moved]
    assert (row["GROUP_ID"], row["MINIAPP_ID"], row["PHONE_NUMBER_SET_ID"], row["NOTE"]) == (
        "us-sales",
        SALES_MINIAPP,
        "new-york",
        "moved to sales",
    )
    assert puts(emulator) == 4  # Detach → Delete → Create → Update
    assert run(config, "plan", "--detailed-exitcode").exit_code == 0


@pytest.mark.parametrize("level", ["environment", "group"])
def test_ignored_fields_are_neither_diffed_nor_written(tmp_path: Path, emulator: EmulatorProcess, level: str) -> None:
    uk = [r for r in live_records(emulator) if r.group_id == "uk-care"]
    noted = "+442079460958"
    new = "+442079460999"
    assert noted in {r.number for r in uk} and new not in {r.number for r in uk}
    desired = [
        rec(r.number, r.group_id, **{f.yaml_key: v for f, v in r.fields.items()} | {"note": "what the YAML says"})
        if r.number == noted
        else r
        for r in uk
    ]
    desired.append(rec(new, "uk-care", note="never written", application_tag="fresh"))
    if level == "environment":
        config = workspace(tmp_path, emulator.base_url, {"uk-care": "{}"}, "ignore_fields: [note]")
    else:
        config = workspace(tmp_path, emulator.base_url, {"uk-care": "{ignore_fields: [note]}"})
    write_desired(tmp_path, desired, ["uk-care"])
    plan_file = tmp_path / "plan.json"

    planned = run(config, "plan", "--out", str(plan_file))

    assert planned.exit_code == 0, planned.output
    data = json.loads(plan_file.read_text())
    assert [(c["number"], c["kind"]) for c in data["changes"]] == [(new, "create")]
    assert data["changes"][0]["fields"] == {"APPLICATION_TAG": {"live": None, "desired": "fresh"}}
    rows = [row for phase in data["phases"] for batch in phase for row in batch]
    assert [row["OPERATION"] for row in rows] == ["Create", "Update"]
    assert all("NOTE" not in row for row in rows)
    applied = run(config, "apply", str(plan_file))
    assert applied.exit_code == 0, applied.output
    numbers = emulator.numbers()
    assert numbers[new]["NOTE"] == "" and numbers[new]["APPLICATION_TAG"] == "fresh"
    assert numbers[noted]["NOTE"] == "Main line, after-hours routing"
    assert run(config, "plan", "--detailed-exitcode").exit_code == 0


def test_without_ignore_fields_the_same_note_is_a_change(tmp_path: Path, emulator: EmulatorProcess) -> None:
    uk = [r for r in live_records(emulator) if r.group_id == "uk-care"]
    desired = [
        rec(r.number, r.group_id, **{f.yaml_key: v for f, v in r.fields.items()} | {"note": "what the YAML says"})
        if r.number == "+442079460958"
        else r
        for r in uk
    ]
    config = workspace(tmp_path, emulator.base_url, {"uk-care": "{ignore_fields: [application_tag]}"})
    write_desired(tmp_path, desired, ["uk-care"])
    result = run(config, "plan", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert 'note: "Main line, after-hours routing" → "what the YAML says"' in result.output


@pytest.mark.parametrize("content", ["", "\n", "# nothing here yet\n", "---\n", "null\n", "~\n"])
def test_a_desired_file_that_loads_as_nothing_is_an_error(
    tmp_path: Path, emulator: EmulatorProcess, content: str
) -> None:
    config = workspace(
        tmp_path, emulator.base_url, {"ocp-qa": "{prune: true}"}, "safety: {max_deletes: 1000, max_change_percent: 100}"
    )
    (tmp_path / "desired" / "ocp-qa.yaml").write_text(content)
    for args in (("plan",), ("apply", "--auto-approve", "--override-thresholds", "--allow-small-export")):
        result = run(config, *args)
        assert result.exit_code == 1, result.output
        assert "the file is empty" in result.output and "never means 'delete everything'" in result.output
        assert "nothing was sent to OCP" in result.output
    assert emulator.stats()["put_requests"] == emulator.stats()["export_requests"] == 0


@pytest.mark.parametrize("content", ["group_id: ocp-qa\nnumbers:\n", "group_id: ocp-qa\n", "{}\n", "[]\n", '""\n'])
def test_a_desired_file_without_numbers_is_an_error(tmp_path: Path, emulator: EmulatorProcess, content: str) -> None:
    config = workspace(
        tmp_path, emulator.base_url, {"ocp-qa": "{prune: true}"}, "safety: {max_deletes: 1000, max_change_percent: 100}"
    )
    (tmp_path / "desired" / "ocp-qa.yaml").write_text(content)
    result = run(config, "apply", "--auto-approve", "--override-thresholds", "--allow-small-export")
    assert result.exit_code == 1, result.output
    assert "ocp-qa.yaml:" in result.output and "nothing was sent to OCP" in result.output
    assert emulator.stats()["put_requests"] == emulator.stats()["export_requests"] == 0


def test_no_desired_files_at_all_is_an_error(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = workspace(
        tmp_path, emulator.base_url, {"ocp-qa": "{prune: true}"}, "safety: {max_deletes: 1000, max_change_percent: 100}"
    )
    result = run(config, "apply", "--auto-approve", "--override-thresholds")
    assert result.exit_code == 1
    assert "no desired YAML files" in result.output and "never taken as 'delete everything'" in result.output
    assert emulator.stats()["put_requests"] == 0 and len(emulator.numbers()) == 299
