"""Diff and planner: every live-vs-desired case, the operation rows it yields, and batching."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from schedule_oracle import SHAPES, exact_minimum, lower_bound, schedule_errors

from numsync.core.diff import ChangeKind, Scope, diff
from numsync.core.model import Field, NumberRecord
from numsync.core.policy import GroupPolicy
from numsync.ocp import compile as compile_module
from numsync.ocp.compile import PlanningError, chain, minimum_requests, plan_phases, schedule
from numsync.ocp.rows import OperationRow
from numsync.ocp.vocabulary import DEFAULT_LIMITS, NULL, Operation

APP_X = "3781bcc1-7c76-439b-ba26-05d22217b316.SND_billing_flow.Flow.ocp-qa@SND_billing_flow.ocp-qa"
APP_Y = "9c1e04d2-51aa-4e0f-8b7e-2f3a6c1d9e10.card_pin.Numeric.ocp-qa@card_pin.ocp-qa"
N = "+12015550123"
GROUPS = {
    "ocp-qa": GroupPolicy("ocp-qa", prune=True),
    "uk-care": GroupPolicy("uk-care"),
    "sales": GroupPolicy("sales", prune=True),
}


def rec(number: str = N, group: str = "ocp-qa", provider: str | None = "twilio", **fields: str) -> NumberRecord:
    return NumberRecord(number, group, {Field[k.upper()]: v for k, v in fields.items()}, provider)


def rows_by_phase(desired: list[NumberRecord], live: list[NumberRecord]) -> list[list[tuple[str, str, dict[str, str]]]]:
    result = diff({r.number: r for r in desired}, live, GROUPS)
    phases = plan_phases(result, DEFAULT_LIMITS)
    return [[(r.operation.value, r.number, dict(r.values)) for r in phase.rows] for phase in phases]


# The change-semantics table of docs/semantics.md, one row per case: desired, live, expected phases.
CASES = {
    "missing live -> Create, then its fields": (
        [rec(miniapp_id=APP_X, locale="en-US", note="hi")],
        [],
        [
            [("Create", N, {"GROUP_ID": "ocp-qa", "PROVIDER": "twilio"})],
            [("Update", N, {"MINIAPP_ID": APP_X, "LOCALE": "en-US", "NOTE": "hi"})],
        ],
    ),
    "missing live, attach only -> Create, Attach": (
        [rec(miniapp_id=APP_X, locale="en-US")],
        [],
        [
            [("Create", N, {"GROUP_ID": "ocp-qa", "PROVIDER": "twilio"})],
            [("Attach", N, {"MINIAPP_ID": APP_X, "LOCALE": "en-US"})],
        ],
    ),
    "missing live, bare -> Create only": ([rec()], [], [[("Create", N, {"GROUP_ID": "ocp-qa", "PROVIDER": "twilio"})]]),
    "missing desired, prune, attached -> Detach, Delete": (
        [],
        [rec(miniapp_id=APP_X, locale="en-US")],
        [[("Detach", N, {"GROUP_ID": "ocp-qa"})], [("Delete", N, {"GROUP_ID": "ocp-qa"})]],
    ),
    "missing desired, prune, unattached -> Delete": ([], [rec(note="x")], [[("Delete", N, {"GROUP_ID": "ocp-qa"})]]),
    "missing desired, no prune -> nothing": ([], [rec(group="uk-care", number="+442079460958")], []),
    "miniapp none -> X -> Attach with LOCALE": (
        [rec(miniapp_id=APP_X, locale="en-US")],
        [rec(locale="en-US")],
        [[("Attach", N, {"MINIAPP_ID": APP_X, "LOCALE": "en-US"})]],
    ),
    "miniapp X -> none -> Detach": (
        [rec(locale="en-US")],
        [rec(miniapp_id=APP_X, locale="en-US")],
        [[("Detach", N, {"GROUP_ID": "ocp-qa"})]],
    ),
    "miniapp X -> Y -> Update MINIAPP_ID": (
        [rec(miniapp_id=APP_Y, locale="en-US")],
        [rec(miniapp_id=APP_X, locale="en-US")],
        [[("Update", N, {"MINIAPP_ID": APP_Y})]],
    ),
    "locale set": ([rec(locale="en-US")], [rec()], [[("Update", N, {"LOCALE": "en-US"})]]),
    "locale changed": ([rec(locale="en-GB")], [rec(locale="en-US")], [[("Update", N, {"LOCALE": "en-GB"})]]),
    "locale cleared": ([rec()], [rec(locale="en-US")], [[("Update", N, {"LOCALE": NULL})]]),
    "set set": ([rec(phone_number_set_id="us-east")], [rec()], [[("Update", N, {"PHONE_NUMBER_SET_ID": "us-east"})]]),
    "set changed": (
        [rec(phone_number_set_id="us-west")],
        [rec(phone_number_set_id="us-east")],
        [[("Update", N, {"PHONE_NUMBER_SET_ID": "us-west"})]],
    ),
    "set cleared": ([rec()], [rec(phone_number_set_id="us-east")], [[("Update", N, {"PHONE_NUMBER_SET_ID": NULL})]]),
    "tag set": ([rec(application_tag="billing")], [rec()], [[("Update", N, {"APPLICATION_TAG": "billing"})]]),
    "tag changed": (
        [rec(application_tag="b2")],
        [rec(application_tag="billing")],
        [[("Update", N, {"APPLICATION_TAG": "b2"})]],
    ),
    "tag cleared": ([rec()], [rec(application_tag="billing")], [[("Update", N, {"APPLICATION_TAG": NULL})]]),
    "note set": ([rec(note="a, b")], [rec()], [[("Update", N, {"NOTE": "a, b"})]]),
    "note changed": ([rec(note="new")], [rec(note="old")], [[("Update", N, {"NOTE": "new"})]]),
    "note cleared": ([rec()], [rec(note="old")], [[("Update", N, {"NOTE": NULL})]]),
    "several fields at once -> one Update with only what changes": (
        [rec(miniapp_id=APP_X, locale="en-US", note="n", phone_number_set_id="us-east")],
        [rec(miniapp_id=APP_X, locale="en-GB", application_tag="t", phone_number_set_id="us-east")],
        [[("Update", N, {"LOCALE": "en-US", "APPLICATION_TAG": NULL, "NOTE": "n"})]],
    ),
    "attach plus other fields -> one Update carrying MINIAPP_ID and LOCALE": (
        [rec(miniapp_id=APP_X, locale="en-US", note="n")],
        [rec(locale="en-US")],
        [[("Update", N, {"MINIAPP_ID": APP_X, "LOCALE": "en-US", "NOTE": "n"})]],
    ),
    "detach plus other fields -> Detach, then Update": (
        [rec(note="n")],
        [rec(miniapp_id=APP_X)],
        [[("Detach", N, {"GROUP_ID": "ocp-qa"})], [("Update", N, {"NOTE": "n"})]],
    ),
    "group change -> replace: Detach, Delete, Create, state": (
        [rec(group="sales", miniapp_id=APP_Y, locale="en-US")],
        [rec(group="ocp-qa", miniapp_id=APP_X, locale="en-US")],
        [
            # removal rows name the group they expect: a late Delete cannot release the re-created number
            [("Detach", N, {"GROUP_ID": "ocp-qa"})],
            [("Delete", N, {"GROUP_ID": "ocp-qa"})],
            [("Create", N, {"GROUP_ID": "sales", "PROVIDER": "twilio"})],
            [("Attach", N, {"MINIAPP_ID": APP_Y, "LOCALE": "en-US"})],
        ],
    ),
    "in sync -> nothing": ([rec(locale="en-US", note="n")], [rec(locale="en-US", note="n")], []),
}


@pytest.mark.parametrize("name", list(CASES))
def test_change_semantics(name: str) -> None:
    desired, live, expected = CASES[name]
    assert rows_by_phase(desired, live) == expected


def test_group_change_is_a_replacement() -> None:
    result = diff({N: rec(group="sales")}, [rec(group="ocp-qa")], GROUPS)
    assert [c.kind for c in result.changes] == [ChangeKind.REPLACE]


def test_unlisted_number_without_prune_is_reported_unmanaged() -> None:
    live = rec(group="uk-care", number="+442079460958")
    result = diff({}, [live], GROUPS)
    assert result.changes == [] and result.unmanaged == [live]


def test_numbers_in_unmanaged_groups_are_counted_not_touched() -> None:
    result = diff({}, [rec(group="elsewhere")], GROUPS)
    assert result.changes == [] and result.out_of_scope == 1


def test_desired_number_living_in_an_unmanaged_group_is_a_conflict_not_a_create() -> None:
    result = diff({N: rec()}, [rec(group="elsewhere")], GROUPS)
    assert result.changes == []
    assert len(result.conflicts) == 1 and "elsewhere" in result.conflicts[0]


def test_create_without_provider_is_refused_naming_the_number() -> None:
    result = diff({N: rec(provider=None)}, [], GROUPS)
    with pytest.raises(PlanningError) as err:
        plan_phases(result, DEFAULT_LIMITS)
    assert N in err.value.numbers and "provider" in err.value.numbers[N]


def test_deletes_beyond_the_limit_split_into_files_and_share_them_with_other_types() -> None:
    live = [rec(number=f"+1201555{i:04d}") for i in range(100, 125)]  # 25 unattached, pruned
    desired = [rec(number=f"+1202555{i:04d}") for i in range(100, 103)]  # 3 creates
    phases = plan_phases(diff({r.number: r for r in desired}, live, GROUPS), DEFAULT_LIMITS)
    assert len(phases) == 1
    batches = phases[0].batches
    assert [b.count(Operation.DELETE) for b in batches] == [10, 10, 5]
    assert [b.count(Operation.CREATE) for b in batches] == [3, 0, 0]
    assert minimum_requests(phases, DEFAULT_LIMITS) == 3


# --- properties over random tenants -------------------------------------------------------

NUMBERS = [f"+1201555{i:04d}" for i in range(100, 140)]
values = st.one_of(st.none(), st.sampled_from(["a", "b", "c, d"]))
record_st = st.builds(
    lambda group, app, locale, s, tag, note: (
        group,
        {
            k: v
            for k, v in {
                "miniapp_id": app,
                "locale": locale or ("en-US" if app else None),
                "phone_number_set_id": s,
                "application_tag": tag,
                "note": note,
            }.items()
            if v
        },
    ),
    st.sampled_from(["ocp-qa", "sales"]),
    st.one_of(st.none(), st.sampled_from([APP_X, APP_Y])),
    st.one_of(st.none(), st.sampled_from(["en-US", "es-US"])),
    values,
    values,
    values,
)
tenant_st = st.dictionaries(st.sampled_from(NUMBERS), record_st, max_size=len(NUMBERS))
limits_st = st.fixed_dictionaries({op: st.integers(1, 4) for op in Operation})


@settings(max_examples=200, deadline=None)
@given(desired=tenant_st, live=tenant_st, limits=limits_st)
def test_phases_never_touch_a_number_twice_and_reach_the_lower_bound(desired, live, limits) -> None:
    d = {n: rec(number=n, group=g, **f) for n, (g, f) in desired.items()}
    lv = [rec(number=n, group=g, provider=None, **f) for n, (g, f) in live.items()]
    result = diff(d, lv, GROUPS)
    phases = plan_phases(result, limits)
    files = [[(r.number, r.operation) for r in batch.rows] for phase in phases for batch in phase.batches]
    expected = {c.number: [r.operation for r in chain(c)] for c in result.changes}
    assert schedule_errors(expected, files, limits) == []
    for phase in phases:
        numbers = [r.number for r in phase.rows]
        assert len(numbers) == len(set(numbers)), "a number has two rows in one phase"
    for before, after in itertools.pairwise(phases):
        # phases are as long as they can be: the next file would repeat a number
        assert {r.number for r in before.rows} & {r.number for r in after.batches[0].rows}
    requests = sum(len(p.batches) for p in phases)
    assert requests >= lower_bound(list(expected.values()), limits)
    assert minimum_requests(phases, limits) == lower_bound(list(expected.values()), limits)


def test_updates_after_creates_ride_in_the_files_of_the_deletes() -> None:
    """Issue #16: 10 Create→Update chains and 100 Deletes need 10 files, not a phase of 10 and one more."""
    live = [rec(number=f"+1201555{i:04d}") for i in range(100)]  # unattached, pruned: one Delete each
    desired = [rec(number=f"+1202555{i:04d}", note="new") for i in range(10)]  # Create → Update
    phases = plan_phases(diff({r.number: r for r in desired}, live, GROUPS), DEFAULT_LIMITS)
    batches = [b for p in phases for b in p.batches]
    assert len(batches) == 10
    assert [b.count(Operation.DELETE) for b in batches] == [10] * 10
    assert [b.count(Operation.CREATE) for b in batches] == [10] + [0] * 9
    assert sum(b.count(Operation.UPDATE) for b in batches[1:]) == 10
    assert minimum_requests(phases, DEFAULT_LIMITS) == 10


