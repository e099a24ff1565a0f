"""Changes → operation rows → ordered phases → batches (files) within the limits.

Each changed number gets a short chain of operations that must run in order:

=========  =====================================================================
create     Create(GROUP_ID, PROVIDER) → its state row (Attach or Update), if any
update     Detach (miniapp removed), if needed → its state row, if any
replace    Detach (if attached) → Delete → Create → its state row, if any
delete     Detach (if attached) → Delete                       (prune only)
=========  =====================================================================

The *state row* sets every other differing field in one row: an Attach when a miniapp
is added and nothing but LOCALE changes with it, an Update otherwise (an Update with
MINIAPP_ID attaches, per the vendor doc). Cleared fields are written as ``<NULL>``;
unchanged ones stay empty ("leave as is").

Phase *k* holds the *k*-th operation of every chain, so a number never has two rows in
one file and dependent operations run in separate, ordered requests. Inside a phase,
operations of different numbers are independent: one file carries up to each
operation's limit of each type, so a phase needs max over types of ⌈count/limit⌉ files
— the lower bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

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
    if change.kind is ChangeKind.UPDATE:
        listed_as = change.live.listed_as if change.live else None  # address the number as OCP lists it
        ops = []
        if any(c.field is Field.MINIAPP_ID and c.desired is None for c in change.fields):
            ops.append(OperationRow(Operation.DETACH, number, listed_as=listed_as))
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


def batches_for(rows: Sequence[OperationRow], limits: Mapping[Operation, int]) -> tuple[Batch, ...]:
    """Split one phase's rows into the fewest files: file *i* takes the *i*-th slice of each type."""
    by_type: dict[Operation, list[OperationRow]] = {op: [] for op in OPERATION_ORDER}
    for row in rows:
        by_type[row.operation].append(row)
    files = max((math.ceil(len(r) / limits[op]) for op, r in by_type.items() if r), default=0)
    return tuple(
        Batch(tuple(row for op in OPERATION_ORDER for row in by_type[op][i * limits[op] : (i + 1) * limits[op]]))
        for i in range(files)
    )


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
    depth = max((len(c) for c in chains), default=0)
    phases = []
    for k in range(depth):
        rows = [c[k] for c in chains if len(c) > k]
        phases.append(Phase(batches_for(rows, limits)))
    return phases


def minimum_requests(phases: Sequence[Phase], limits: Mapping[Operation, int]) -> int:
    """Σ over phases of max over operation types of ⌈count/limit⌉: the fewest PUTs possible."""
    total = 0
    for phase in phases:
        counts: dict[Operation, int] = {}
        for row in phase.rows:
            counts[row.operation] = counts.get(row.operation, 0) + 1
        total += max((math.ceil(n / limits[op]) for op, n in counts.items()), default=0)
    return total
