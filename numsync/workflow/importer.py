"""Live records → desired YAML text, one file per group.

Every value is written double-quoted (JSON string syntax, which YAML reads verbatim), so
nothing YAML would retype (``+1…``, ``no``, ``0123``, ``12:30``) can slip through. Numbers
are sorted; a modeline points editors at the JSON Schema.

Each GROUP_ID becomes a file name, so it must be a plain name (no separators, no dot segment,
not hidden); and no file is written through a symbolic link. Both are checked for every file
before the first is written.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import phonenumbers

from numsync.core.model import FIELDS, Field, NumberRecord
from numsync.core.paths import write_no_follow
from numsync.core.yamlsrc import double_quoted
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
    return double_quoted(value)  # what live holds, invisible characters as visible escapes


#: The keys :func:`shared_defaults` may move into a file's ``defaults``: values many numbers of a
#: group share. (miniapp_id, application_tag and note rarely repeat enough to pay for themselves.)
SHAREABLE: tuple[Field, ...] = (Field.LOCALE, Field.PHONE_NUMBER_SET_ID)


def shared_defaults(records: Iterable[NumberRecord]) -> dict[str, str]:
    """The ``defaults`` that shorten one group's file: yaml key → value.

    For locale, phone_number_set_id and provider, the most common value, when more than one
    number has it and it saves lines: each number with it loses a line, each number without one
    gains a ``key: null`` line (null in a number clears a default), the key itself costs one.
    Nothing is returned unless the savings also pay for the ``defaults:`` line. (The export has
    no PROVIDER, so provider only comes from desired records.)
    """
    records = list(records)
    chosen: dict[str, str] = {}
    saved = 0
    columns = [(f.yaml_key, [r.get(f) for r in records]) for f in SHAREABLE]
    for key, values in [*columns, ("provider", [r.provider or None for r in records])]:
        best = _most_common(v for v in values if v is not None)
        if best is not None and best[1] > 1 and best[1] - values.count(None) - 1 > 0:
            chosen[key], saved = best[0], saved + best[1] - values.count(None) - 1
    return chosen if saved > 1 else {}


def _most_common(values: Iterable[str]) -> tuple[str, int] | None:
    """(value, uses) of the most used value, the alphabetically first among equals (output must not depend on order)."""
    counts = Counter(values)
    return min(counts.items(), key=lambda item: (-item[1], item[0])) if counts else None


def entry_lines(record: NumberRecord, defaults: Mapping[str, str], indent: str = "  ", step: str = "  ") -> list[str]:
    """The lines of one number in a file whose ``defaults`` are given (normalized values).

    A field equal to its default is left out; a field the number lacks but the defaults set is
    written ``null``; so is ``provider``, only when the defaults name one.
    A number phonenumbers calls possible but not valid gets ``allow_possible: true``: OCP has it,
    so the file must accept it.
    """
    fields: list[tuple[str, str | None]] = []
    for f in FIELDS:
        value = record.get(f)
        if value != defaults.get(f.yaml_key):
            fields.append((f.yaml_key, value))
    if "provider" in defaults and (record.provider or None) != defaults["provider"]:
        fields.append(("provider", record.provider or None))
    key = _quote(record.number)
    lines = [f"{indent}{step}{k}: {'null' if v is None else _quote(v)}\n" for k, v in fields]
    if _only_possible(record.number):
        lines.append(f"{indent}{step}allow_possible: true\n")
    return [f"{indent}{key}:\n", *lines] if lines else [f"{indent}{key}: {{}}\n"]


def _only_possible(number: str) -> bool:
    """Whether the desired loader would refuse ``number`` unless it says allow_possible."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False  # the loader reports it; allow_possible would not help
    return not phonenumbers.is_valid_number(parsed) and phonenumbers.is_possible_number(parsed)


def render_group(
    group_id: str,
    records: Iterable[NumberRecord],
    *,
    provider: str | None = None,
    schema: str | None = None,
    shared: bool = False,
) -> str:
    """The desired file for one group: ``group_id``, optional ``defaults``, sorted ``numbers``.

    ``provider`` goes into ``defaults``; with ``shared``, so do the values many numbers share
    (:func:`shared_defaults`), and the numbers then only say how they differ.
    """
    records = sorted(records, key=lambda r: r.number)
    written_against = shared_defaults(records) if shared else {}
    if provider:  # a provider for Creates: the numbers inherit it, none clears it
        written_against.pop("provider", None)
    defaults = {**written_against, **({"provider": provider} if provider else {})}
    lines = [MODELINE.format(schema=schema)] if schema else []
    lines.append(f"group_id: {_quote(group_id)}\n")
    if defaults:
        lines.append("defaults:\n")
        lines += [f"  {key}: {_quote(value)}\n" for key, value in defaults.items()]
    lines.append("numbers:\n" if records else "numbers: {}\n")
    for record in records:
        lines += entry_lines(record, written_against)
    return "".join(lines)


def render_desired(records: Iterable[NumberRecord], groups: Iterable[str], **options: Any) -> dict[str, str]:
    """File name (``<group_id>.yaml``) → text, for every group in ``groups`` (an empty group gets ``numbers: {}``).

    ``options`` go to :func:`render_group`.
    """
    by_group: dict[str, list[NumberRecord]] = defaultdict(list)
    wanted = set(groups)
    for record in records:
        if record.group_id in wanted:
            by_group[record.group_id].append(record)
    files = {}
    for group_id in sorted(wanted):
        files[file_name(group_id)] = render_group(group_id, by_group[group_id], **options)
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