# --- the scheduler against an independent judge --------------------------------------------

small_limits_st = st.fixed_dictionaries({op: st.integers(1, 3) for op in Operation})


def rows_for(shapes: list[tuple[Operation, ...]]) -> list[list[OperationRow]]:
    return [[OperationRow(op, f"+1201555{i:04d}") for op in shape] for i, shape in enumerate(shapes)]


def scheduled(shapes: list[tuple[Operation, ...]], limits: dict[Operation, int]) -> list[list[tuple[str, Operation]]]:
    files = schedule(rows_for(shapes), limits)
    chains = {f"+1201555{i:04d}": list(s) for i, s in enumerate(shapes)}
    got = [[(r.number, r.operation) for r in batch.rows] for batch in files]
    assert schedule_errors(chains, got, limits) == []
    return got


@settings(max_examples=100, deadline=None, derandomize=True)
@given(shapes=st.lists(st.sampled_from(SHAPES), max_size=12), limits=small_limits_st)
def test_small_schedules_take_the_exact_fewest_files(shapes, limits) -> None:
    assert len(scheduled(shapes, limits)) == exact_minimum(shapes, limits)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(shapes=st.lists(st.sampled_from(SHAPES), min_size=8, max_size=12), limits=small_limits_st)
def test_schedules_of_eight_to_twelve_chains_take_the_exact_fewest_files(shapes, limits) -> None:
    # hypothesis favours short lists; this keeps every case at the size where the list schedules can miss
    assert len(scheduled(shapes, limits)) == exact_minimum(shapes, limits)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    shapes=st.lists(st.sampled_from(SHAPES), min_size=50, max_size=300),
    limits=st.fixed_dictionaries({op: st.integers(1, 40) for op in Operation}),
)
def test_large_schedules_stay_within_one_file_of_the_independent_bound(shapes, limits) -> None:
    # The bound is not always reachable (see test_the_exact_search_sees_what_the_bound_misses), and exact
    # search (the oracle's, and the planner's within its budget) is out of reach at this size; a random run found
    # a 300-chain case at bound + 1.
    bound = lower_bound(shapes, limits)
    assert bound <= len(scheduled(shapes, limits)) <= bound + 1


