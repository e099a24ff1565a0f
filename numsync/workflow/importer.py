"""Live records → desired YAML text, one file per group.

Every value is written double-quoted (JSON string syntax, which YAML reads verbatim), so
nothing YAML would retype (``+1…``, ``no``, ``0123``, ``12:30``) can slip through. Numbers
are sorted; a modeline points editors at the JSON Schema.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from numsync.core.model import FIELDS, NumberRecord

MODELINE = "# yaml-language-server: $schema={schema}\n"

#: The desired schema of this install of numsync.
DESIRED_SCHEMA = Path(__file__).resolve().parents[1] / "schema" / "desired.schema.json"


def schema_modeline(folder: Path) -> str | None:
    """The desired schema as a path relative to ``folder``, when both are in one git checkout.

    Anywhere else the path would name this machine's install of numsync and break for
    everyone else once committed, so the files get no modeline (``numsync schema`` prints it).
    """
    folder = folder.resolve()
    root = next((p for p in (folder, *folder.parents) if (p / ".git").exists()), None)
    if root is None or not DESIRED_SCHEMA.is_relative_to(root):
        return None
    return Path(os.path.relpath(DESIRED_SCHEMA, folder)).as_posix()


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def render_group(
    group_id: str, records: Iterable[NumberRecord], *, provider: str | None = None, schema: str | None = None
) -> str:
    """The desired file for one group: ``group_id``, optional ``defaults.provider``, sorted ``numbers``."""
    lines = [MODELINE.format(schema=schema)] if schema else []
    lines.append(f"group_id: {_quote(group_id)}\n")
    if provider:
        lines.append(f"defaults:\n  provider: {_quote(provider)}\n")
    lines.append("numbers:\n")
    for record in sorted(records, key=lambda r: r.number):
        fields = [(f.yaml_key, value) for f in FIELDS if (value := record.get(f)) is not None]
        if not fields:
            lines.append(f"  {_quote(record.number)}: {{}}\n")
            continue
        lines.append(f"  {_quote(record.number)}:\n")
        lines += [f"    {key}: {_quote(value)}\n" for key, value in fields]
    return "".join(lines)


def render_desired(records: Iterable[NumberRecord], groups: Iterable[str], **options: str | None) -> dict[str, str]:
    """File name (``<group_id>.yaml``) → text, for every group in ``groups`` (an empty group gets ``numbers: {}``)."""
    by_group: dict[str, list[NumberRecord]] = defaultdict(list)
    wanted = set(groups)
    for record in records:
        if record.group_id in wanted:
            by_group[record.group_id].append(record)
    files = {}
    for group_id in sorted(wanted):
        text = render_group(group_id, by_group[group_id], **options)
        if not by_group[group_id]:
            text = text.replace("numbers:\n", "numbers: {}\n")
        files[f"{group_id}.yaml"] = text
    return files
