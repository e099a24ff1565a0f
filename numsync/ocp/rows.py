"""The units of an upload: one operation row, the rows of one file (a batch), and a phase of files."""

from __future__ import annotations

from dataclasses import dataclass, field

from numsync.core.model import PLAIN_E164, normalize_number
from numsync.ocp.vocabulary import NUMBER, OPERATION, OPERATION_COLUMNS, Operation


@dataclass(frozen=True, slots=True)
class OperationRow:
    """One row of an operation file.

    ``number`` is the E.164 NUMBER (the row's identity); ``values`` maps column name to
    cell text; a missing column is an empty cell ("leave as is"), :data:`NULL` clears.
    ``listed_as``, when set, is the NUMBER cell instead: the form OCP's export gave a live
    number that was not E.164 (see :attr:`NumberRecord.listed_as`).
    """

    operation: Operation
    number: str
    values: dict[str, str] = field(default_factory=dict)
    listed_as: str | None = None

    def cells(self) -> dict[str, str]:
        """All :data:`OPERATION_COLUMNS` of this row, empty where not set."""
        row = {column: "" for column in OPERATION_COLUMNS}
        row.update(self.values)
        row[OPERATION] = self.operation.value
        row[NUMBER] = self.listed_as or self.number
        return row

    def to_json(self) -> dict[str, str]:
        """Plain-data form: only non-empty cells, exactly as uploaded."""
        return {k: v for k, v in self.cells().items() if v}

    @classmethod
    def from_json(cls, data: dict[str, str]) -> OperationRow:
        """Inverse of :meth:`to_json`. Raises ValueError on an unknown OPERATION or an unreadable NUMBER."""
        values = {k: v for k, v in data.items() if k not in (OPERATION, NUMBER) and v}
        cell = data[NUMBER]
        number = cell if PLAIN_E164.fullmatch(cell) else normalize_number(cell)
        return cls(Operation(data[OPERATION]), number, values, None if number == cell else cell)


@dataclass(frozen=True, slots=True)
class Batch:
    """One operation file: the rows of one request, in upload order."""

    rows: tuple[OperationRow, ...]

    def count(self, operation: Operation) -> int:
        """Rows of ``operation`` in this file."""
        return sum(1 for r in self.rows if r.operation is operation)


@dataclass(frozen=True, slots=True)
class Phase:
    """Operations that may run together; phases run in order, each after the previous finished."""

    batches: tuple[Batch, ...]

    @property
    def rows(self) -> list[OperationRow]:
        """Every row of the phase, in upload order."""
        return [row for batch in self.batches for row in batch.rows]