def test_the_exact_search_sees_what_the_bound_misses() -> None:
    """The judge itself: a case where no schedule meets the per-type bound, so exact search is needed."""
    d, x, c, a, u = Operation.DETACH, Operation.DELETE, Operation.CREATE, Operation.ATTACH, Operation.UPDATE
    shapes = [(x,), (c, a), (x, c, u), (d, u), (a,), (d, u), (d, x, c, a)]
    limits = {c: 3, u: 1, a: 3, d: 1, x: 1}
    assert lower_bound(shapes, limits) == 4
    assert exact_minimum(shapes, limits) == len(scheduled(shapes, limits)) == 5


def test_a_number_listed_in_another_form_is_addressed_as_listed_until_it_is_created_anew() -> None:
    """Rows on the live number carry OCP's form of NUMBER; a replacement's Create (a new number) carries E.164."""
    listed = "+1 201-555-0123"
    live = [
        dataclasses.replace(rec(group="uk-care", provider=None, miniapp_id=APP_X, locale="en-US"), listed_as=listed)
    ]
    result = diff({N: rec(note="moved")}, live, GROUPS)
    rows = [
        (r.operation.value, r.number, r.cells()["NUMBER"])
        for phase in plan_phases(result, DEFAULT_LIMITS)
        for r in phase.rows
    ]
    assert rows == [("Detach", N, listed), ("Delete", N, listed), ("Create", N, N), ("Update", N, N)]
    # the artifact's rows hold the cells as uploaded, and read back to the same rows
    assert [
        OperationRow.from_json(r.to_json()) for phase in plan_phases(result, DEFAULT_LIMITS) for r in phase.rows
    ] == [r for phase in plan_phases(result, DEFAULT_LIMITS) for r in phase.rows]


