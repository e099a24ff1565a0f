"""Live records → desired YAML text, one file per group.

Every value is written double-quoted (JSON string syntax, which YAML reads verbatim), so
nothing YAML would retype (``+1…``, ``no``, ``0123``, ``12:30``) can slip through. Numbers
are sorted; a modeline points editors at the JSON Schema.

Each GROUP_ID becomes a file name, so it must be a plain name (no separators, no dot segment,
not hidden); and no file is written through a symbolic link. Both are checked for every file
before the first is written.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from numsync.core.model import FIELDS, NumberRecord
from numsync.core.paths import write_no_follow
from numsync.errors import UnsafePathError

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
        files[file_name(group_id)] = text
    return files


def file_name(group_id: str) -> str:
    """``<group_id>.yaml``; raises UnsafePathError when the GROUP_ID would not name one file in the desired folder."""
    why = None
    if not group_id.strip():
        why = "it is blank"
    elif any(sep in group_id for sep in ("/", "\\", "\0")) or os.path.isabs(group_id):
        why = "it holds a path separator"
    elif group_id.startswith("."):
        why = "it starts with a dot (a dot segment, or a hidden file numsync would never load)"
    if why:
        raise UnsafePathError(
            f"GROUP_ID {group_id!r} cannot be a desired file name: {why}; write that group's file by hand "
            "(any name ending in .yaml works) or rename the group"
        )
    return f"{group_id}.yaml"


def write_desired(folder: Path, files: dict[str, str]) -> list[Path]:
    """Write ``files`` (name → text, from :func:`render_desired`) into ``folder``; the paths written.

    Refuses (UnsafePathError, nothing written) when a name is not a plain file name or a target is
    a symbolic link.
    """
    targets = []
    for name in files:
        if Path(name).name != name or name in (".", "..") or os.path.isabs(name):
            raise UnsafePathError(f"{name!r} is not a plain file name; nothing was written")
        targets.append(folder / name)
    links = [str(t) for t in targets if t.is_symlink()]
    if links:
        raise UnsafePathError(
            f"{', '.join(links)} {'is a symbolic link' if len(links) == 1 else 'are symbolic links'}; "
            "numsync import does not write through links: replace them with plain files or remove them"
        )
    folder.mkdir(parents=True, exist_ok=True)
    for target, text in zip(targets, files.values()):
        write_no_follow(target, text.encode("utf-8"))
    return targets
