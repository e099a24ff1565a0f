"""Changes → operation rows → ordered phases → batches (files) within the limits.

Each changed number gets a short chain of operations that must run in order:

=========  =====================================================================
create     Create(GROUP_ID, PROVIDER) → its state row (Attach or Update), if any
update     Detach (miniapp removed), if needed → its state row, if any
retire     Detach (if attached) → the Update that sets the retire mark, if not set
replace    Detach (if attached) → Delete → Create → its state row, if any
delete     Detach (if attached) → Delete                       (prune only)
=========  =====================================================================

The *state row* sets every other differing field in one row: an Attach when a miniapp
is added and nothing but LOCALE changes with it, an Update otherwise (an Update with
MINIAPP_ID attaches, per the vendor doc). Cleared fields are written as ``<NULL>``;
unchanged ones stay empty ("leave as is"). Every Detach and Delete carries the GROUP_ID
the number is expected in (live), a guard OCP checks (docs/reliability.md, "The GROUP_ID guard").

:func:`schedule` packs the chains into files: a chain's operations go in strictly later
files (so a number never has two rows in one file and dependent operations run in
separate, ordered requests), a file carries up to each operation's limit of each type, and
a later operation may ride in the same file as another number's earlier one.
:func:`phases_of` then groups consecutive files into phases while no number repeats;
docs/semantics.md ("Phases and files") explains the schedule and its lower bound.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence

from numsync.core.diff import Change, ChangeKind, Diff, FieldChange
from numsync.core.model import Field, NumberRecord
from numsync.errors import PlanningError
from numsync.ocp.rows import Batch, OperationRow, Phase
from numsync.ocp.vocabulary import COLUMN, GROUP_ID, NULL, PROVIDER, Operation

#: The order operation types are listed in a phase and a file.
OPERATION_ORDER: tuple[Operation, ...] = (
    Operation.DETACH,
    Operation.DELETE,
    Operation.CREATE,
    Operation.ATTACH,
    Operation.UPDATE,
)


def state_row(
    number: str, changes: Sequence[FieldChange], locale: str | None, listed_as: str | None = None
) -> OperationRow | None:
    """The Attach or Update row that makes the fields in ``changes`` desired; None if nothing to set.

    ``locale`` is the desired LOCALE, written whenever the row attaches a miniapp (Attach
    needs it even when it does not change). A miniapp removal is not in the row: that is a
    Detach of its own. ``listed_as``: the live number's form in the export, if not E.164.
    """
    values: dict[str, str] = {}
    attaching = False
    for change in changes:
        if change.field is Field.MINIAPP_ID and change.desired is None:
            continue  # Detach
        if change.field is Field.MINIAPP_ID and change.live is None:
            attaching = True
        values[COLUMN[change.field]] = change.desired if change.desired is not None else NULL
    if not values:
        return None
    if attaching and locale is not None:
        values[COLUMN[Field.LOCALE]] = locale
        if set(values) == {COLUMN[Field.MINIAPP_ID], COLUMN[Field.LOCALE]}:
            return OperationRow(Operation.ATTACH, number, values, listed_as)
    return OperationRow(Operation.UPDATE, number, values, listed_as)


def _needs_locale_for_attach(change: Change) -> bool:
    adds_miniapp = any(c.field is Field.MINIAPP_ID and c.live is None and c.desired for c in change.fields)
    desired_locale = change.desired.get(Field.LOCALE) if change.desired else None
    return adds_miniapp and desired_locale is None


def chain(change: Change) -> list[OperationRow]:
    """The operations for one change, in the order they must run. Raises PlanningError."""
    number = change.number
    if change.kind in (ChangeKind.UPDATE, ChangeKind.RETIRE):  # a retirement: Detach, then the mark's Update
        assert change.live is not None
        listed_as = change.live.listed_as  # address the number as OCP lists it
        ops = []
        if any(c.field is Field.MINIAPP_ID and c.desired is None for c in change.fields):
            # the group it is expected in, as on every removal row: if someone moved it to another group
            # since the export (one this environment may not manage), OCP refuses the row instead
            ops.append(OperationRow(Operation.DETACH, number, {GROUP_ID: change.live.group_id}, listed_as))
        row = state_row(number, change.fields, change.desired.get(Field.LOCALE) if change.desired else None, listed_as)
        return ops + ([row] if row else [])
    if change.kind is ChangeKind.DELETE:
        assert change.live is not None
        return _removal(change.live)
    assert change.desired is not None
    if _needs_locale_for_attach(change):
        raise PlanningError({number: "a miniapp_id is desired but no locale; Attach needs LOCALE"})
    if not change.desired.provider:
        raise PlanningError(
            {
                number: "is to be created but has no provider; set provider on it, in the file's defaults, or default_provider in numsync.yaml"
            }
        )
    create = OperationRow(
        Operation.CREATE, number, {GROUP_ID: change.desired.group_id, PROVIDER: change.desired.provider}
    )
    row = state_row(number, change.fields, change.desired.get(Field.LOCALE))
    prefix = _removal(change.live) if change.kind is ChangeKind.REPLACE and change.live else []
    return prefix + [create] + ([row] if row else [])


def _removal(live: NumberRecord) -> list[OperationRow]:
    """Detach (if attached) → Delete, each naming the GROUP_ID the number is expected in.

    OCP refuses a non-Create row whose GROUP_ID is not the number's group. So a Delete whose
    answer was lost and that OCP carries out late — after recovery re-created the number in
    its new group — fails instead of releasing the new number (docs/reliability.md).
    """
    where = {GROUP_ID: live.group_id}
    ops = []
    if live.get(Field.MINIAPP_ID):
        ops.append(OperationRow(Operation.DETACH, live.number, dict(where), listed_as=live.listed_as))
    ops.append(OperationRow(Operation.DELETE, live.number, dict(where), listed_as=live.listed_as))
    return ops


def schedule(
    chains: Sequence[Sequence[OperationRow]], limits: Mapping[Operation, int], budget: int | None = None
) -> list[Batch]:
    """Place every chain's operations into the fewest files, in upload order.

    Rules of a valid schedule: a chain's operations go in strictly increasing files (so a
    number has at most one row per file), and a file holds at most ``limits[t]`` rows of
    type *t*. Three list schedules are built (see :func:`_list_schedule`) and the shortest
    kept; when it is above the lower bound, :func:`_exact_schedule` searches for a shorter
    one, within ``budget`` search nodes (:data:`SEARCH_BUDGET`) and for plans of at most
    :data:`SEARCH_DEPTH` files, keeping the list schedule otherwise. docs/semantics.md ("Phases and files") explains both.
    """
    if not any(chains):
        return []
    forward = _list_schedule(chains, limits, lambda i, j: -(len(chains[i]) - j))
    backward = _reversed(chains, _list_schedule(_flip(chains), limits, lambda i, j: -(len(chains[i]) - j)))
    # Forward again, most urgent first where "urgent" is the backward schedule's latest file.
    latest = max(f for files in backward for f in files)
    guided = _list_schedule(chains, limits, lambda i, j: backward[i][j] - latest)
    best = min((forward, guided, backward), key=_count)
    types = [[row.operation for row in c] for c in chains]
    lower = _lower_bound(types, limits)
    if lower < _count(best) <= SEARCH_DEPTH:
        exact = _exact_schedule(types, limits, lower, _count(best) - 1, SEARCH_BUDGET if budget is None else budget)
        if exact is not None:
            best = exact
    return _files(chains, best)


#: States the exact search may look at (cut ones too) before the list schedule is kept: enough
#: for every small plan, and a bound on what a large one costs (about 3 s of CPU when spent whole,
#: benchmarks/schedule_budget.py). Counted, not timed, so a plan does not depend on the machine.
SEARCH_BUDGET = 20_000
#: The most files the exact search is tried for: it recurses once per file.
SEARCH_DEPTH = 200


Placement = list[list[int]]  # placement[i][j]: the 0-based file of chain i's j-th operation


def _list_schedule(
    chains: Sequence[Sequence[OperationRow]], limits: Mapping[Operation, int], priority: Callable[[int, int], int]
) -> Placement:
    """Fill file after file: per type, the ``limit`` ready operations of lowest ``priority(chain, index)``.

    An operation is ready when its chain's previous operation is in an earlier file. Every
    file is filled as far as the ready operations allow: moving an operation into free room
    of an earlier file never breaks a schedule, so a fullest-first schedule loses nothing.
    """
    placed: Placement = [[-1] * len(c) for c in chains]
    ready: dict[Operation, list[tuple[int, int, int]]] = {op: [] for op in Operation}
    for i, c in enumerate(chains):
        if c:
            heapq.heappush(ready[c[0].operation], (priority(i, 0), i, 0))
    file = 0
    left = sum(len(c) for c in chains)
    while left:
        advanced = []
        for op, heap in ready.items():
            for _ in range(min(limits[op], len(heap))):
                _, i, j = heapq.heappop(heap)
                placed[i][j] = file
                advanced.append((i, j + 1))
        left -= len(advanced)
        for i, j in advanced:
            if j < len(chains[i]):
                heapq.heappush(ready[chains[i][j].operation], (priority(i, j), i, j))
        file += 1
    return placed


def _flip(chains: Sequence[Sequence[OperationRow]]) -> list[list[OperationRow]]:
    return [list(reversed(c)) for c in chains]


def _reversed(chains: Sequence[Sequence[OperationRow]], flipped: Placement) -> Placement:
    """A schedule of the reversed chains, read back to front: a schedule of the chains themselves."""
    last = max((f for files in flipped for f in files), default=0)
    return [[last - f for f in reversed(files)] for files in flipped]


def _count(placed: Placement) -> int:
    return max(f for files in placed for f in files) + 1


def _files(chains: Sequence[Sequence[OperationRow]], placed: Placement) -> list[Batch]:
    count = _count(placed)
    rows: list[list[OperationRow]] = [[] for _ in range(count)]
    for c, files in zip(chains, placed, strict=True):
        for row, f in zip(c, files, strict=True):
            rows[f].append(row)
    order = {op: k for k, op in enumerate(OPERATION_ORDER)}
    return [Batch(tuple(sorted(r, key=lambda row: order[row.operation]))) for r in rows]


def phases_of(files: Sequence[Batch]) -> list[Phase]:
    """Group consecutive files into phases while no number repeats inside one phase.

    A phase so keeps its meaning: its rows are independent of each other (one row per
    number), so apply may send its files side by side; phases run strictly in order.
    """
    phases: list[list[Batch]] = []
    seen: set[str] = set()
    for batch in files:
        numbers = {row.number for row in batch.rows}
        if not phases or numbers & seen:
            phases.append([])
            seen = set()
        phases[-1].append(batch)
        seen |= numbers
    return [Phase(tuple(p)) for p in phases]


def plan_phases(result: Diff, limits: Mapping[Operation, int]) -> list[Phase]:
    """Order every change's operations into phases of batches. Raises PlanningError listing every number that cannot be planned."""
    chains: list[list[OperationRow]] = []
    errors: dict[str, str] = {}
    for change in result.changes:
        try:
            chains.append(chain(change))
        except PlanningError as exc:
            errors.update(exc.numbers)
    if errors:
        raise PlanningError(errors)
    return phases_of(schedule(chains, limits))