def test_nine_chains_with_tight_limits_fit_in_four_files() -> None:
    """The three list schedules take 5 files here (a random run found it); the exact search finds 4, the bound."""
    d, x, c, a, u = Operation.DETACH, Operation.DELETE, Operation.CREATE, Operation.ATTACH, Operation.UPDATE
    shapes = [(d, x), (u,), (c,), (d, x, c, u), (x, c), (c, a), (a,), (c, u), (d, u)]
    limits = {c: 2, u: 1, a: 2, d: 1, x: 1}
    # one 4-file schedule, checked by the independent judge: (chain, operation) per file
    by_hand = [[(3, d), (4, x), (2, c), (7, c), (1, u), (6, a)], [(3, x), (8, d), (4, c), (5, c), (7, u)]]
    by_hand += [[(3, c), (0, d), (8, u), (5, a)], [(3, u), (0, x)]]
    chains = {f"+1201555{i:04d}": list(s) for i, s in enumerate(shapes)}
    files = [[(f"+1201555{i:04d}", op) for i, op in rows] for rows in by_hand]
    assert schedule_errors(chains, files, limits) == []
    assert lower_bound(shapes, limits) == exact_minimum(shapes, limits) == 4
    assert len(scheduled(shapes, limits)) == 4


def test_a_search_out_of_budget_keeps_the_list_schedule() -> None:
    """With no search budget the nine chains keep the list schedule: one file above the fewest, still valid."""
    d, x, c, a, u = Operation.DETACH, Operation.DELETE, Operation.CREATE, Operation.ATTACH, Operation.UPDATE
    shapes = [(d, x), (u,), (c,), (d, x, c, u), (x, c), (c, a), (a,), (c, u), (d, u)]
    limits = {c: 2, u: 1, a: 2, d: 1, x: 1}
    files = schedule(rows_for(shapes), limits, budget=0)
    chains = {f"+1201555{i:04d}": list(s) for i, s in enumerate(shapes)}
    got = [[(r.number, r.operation) for r in batch.rows] for batch in files]
    assert schedule_errors(chains, got, limits) == []
    assert len(got) == exact_minimum(shapes, limits) + 1


