"""The desired state a load produces (its own module so the loader's helpers can build it too)."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from numsync.core.located import key_locations, value_locations
from numsync.core.model import NumberRecord
from numsync.core.yamlsrc import Location


@dataclass(slots=True)
class DesiredState:
    """Desired numbers by E.164 NUMBER, where each was declared, and the files read.

    ``records``: NUMBER → :class:`NumberRecord` (fields normalized, provider resolved from
    the number, the file's defaults, then the environment's default_provider);
    ``locations``: NUMBER → the position of its key; ``files``: the YAML files loaded;
    ``groups``: GROUP_ID → the file that declares it; ``field_locations``: NUMBER → YAML key
    (``locale``, ``provider``, …) → where the value it got stands (on the number itself, or
    in the file's ``defaults``), for the keys that were set. Both location mappings decode the
    places of a part read from the cache or a worker when first asked (:mod:`~numsync.core.located`).
    ``fingerprint``: the
    :func:`~numsync.core.model.records_fingerprint` of ``records`` as loaded, when a load through
    the cache has it (None otherwise); not compared, as it only restates ``records``. Whoever changes
    ``records`` after the load must set it to None.
    """

    records: dict[str, NumberRecord] = field(default_factory=dict)
    locations: MutableMapping[str, Location] = field(default_factory=key_locations)
    files: list[Path] = field(default_factory=list)
    groups: dict[str, Path] = field(default_factory=dict)
    field_locations: MutableMapping[str, dict[str, Location]] = field(default_factory=value_locations)
    fingerprint: str | None = field(default=None, compare=False)