def minimum_requests(phases: Sequence[Phase], limits: Mapping[Operation, int]) -> int:
    """A lower bound on the PUTs of any schedule of these rows, computed from the rows alone.

    The rows of each number, in upload order, are its chain; see :func:`_lower_bound`.
    """
    chains: dict[str, list[Operation]] = {}
    for phase in phases:
        for row in phase.rows:
            chains.setdefault(row.number, []).append(row.operation)
    return _lower_bound(list(chains.values()), limits)


def _lower_bound(chains: Sequence[Sequence[Operation]], limits: Mapping[Operation, int]) -> int:
    """The fewest files any schedule of ``chains`` needs, by counting alone.

    An operation of type *t* with *a* operations before it and *b* after it in its chain
    fits only in files a+1 … F-b, so F ≥ a + b + ⌈#(such operations)/limit[t]⌉ for every
    t, a, b. That covers ⌈count/limit⌉ per type (a = b = 0) and the longest chain.
    """
    return _suffix_bound(Counter(tuple(c) for c in chains if c), limits)


Suffix = tuple[Operation, ...]  # the operations of a chain still to place


def _suffix_bound(suffixes: Mapping[Suffix, int], limits: Mapping[Operation, int]) -> int:
    """:func:`_lower_bound` of chains given as counts of identical ones (zero counts are ignored)."""
    positions: dict[Operation, Counter[tuple[int, int]]] = {}
    for ops, k in suffixes.items():
        if k:
            for j, op in enumerate(ops):
                positions.setdefault(op, Counter())[(j, len(ops) - 1 - j)] += k
    bound = 0
    for op, spots in positions.items():
        for a in {a for a, _ in spots}:
            for b in {b for _, b in spots}:
                count = sum(k for (x, y), k in spots.items() if x >= a and y >= b)
                if count:
                    bound = max(bound, a + b + math.ceil(count / limits[op]))
    return bound


