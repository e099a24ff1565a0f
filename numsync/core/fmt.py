"""``numsync fmt``: desired files in canonical form, every comment kept.

Canonical form, applied to the text (never re-emitted from data, so comments, blank lines,
flow or block style and indentation stay as written):

- every number key is double-quoted E.164 (``+1 201 555 0123`` → ``"+12015550123"``);
- the entries of ``numbers`` are sorted by that number; the comment lines directly above an
  entry (no blank line in between), comments on its own lines and comment lines right after
  it indented deeper than its key move with it, while blank lines and comments set apart by a
  blank line keep their place;
- single-line string values that are plain or single-quoted become double-quoted
  (``locale: en-US`` → ``locale: "en-US"``), the way ``numsync import`` writes them;
  block scalars (``|``, ``>``) and multi-line scalars are left alone;
- ``locale`` values in canonical case (``en-gb`` / ``en_GB`` → ``"en-GB"``), as the loader reads them;
- quoted mapping keys that read the same unquoted become plain (``"locale":`` → ``locale:``);
- the file ends with a line break.

A file with problems (``numsync validate`` would report them) is not formatted. Every result
is checked: it must load to exactly the same desired records and data as the original,
otherwise the entries keep their order, and if even that changes the meaning the file is left
alone and reported. (Anchors, aliases and merge keys are refused by the loader, so a file with
them has problems and is not formatted.)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from numsync.core import yamlsrc
from numsync.core.desired import desired_files, load_text
from numsync.core.files import encoding_problem, shown_path
from numsync.core.model import normalize_locale
from numsync.core.model import normalize_number as _normalize_number
from numsync.core.paths import write_no_follow
from numsync.core.yamlsrc import Location, Problem
from numsync.errors import FormatError, NumberFormatError

_STR = "tag:yaml.org,2002:str"
_LOCALE_KEY = "locale"
_BREAKS = "\r\n\x85\u2028\u2029"  # what the YAML reader counts as line breaks
_LINE = re.compile(r"[^\r\n\x85\u2028\u2029]*(?:\r\n|[\r\n\x85\u2028\u2029])")
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESOLVER = yaml.resolver.Resolver()
normalize_number = lru_cache(maxsize=65536)(_normalize_number)  # each key is normalized several times


def _resolved_tag(text: str) -> str:
    """The tag YAML would give ``text`` as a plain (unquoted) scalar."""
    tag: str = _RESOLVER.resolve(yaml.ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
    return tag


@dataclass(slots=True)
class FileResult:
    """One file: its path as shown, the text read, the canonical text (None when refused) and problems."""

    path: Path
    shown: str
    original: str
    formatted: str | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether formatting changes the file."""
        return self.formatted is not None and self.formatted != self.original


# --------------------------------------------------------------------------- entry points


def format_text(text: str, shown: str = "<text>") -> str:
    """The canonical form of one desired file's ``text``. Raises FormatError when it has problems."""
    meaning, problems = _meaning(text, shown)
    if problems:
        raise FormatError(problems)
    result = _ensure_final_break(text)
    edits = _requote_edits(result)
    if edits:
        result = _apply(result, edits)
        if _meaning(result, shown)[0] != meaning:
            raise FormatError(
                [
                    Problem(
                        Location(shown, 1, 1),
                        "numsync fmt cannot re-quote this file without changing what it means; it was left alone (please report this)",
                        "fmt-unsafe",
                    )
                ]
            )
    sorted_text = _sort_numbers(result)
    if sorted_text != result and _meaning(sorted_text, shown)[0] == meaning:
        result = sorted_text  # else (a case the sorter gets wrong): keep the order
    return result


def format_file(path: Path, shown: str | None = None) -> FileResult:
    """Format ``path`` in memory (nothing is written); line ends are kept as they are.

    A symbolic link is refused (a problem, nothing read): :func:`write` would write through it.
    """
    shown = shown or shown_path(path)
    if path.is_symlink():
        message = (
            f"this file is a symbolic link (to {os.readlink(path)}); numsync fmt does not write through links: "
            "format the file it points to instead"
        )
        return FileResult(path, shown, "", None, [Problem(Location(shown, 1, 1), message, "fmt-symlink")])
    try:
        original = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return FileResult(path, shown, "", None, [encoding_problem(shown, exc)])
    result = FileResult(path, shown, original)
    try:
        result.formatted = format_text(original, shown)
    except FormatError as exc:
        result.problems = exc.problems
    return result


