"""``numsync import --unmanaged``: write YAML for the live numbers no desired file lists.

Adoption only adds. Each unmanaged number (live in a managed group, in no desired file) is
inserted into its group's existing file, as text, where ``numsync fmt`` would sort it: before
the first entry with a greater number, after the previous entry's own comment lines, so the
comments directly above an entry stay with it. Every other byte of the file stays as it was.
A group with no file gets one, written as ``numsync import`` writes it.

The new entries say only how they differ from the file's ``defaults`` (a default they lack is
cleared with ``null``). Each edited file is checked before anything is written: it must load to
exactly the records it had plus the adopted ones, and a file that was in canonical form stays so.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from numsync.config import Environment
from numsync.core import yamlsrc
from numsync.core.desired import DesiredState, desired_files, load_desired, load_text
from numsync.core.fmt import compose, content_end, entry_end, format_text, line_end, line_start, own_comments_end
from numsync.core.model import FIELDS, NumberRecord, normalize_number, normalize_value
from numsync.core.paths import write_no_follow
from numsync.errors import AdoptionError, FormatError, UnsafePathError
from numsync.workflow.importer import entry_lines, file_name, render_group


@dataclass(frozen=True, slots=True)
class Adopted:
    """One desired file adoption writes: its path, its new text, the numbers it adopts, and whether it is new."""

    path: Path
    text: str
    numbers: tuple[str, ...]
    created: bool


@dataclass(frozen=True, slots=True)
class Adoption:
    """What :func:`plan_adoption` found: the files to write, and the unlisted numbers left alone as retiring."""

    files: list[Adopted]
    retiring: tuple[str, ...] = ()


def unmanaged(live: Iterable[NumberRecord], desired: Collection[str], groups: Collection[str]) -> list[NumberRecord]:
    """The live records of ``groups`` whose NUMBER no desired file lists, sorted by number.

    Unlike the diff's ``unmanaged``, this includes groups that prune: adopting a number there keeps
    it instead of planning its Delete.
    """
    return sorted((r for r in live if r.group_id in groups and r.number not in desired), key=lambda r: r.number)


def retiring(env: Environment, records: Iterable[NumberRecord]) -> list[NumberRecord]:
    """Those of ``records`` that carry their group's retire mark: no strays, but numbers a reviewed change
    removed from desired and numsync is retiring. Adopting one would undo that removal (and write the mark
    into desired as a wanted value), so adoption leaves them alone; putting one back is a desired edit."""
    return [r for r in records if r.group_id in env.groups and env.groups[r.group_id].retirement_mark(r) is not None]


def plan_adoption(
    env: Environment, live: Iterable[NumberRecord], groups: Collection[str], *, schema: str | None = None
) -> Adoption:
    """The files to write so that every unmanaged live number of ``groups`` is desired as it is, but those
    that are retiring (see :func:`retiring`).

    Raises DesiredError when the desired files have problems (fix them first), AdoptionError when
    a file cannot take the numbers (flow-style ``numbers``, a file name taken by another group) or
    an edit would change what the file says, UnsafePathError for a GROUP_ID that is no file name.
    """
    state = _current(env)
    strays = unmanaged(live, state.records, groups)
    marked = {r.number for r in retiring(env, strays)}
    by_group: dict[str, list[NumberRecord]] = defaultdict(list)
    for record in strays:
        if record.number not in marked:
            by_group[record.group_id].append(record)
    result = []
    for group_id, records in sorted(by_group.items()):
        numbers = tuple(r.number for r in records)
        if group_id in state.groups:
            shown = str(state.groups[group_id])  # relative to the working directory, or absolute
            path = Path.cwd() / shown
            result.append(Adopted(path, adopt_into(path, records, shown), numbers, created=False))
            continue
        path = env.desired / file_name(group_id)
        if path.exists() or path.is_symlink():
            raise AdoptionError(
                f"{path} exists but does not declare group {group_id!r}, so the group's numbers cannot go there; "
                f"rename that file, or write group {group_id!r} into a file of another name"
            )
        result.append(Adopted(path, render_group(group_id, records, schema=schema, shared=True), numbers, created=True))
    return Adoption(result, tuple(sorted(marked)))


def write_adoption(files: Iterable[Adopted]) -> None:
    """Write the files of :func:`plan_adoption`; refuses (UnsafePathError, nothing written) when one is a link."""
    files = list(files)
    links = [str(f.path) for f in files if f.path.is_symlink()]
    if links:
        raise UnsafePathError(
            f"{', '.join(links)}: numsync import does not write through symbolic links; replace them with plain files"
        )
    for adopted in files:
        adopted.path.parent.mkdir(parents=True, exist_ok=True)
        write_no_follow(adopted.path, adopted.text.encode("utf-8"))


def _current(env: Environment) -> DesiredState:
    """The environment's desired state; none yet (no folder or no file) is an empty one, not an error."""
    if not env.desired.is_dir() or not desired_files(env.desired):
        return DesiredState()
    return load_desired(
        env.desired, managed_groups=env.groups, default_provider=env.default_provider, repository=env.repository
    )


def adopt_into(path: Path, records: list[NumberRecord], shown: str | None = None) -> str:
    """The text of the desired file ``path`` (``shown`` in messages) with ``records`` added (see the module docstring)."""
    shown = shown or str(path)
    if path.is_symlink():
        raise UnsafePathError(f"{shown} is a symbolic link; numsync import does not write through links")
    original = path.read_bytes().decode("utf-8")  # bytes: line ends are kept as written
    return adopt_text(original, records, shown)