State = tuple[tuple[Suffix, int], ...]  # how many chains have each remaining suffix, sorted
Choice = dict[Suffix, int]  # how many chains of each remaining suffix advance in one file


def _exact_schedule(
    chains: Sequence[Sequence[Operation]], limits: Mapping[Operation, int], lower: int, upper: int, budget: int
) -> Placement | None:
    """The fewest files from ``lower`` to ``upper``, by exact search; None if none fits or the budget ran out.

    Iterative deepening over the file count F: a depth-first search places one file at a
    time. Two facts keep it small. Chains with the same operations left are interchangeable,
    so a state is how many chains have each remaining suffix. And every file can be taken
    as full as the ready operations allow (per type, ``min(limit, ready)``): in any schedule,
    moving a ready operation into free room of an earlier file keeps it valid, so some
    fewest-files schedule is full that way; only *which* chains advance is searched. A
    state is cut when its lower bound does not fit in the files left, or when it failed
    before with at least as many files left.
    """
    start: State = _state_of(Counter(tuple(c) for c in chains if c))
    failed: dict[State, int] = {}  # state -> the most files left with which it was found not to fit
    spent = 0

    def fits(state: State, left: int, path: list[Choice]) -> bool:
        nonlocal spent
        if not state:
            return True
        spent += 1  # every state looked at, cut or not: a state of many chains has thousands of next files
        if spent > budget:
            raise _BudgetSpent
        if left <= 0 or failed.get(state, -1) >= left or _suffix_bound(dict(state), limits) > left:
            return False
        for choice in _full_files(state, limits):
            after: Counter[Suffix] = Counter(dict(state))
            for suffix, k in choice.items():
                after[suffix] -= k
                if len(suffix) > 1:
                    after[suffix[1:]] += k
            path.append(choice)
            if fits(_state_of(after), left - 1, path):
                return True
            path.pop()
        failed[state] = left
        return False

    for files in range(lower, upper + 1):
        path: list[Choice] = []
        try:
            if fits(start, files, path):
                return _placement_of(chains, path)
        except _BudgetSpent:
            return None
    return None