def test_the_search_budget_counts_every_state_it_looks_at(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan of thousands of chains has thousands of next files per state: the budget bounds them all.

    (Counting only the states it expanded let this plan, scaled further, search for 45 s.)"""
    d, x, c, a, u = Operation.DETACH, Operation.DELETE, Operation.CREATE, Operation.ATTACH, Operation.UPDATE
    shapes = [(x,), (c, a), (x, c, u), (d, u), (a,), (d, u), (d, x, c, a)] * 100
    limits = {c: 15, u: 5, a: 15, d: 5, x: 5}
    looked_at = []
    real = compile_module._suffix_bound
    monkeypatch.setattr(compile_module, "_suffix_bound", lambda *args: looked_at.append(1) or real(*args))
    files = schedule(rows_for(shapes), limits, budget=300)
    assert 0 < len(looked_at) <= 300 + 1  # the list schedules call it once for the lower bound
    chains = {f"+1201555{i:04d}": list(s) for i, s in enumerate(shapes)}
    assert schedule_errors(chains, [[(r.number, r.operation) for r in b.rows] for b in files], limits) == []


_records = st.builds(
    lambda n, group, values: NumberRecord(f"+120155501{n:02d}", group, values, "twilio"),
    st.integers(0, 15),
    st.sampled_from(["ocp-qa", "uk-care", "sales", "elsewhere"]),
    st.dictionaries(st.sampled_from([Field.MINIAPP_ID, Field.NOTE, Field.LOCALE]), st.sampled_from(["a", "b"])),
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(desired=st.lists(_records, max_size=12), live=st.lists(_records, max_size=12), ignore=st.booleans())
def test_the_diffs_in_sync_pass_gives_what_the_careful_loop_gives(desired, live, ignore) -> None:
    """Unscoped, in-sync numbers are counted in a first pass; a scope holding every number takes the loop for all."""
    groups = {
        **GROUPS,
        "uk-care": GroupPolicy("uk-care", ignore_fields=frozenset({Field.NOTE}) if ignore else frozenset()),
    }
    wanted = {r.number: r for r in desired if r.group_id != "elsewhere"}
    live = list({r.number: r for r in live}.values())  # an export lists a number once
    everything = Scope(numbers=frozenset(wanted) | {r.number for r in live})
    fast, careful = diff(wanted, live, groups), diff(wanted, live, groups, everything)
    assert careful.excluded == 0
    assert [(c.number, c.kind, c.fields) for c in fast.changes] == [
        (c.number, c.kind, c.fields) for c in careful.changes
    ]
    assert (fast.in_sync, fast.unmanaged, fast.conflicts, fast.out_of_scope, fast.retiring) == (
        careful.in_sync,
        careful.unmanaged,
        careful.conflicts,
        careful.out_of_scope,
        careful.retiring,
    )


def test_a_number_record_is_built_as_a_frozen_dataclass_would_build_it() -> None:
    """NumberRecord sets its slots itself (faster than the generated __init__): same defaults, same rules."""
    a, b = NumberRecord("+12015550123", "g"), NumberRecord("+12015550123", "g")
    assert a == b and a.fields == {} and a.fields is not b.fields  # a fresh dict each, as default_factory gives
    c = NumberRecord(number="+1", group_id="g", fields={Field.NOTE: "n"}, provider="twilio", listed_as="+1 ")
    assert (c.number, c.group_id, c.fields, c.provider, c.listed_as) == ("+1", "g", {Field.NOTE: "n"}, "twilio", "+1 ")
    assert dataclasses.replace(c, listed_as=None) == NumberRecord("+1", "g", {Field.NOTE: "n"}, "twilio")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.number = "+2"  # type: ignore[misc]
    assert "listed_as='+1 '" in repr(c)