def collect(paths: Iterable[Path]) -> list[Path]:
    """The files to format: each file given, and the desired YAML files under each folder given; sorted, once each."""
    found: dict[Path, None] = {}
    for path in paths:
        for file in desired_files(path) if path.is_dir() else [path]:
            found.setdefault(file, None)
    return sorted(found)


def write(result: FileResult) -> None:
    """Write the formatted text of ``result`` back to its file (only when it changed)."""
    if result.changed and result.formatted is not None:
        write_no_follow(result.path, result.formatted.encode("utf-8"))


# --------------------------------------------------------------------------- meaning


def _meaning(text: str, shown: str) -> tuple[Any, list[Problem]]:
    """(what a desired file says: its records and its data with number keys normalized, its problems).

    The meaning is None when the file has problems.
    """
    state, problems = load_text(text, shown)
    if problems:
        return None, problems
    data, _ = yamlsrc.load(text, shown)  # loads: load_text just did
    plain = _plain(data)  # locales in canonical case: a file differing only in their case means the same
    if isinstance(plain, dict) and isinstance(plain.get("numbers"), dict):
        plain["numbers"] = {normalize_number(k): v for k, v in plain["numbers"].items()}
    return (state.records, plain), []


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: normalize_locale(v) if k == _LOCALE_KEY and isinstance(v, str) else _plain(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------- quoting


def compose(text: str) -> yaml.Node | None:
    # Marks' index must count characters of ``text``: libyaml's does, except that it skips a
    # byte order mark, so such files use the pure-Python loader. (Results are verified anyway.)
    loader = yaml.SafeLoader if text.startswith("\ufeff") else yamlsrc._Loader
    return yaml.compose(text, Loader=loader)


def _requote_edits(text: str) -> list[tuple[int, int, str]]:
    root = compose(text)
    edits: list[tuple[int, int, str]] = []
    seen: set[int] = set()

    def value(node: yaml.Node, key: yaml.Node | None = None) -> None:
        if id(node) in seen:
            return  # an alias of a node already visited
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if isinstance(key, yaml.ScalarNode) and key.value == _LOCALE_KEY:
                _locale_value(text, node, edits)
            else:
                _quote_value(text, node, edits)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                value(item)
        elif isinstance(node, yaml.MappingNode):
            for item_key, item in node.value:
                _plain_key(text, item_key, edits)
                value(item, item_key)

    if isinstance(root, yaml.MappingNode):
        for key, item in root.value:
            _plain_key(text, key, edits)
            if isinstance(key, yaml.ScalarNode) and key.value == "numbers" and isinstance(item, yaml.MappingNode):
                seen.add(id(item))
                for number, spec in item.value:
                    _number_key(text, number, edits)
                    value(spec)
            else:
                value(item)
    return edits


def _span(text: str, node: yaml.ScalarNode) -> tuple[int, int, str] | None:
    """Where ``node``'s own text stands, if it is one line and carries no anchor or tag."""
    start, end = node.start_mark.index, node.end_mark.index
    source = text[start:end]
    if any(b in source for b in _BREAKS):
        return None
    if node.style in (None, ""):
        return (start, end, source) if source == node.value else None
    if node.style in ("'", '"') and len(source) >= 2 and source[0] == source[-1] == node.style:
        return start, end, source
    return None


def _quote_value(text: str, node: yaml.ScalarNode, edits: list[tuple[int, int, str]]) -> None:
    if node.tag != _STR or node.style not in (None, "", "'"):
        return
    span = _span(text, node)
    if span:
        edits.append((span[0], span[1], yamlsrc.double_quoted(node.value)))


def _locale_value(text: str, node: yaml.ScalarNode, edits: list[tuple[int, int, str]]) -> None:
    """A ``locale`` value, double-quoted and in canonical case (``en-gb`` → ``"en-GB"``)."""
    if node.tag != _STR or node.style not in (None, "", "'", '"'):
        return
    span = _span(text, node)
    wanted = json.dumps(normalize_locale(node.value), ensure_ascii=False)
    if span and span[2] != wanted and (node.style != '"' or "\\" not in span[2]):
        edits.append((span[0], span[1], wanted))


def _plain_key(text: str, node: yaml.Node, edits: list[tuple[int, int, str]]) -> None:
    if not isinstance(node, yaml.ScalarNode) or node.tag != _STR or node.style not in ("'", '"'):
        return
    if not _PLAIN_KEY.match(node.value) or _resolved_tag(node.value) != _STR:
        return
    span = _span(text, node)
    if span and (node.style == "'" or "\\" not in span[2]):
        edits.append((span[0], span[1], node.value))


def _number_key(text: str, node: yaml.Node, edits: list[tuple[int, int, str]]) -> None:
    if not isinstance(node, yaml.ScalarNode) or node.tag != _STR:
        return
    try:
        wanted = json.dumps(normalize_number(node.value))
    except NumberFormatError:
        return
    span = _span(text, node)
    if span and span[2] != wanted:
        edits.append((span[0], span[1], wanted))


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _ensure_final_break(text: str) -> str:
    if not text or text[-1] in _BREAKS:
        return text
    return text + ("\r\n" if "\r\n" in text else "\n")


# --------------------------------------------------------------------------- sorting


def _sort_numbers(text: str) -> str:
    """``text`` with the entries of ``numbers`` sorted by number (a block mapping only)."""
    root = compose(text)
    if not isinstance(root, yaml.MappingNode):
        return text
    numbers = next((v for k, v in root.value if isinstance(k, yaml.ScalarNode) and k.value == "numbers"), None)
    if not isinstance(numbers, yaml.MappingNode) or numbers.flow_style or len(numbers.value) < 2:
        return text
    keys = [k for k, _ in numbers.value]
    if not all(isinstance(k, yaml.ScalarNode) for k in keys):
        return text
    try:
        order = [normalize_number(k.value) for k in keys]
    except NumberFormatError:
        return text
    if order == sorted(order):
        return text
    numbers_key = next(k for k, v in root.value if v is numbers)
    cursor = line_end(text, numbers_key.end_mark.index)
    head = text[:cursor]
    slots: list[str] = []  # blank lines and detached comments before each entry: they keep their place
    chunks: list[str] = []  # attached comments + the entry's lines: they move
    for key, value in numbers.value:
        begin = line_start(text, key.start_mark.index)
        end = entry_end(text, begin, max(content_end(key), content_end(value)))
        end = own_comments_end(text, end, key.start_mark.column)
        detached, attached = _split_gap(text[cursor:begin])
        slots.append(detached)
        chunks.append(attached + text[begin:end])
        cursor = end
    moved = [chunk for _, chunk in sorted(zip(order, chunks), key=lambda pair: pair[0])]
    return head + "".join(slot + chunk for slot, chunk in zip(slots, moved)) + text[cursor:]


def content_end(node: yaml.Node) -> int:
    """Where the last character of ``node``'s own content stands (block collections: their last child's)."""
    if isinstance(node, yaml.ScalarNode) or (isinstance(node, yaml.CollectionNode) and node.flow_style):
        return node.end_mark.index
    children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else list(node.value)
    return max((content_end(c) for c in children), default=node.end_mark.index)


def entry_end(text: str, begin: int, content_end: int) -> int:
    """The index just after the line break that ends an entry whose content ends at ``content_end``."""
    start = line_start(text, content_end)
    if start > begin and not text[start:content_end].strip(" \t"):
        return start  # e.g. a block scalar whose end mark is in the next line's indentation
    return line_end(text, content_end)


def own_comments_end(text: str, end: int, column: int) -> int:
    """``end`` moved past the comment lines right after an entry that are indented deeper than its key."""
    for match in _LINE.finditer(text, end):
        line = match.group()
        body = line.lstrip(" ")
        if not body.startswith("#") or len(line) - len(body) <= column:
            break
        end += len(line)
    return end


def line_start(text: str, index: int) -> int:
    while index > 0 and text[index - 1] not in _BREAKS:
        index -= 1
    return index


def line_end(text: str, index: int) -> int:
    if 0 < index < len(text) and text[index - 1] == "\r" and text[index] == "\n":
        return index + 1
    while index < len(text):
        if text[index] in _BREAKS:
            return index + (2 if text.startswith("\r\n", index) else 1)
        index += 1
    return index


def _split_gap(gap: str) -> tuple[str, str]:
    """(detached, attached): the comment lines directly above an entry are attached to it."""
    lines = _LINE.findall(gap)
    if "".join(lines) != gap:  # the gap always ends with a line break; anything else: attach nothing
        return gap, ""
    split = len(lines)
    while split > 0 and lines[split - 1].strip().startswith("#"):
        split -= 1
    return "".join(lines[:split]), "".join(lines[split:])