class _BudgetSpent(Exception):
    """The exact search spent its node budget: keep the list schedule."""


def _state_of(counts: Mapping[Suffix, int]) -> State:
    order = {op: k for k, op in enumerate(OPERATION_ORDER)}
    return tuple(sorted(((s, k) for s, k in counts.items() if k), key=lambda e: [order[op] for op in e[0]]))


def _full_files(state: State, limits: Mapping[Operation, int]) -> Iterator[Choice]:
    """Every file that advances ``min(limit, ready)`` chains of each type, longest remaining chains tried first."""
    by_type: dict[Operation, list[tuple[Suffix, int]]] = {}
    for suffix, k in state:
        by_type.setdefault(suffix[0], []).append((suffix, k))
    per_type = []
    for op, groups in by_type.items():
        groups.sort(key=lambda g: -len(g[0]))
        per_type.append((groups, min(limits[op], sum(k for _, k in groups))))
    yield from _product(per_type, {})


def _product(per_type: Sequence[tuple[list[tuple[Suffix, int]], int]], so_far: Choice) -> Iterator[Choice]:
    """Lazily, every combination of one split per type (the splits can be far too many to list)."""
    if not per_type:
        yield so_far
        return
    (groups, take), rest = per_type[0], per_type[1:]
    for split in _splits(groups, take):
        yield from _product(rest, {**so_far, **split})


def _splits(groups: Sequence[tuple[Suffix, int]], take: int) -> Iterator[Choice]:
    """Every way to advance ``take`` chains from ``groups`` (suffix, count), the first groups filled first."""
    if not groups:
        if take == 0:
            yield {}
        return
    (suffix, k), rest = groups[0], groups[1:]
    room = sum(n for _, n in rest)
    for here in range(min(k, take), max(0, take - room) - 1, -1):
        for tail in _splits(rest, take - here):
            yield {suffix: here, **tail} if here else tail


def _placement_of(chains: Sequence[Sequence[Operation]], path: Sequence[Choice]) -> Placement:
    """Which file each operation is in, given how many chains of each suffix advance per file."""
    placed: Placement = [[-1] * len(c) for c in chains]
    waiting: dict[Suffix, list[int]] = {}
    for i, c in enumerate(chains):
        if c:
            waiting.setdefault(tuple(c), []).append(i)
    for file, choice in enumerate(path):
        moved = []
        for suffix, k in choice.items():
            for _ in range(k):
                i = waiting[suffix].pop()
                placed[i][len(chains[i]) - len(suffix)] = file
                if len(suffix) > 1:
                    moved.append((suffix[1:], i))
        for suffix, i in moved:
            waiting.setdefault(suffix, []).append(i)
    return placed
