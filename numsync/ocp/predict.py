"""What OCP's state becomes when it applies operation rows: the vendor's semantics, as data.

Used between phases to tell apply's own effects from another writer's. It follows the
documented rules (docs/emulator.md): Create sets GROUP_ID (PROVIDER is never exported);
Update sets the fields its cells name, ``<NULL>`` clears; Attach sets MINIAPP_ID and
LOCALE; Detach clears MINIAPP_ID only; Delete removes the number.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

from numsync.core.model import Field, NumberRecord, normalize_value
from numsync.ocp.rows import OperationRow
from numsync.ocp.vocabulary import FIELD_OF_COLUMN, GROUP_ID, NULL, Operation


def apply_rows(live: MutableMapping[str, NumberRecord], rows: Iterable[OperationRow]) -> None:
    """Change ``live`` (NUMBER → record) as OCP does when each of ``rows`` applies."""
    for row in rows:
        current = live.get(row.number)
        if row.operation is Operation.CREATE:
            live[row.number] = NumberRecord(row.number, row.values.get(GROUP_ID, ""))
        elif current is None:
            continue  # OCP refuses the row ("unknown number"): nothing changes
        elif row.operation is Operation.DELETE:
            del live[row.number]
        elif row.operation is Operation.DETACH:
            fields: dict[Field, str] = {f: v for f, v in current.fields.items() if f is not Field.MINIAPP_ID}
            live[row.number] = NumberRecord(current.number, current.group_id, fields, None, current.listed_as)
        else:  # Update, Attach: the field cells they carry
            fields = dict[Field, str](current.fields)
            for column, cell in row.values.items():
                f = FIELD_OF_COLUMN.get(column)
                if f is None or not cell:
                    continue
                value = None if cell == NULL else normalize_value(f, cell)
                if value is None:
                    fields.pop(f, None)
                else:
                    fields[f] = value
            live[row.number] = NumberRecord(current.number, current.group_id, fields, None, current.listed_as)