def adopt_text(original: str, records: list[NumberRecord], shown: str) -> str:
    """``original`` (one desired file's text) with ``records`` inserted as entries of its ``numbers``."""
    data, _ = yamlsrc.load(original, shown)
    defaults = _defaults(data.get("defaults") if isinstance(data, Mapping) else None)
    text = _insert(original, sorted(records, key=lambda r: r.number), defaults, shown)
    if _canonical(original, shown):
        with contextlib.suppress(FormatError):  # a text fmt refuses is reported by the check below
            text = format_text(text, shown)  # a no-op in every case the insertion gets right
    _check(original, text, records, shown)
    return text


def _defaults(raw: object) -> dict[str, str]:
    """A file's ``defaults`` of the number fields, normalized as the loader applies them: yaml key → value."""
    if not isinstance(raw, Mapping):
        return {}
    found = {}
    for f in FIELDS:
        value = raw.get(f.yaml_key)
        normalized = normalize_value(f, value) if isinstance(value, str) else None
        if normalized is not None:
            found[f.yaml_key] = normalized
    return found  # not provider: it only matters to a Create, and an adopted number exists, so it just inherits it


def _insert(text: str, records: list[NumberRecord], defaults: dict[str, str], shown: str) -> str:
    root = compose(text)
    pair = next(
        ((k, v) for k, v in getattr(root, "value", []) if isinstance(k, yaml.ScalarNode) and k.value == "numbers"),
        None,
    )
    if pair is None or not isinstance(pair[1], yaml.MappingNode):
        raise AdoptionError(f"{shown}: no numbers mapping to add to")
    key, numbers = pair
    newline = "\r\n" if "\r\n" in text else "\n"

    def render(record: NumberRecord, indent: str, step: str) -> str:
        return "".join(entry_lines(record, defaults, indent, step)).replace("\n", newline)

    if numbers.flow_style:
        if numbers.value:
            raise AdoptionError(
                f"{shown}: numbers is written in flow style ({{…}}); write it one number per line "
                "(a block mapping) and run numsync import --unmanaged again"
            )
        block = "".join(render(r, " " * (key.start_mark.column + 2), "  ") for r in records)
        return _replace_empty_flow(text, numbers, block, newline)
    entries = _entries(text, numbers)
    column = numbers.value[0][0].start_mark.column
    indent, step = " " * column, " " * _step(numbers, column)
    inserts: dict[int, list[str]] = defaultdict(list)
    head = line_end(text, key.end_mark.index)
    for record in records:  # before the first entry with a greater number, i.e. after the one before it
        index = next((i for i, (number, _) in enumerate(entries) if number > record.number), len(entries))
        inserts[entries[index - 1][1] if index else head].append(render(record, indent, step))
    for at in sorted(inserts, reverse=True):
        block = "".join(inserts[at])
        if at == len(text) and text and not text.endswith(("\n", "\r")):
            block = newline + block
        text = text[:at] + block + text[at:]
    return text


def _entries(text: str, numbers: yaml.MappingNode) -> list[tuple[str, int]]:
    """(E.164 number, index just after its lines and own comments) of each entry, as ``numsync fmt`` cuts them."""
    found = []
    for key, value in numbers.value:
        begin = line_start(text, key.start_mark.index)
        end = entry_end(text, begin, max(content_end(key), content_end(value)))
        found.append((normalize_number(key.value), own_comments_end(text, end, key.start_mark.column)))
    return found


def _step(numbers: yaml.MappingNode, column: int) -> int:
    """How much deeper than its key a number's fields are indented in this file (2 when no entry shows it)."""
    for _, value in numbers.value:
        if isinstance(value, yaml.MappingNode) and not value.flow_style and value.value:
            return int(value.value[0][0].start_mark.column) - column
    return 2


def _replace_empty_flow(text: str, numbers: yaml.Node, block: str, newline: str) -> str:
    """``numbers: {}`` (an empty group, as import writes it) → a block mapping holding ``block``; a comment after it stays."""
    start, end = numbers.start_mark.index, numbers.end_mark.index
    before, after = text[:start].rstrip(" \t"), text[end:]
    tail_length = line_end(text, end) - end
    rest = after[:tail_length]
    tail = rest if rest.strip() else rest.lstrip(" \t")  # a comment keeps its spacing; trailing blanks go
    if not tail.endswith(("\n", "\r")):
        tail += newline
    return before + tail + block + after[tail_length:]


def _canonical(text: str, shown: str) -> bool:
    try:
        return format_text(text, shown) == text
    except FormatError:
        return False


def _check(original: str, text: str, records: list[NumberRecord], shown: str) -> None:
    """Refuse an edit that does not load to the file's own records plus ``records``, unchanged."""
    before, problems = load_text(original, shown)
    if problems:
        raise AdoptionError(
            f"{shown} has problems ({problems[0]}); fix them (numsync validate) before adopting numbers"
        )
    after, problems = load_text(text, shown)
    if problems:
        raise AdoptionError(
            f"{shown}: adding {len(records)} number(s) would make the file invalid ({problems[0]}); nothing was changed"
        )
    expected = {n: (r.group_id, r.fields, r.provider) for n, r in before.records.items()}
    expected.update({r.number: (r.group_id, r.fields, None) for r in records})
    # An adopted number's provider is whatever the file's defaults give it: live numbers have none.
    got = {n: (r.group_id, r.fields, r.provider if n in before.records else None) for n, r in after.records.items()}
    if got != expected:
        wrong = sorted(n for n in expected.keys() | got.keys() if expected.get(n) != got.get(n))
        raise AdoptionError(
            f"{shown}: adding the numbers would change what the file says about {', '.join(wrong[:5])}; "
            "nothing was changed (please report this)"
        )
