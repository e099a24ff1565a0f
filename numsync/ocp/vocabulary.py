"""The vendor's vocabulary: OCP's CSV column names, OPERATION values, ``<NULL>`` and default limits.

Source: the vendor's "How to manage batch numbers through CSV / through API" pages (see
docs/api.md). This is the one place that spells a column name; the core speaks
:class:`numsync.core.model.Field`, and :data:`COLUMN` maps it onto the wire.
"""

from __future__ import annotations

import enum

from numsync.core.model import FIELDS, Field

#: The literal that clears a field in an operation row (vendor doc: "`<NULL>` clears a field").
NULL = "<NULL>"

NUMBER = "NUMBER"
GROUP_ID = "GROUP_ID"
OPERATION = "OPERATION"
PROVIDER = "PROVIDER"
COUNTRY = "COUNTRY"

#: The CSV column of each core field.
COLUMN: dict[Field, str] = {
    Field.MINIAPP_ID: "MINIAPP_ID",
    Field.LOCALE: "LOCALE",
    Field.PHONE_NUMBER_SET_ID: "PHONE_NUMBER_SET_ID",
    Field.APPLICATION_TAG: "APPLICATION_TAG",
    Field.NOTE: "NOTE",
}

#: The core field of each field column (inverse of :data:`COLUMN`).
FIELD_OF_COLUMN: dict[str, Field] = {column: f for f, column in COLUMN.items()}


class Operation(str, enum.Enum):
    """An OPERATION value of ``PUT {base}/api/numbers/csv``."""

    CREATE = "Create"
    UPDATE = "Update"
    ATTACH = "Attach"
    DETACH = "Detach"
    DELETE = "Delete"


#: Default rows per uploaded file and operation (vendor doc: "Default limits per operation type").
DEFAULT_LIMITS: dict[Operation, int] = {
    Operation.UPDATE: 800,
    Operation.ATTACH: 800,
    Operation.DETACH: 100,
    Operation.DELETE: 10,
    Operation.CREATE: 100,
}

#: Columns of the export (``POST {base}/api/numbers/csv``), in the vendor's order.
EXPORT_COLUMNS: tuple[str, ...] = (
    "APPLICATION_TAG",
    "COUNTRY",
    "GROUP_ID",
    "LOCALE",
    "MINIAPP_DIAMANT_APP_NAME",
    "MINIAPP_GROUP",
    "MINIAPP_ID",
    "MINIAPP_NAME",
    "MINIAPP_TYPE",
    "NUMBER",
    "PHONE_NUMBER_SET_ID",
    "NOTE",
)

#: Export columns numsync needs; the others are informational and may be missing.
REQUIRED_EXPORT_COLUMNS: tuple[str, ...] = (NUMBER, GROUP_ID, *(COLUMN[f] for f in FIELDS))

#: Columns of an operation file (``PUT {base}/api/numbers/csv``), in the order numsync writes them.
OPERATION_COLUMNS: tuple[str, ...] = (
    "OPERATION",
    "GROUP_ID",
    "NUMBER",
    "PROVIDER",
    "MINIAPP_ID",
    "PHONE_NUMBER_SET_ID",
    "APPLICATION_TAG",
    "LOCALE",
    "NOTE",
)


def desired_keys_named(message: str) -> list[str]:
    """The desired-YAML keys whose columns an OCP message names, in field order (``MINIAPP_ID …`` → ``miniapp_id``).

    PROVIDER, not a field, names the desired key ``provider``.
    """
    keys = [f.yaml_key for f in FIELDS if COLUMN[f] in message]
    return keys + (["provider"] if PROVIDER in message else [])
