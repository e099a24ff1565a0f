"""YAML with positions: every mapping remembers where its keys and values stand.

PyYAML (C parser where present) composes the node graph; this module builds plain
values from it while keeping file/line/column for every key and value, reports
duplicate keys (PyYAML would silently keep the last one) and remembers which plain
scalars YAML retyped (``+12015550123`` → int, ``no`` → bool, ``12:30`` → 750).

Anchors (``&name``), aliases (``*name``) and merge keys (``<<``) are refused: nested aliases
expand exponentially ("billion laughs": a 625-byte file became gigabytes), and a desired file
has ``defaults:`` for values several numbers share.

Characters a reviewer cannot see — controls (C0 but tab and line ends, DEL, C1), the
text-direction marks, overrides and isolates, and the line and paragraph separators — are
refused where they are written raw (in a value, a key or a comment: "Trojan Source"). A value
that really holds one says so visibly, as an escape in a double-quoted string (``"\\u202e"``):
:func:`double_quoted` writes every value that way.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, NamedTuple

import yaml

from numsync.errors import YamlSyntaxError

try:  # the C loader is several times faster; fall back cleanly without libyaml
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"  # a plain "<<" key
_VALUE_TAG = "tag:yaml.org,2002:value"  # a plain "=" key: SafeConstructor reads it as the text "="
#: Deepest nesting of mappings and lists built. numsync's files need a handful of levels (a desired
#: file: numbers → number → field; numsync.yaml: environments → env → freeze → weekly → window →
#: days); libyaml itself stops at 1,000, but building is recursive and Python's stack ends first.
MAX_DEPTH = 32
_SHARING_HINT = "write the values out (in a desired file, values that numbers share go under its defaults:)"
_COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")  # what an untagged (or !!map, !!seq) one gets
_TYPE_NAMES = {
    "tag:yaml.org,2002:int": "an integer",
    "tag:yaml.org,2002:float": "a number",
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "a date",
}


# A named tuple rather than a frozen dataclass: a large tenant builds about eight locations per
# number, and a tuple is built in about half the time (and is as immutable).
class Location(NamedTuple):
    """A place in a source file; ``line`` and ``column`` are 1-based."""

    path: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding about a source file: where, what, and a stable check name."""

    location: Location
    message: str
    check: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


@dataclass(frozen=True, slots=True)
class Scalar:
    """What YAML made of a plain scalar: its source text and the type it resolved to."""

    text: str
    retyped_as: str | None  # e.g. "an integer" when an unquoted scalar did not stay a string


class YamlMap(dict[Any, Any]):
    """A mapping that remembers positions.

    ``location`` is the mapping's own start; ``key_locations[k]`` and ``value_locations[k]``
    where key ``k`` and its value stand; ``scalars[k]`` the source of a scalar value that YAML
    retyped (a plain scalar that did not stay text), ``key_scalars[k]`` that of a retyped key.
    Keys and values that stayed text (nearly all) have no entry there: the text is the value.
    """

    # slots: no per-instance __dict__ for the one small mapping each number of a tenant is
    __slots__ = ("key_locations", "key_scalars", "location", "scalars", "value_locations")

    location: Location
    key_locations: dict[Any, Location]
    value_locations: dict[Any, Location]
    scalars: dict[Any, Scalar]
    key_scalars: dict[Any, Scalar]


class YamlList(list[Any]):
    """A sequence that remembers the position of each item (``item_locations``)."""

    __slots__ = ("item_locations", "location")

    location: Location
    item_locations: list[Location]


def _location(path: str, mark: yaml.Mark) -> Location:
    return Location(path, mark.line + 1, mark.column + 1)


class _Builder:
    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def scalar(self, node: yaml.ScalarNode) -> tuple[Any, Scalar | None]:
        """The value of ``node``, and its source when YAML retyped it (else None)."""
        if node.tag == _STR_TAG:  # what SafeConstructor makes of a string, without its bookkeeping (most scalars)
            return node.value, None
        if node.tag not in _TYPE_NAMES:  # an explicit tag (!!python/object, !!binary, !x): nothing numsync reads
            self.refuse_tag(node)
            return node.value, None
        retyped = None
        if not node.style:  # plain: None (pure loader) or '' (libyaml)
            retyped = Scalar(node.value, _TYPE_NAMES.get(node.tag, node.tag))
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value, retyped  # keep dates as the text the author wrote (2026-13-45 too: never constructed)
        return self._constructor.construct_object(node, deep=True), retyped

    def refuse_tag(self, node: yaml.Node) -> None:
        message = (
            f"the YAML tag {node.tag!r} is not allowed: numsync reads plain YAML (text, numbers, true/false, "
            "null, mappings and lists); remove the tag, and quote the value if it is text"
        )
        self.problems.append(Problem(_location(self.path, node.start_mark), message, "yaml-tag"))

    def build(self, node: yaml.Node, depth: int = 1) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)[0]
        if depth > MAX_DEPTH:
            message = (
                f"YAML nested deeper than {MAX_DEPTH} levels of mappings and lists; numsync's files need a few "
                "(a desired file: numbers, then each number's fields): flatten it"
            )
            raise YamlSyntaxError(Problem(_location(self.path, node.start_mark), message, "yaml-depth"))
        if node.tag not in _COLLECTION_TAGS:  # !!set, !!omap, !!python/object on a mapping or list
            self.refuse_tag(node)
        if isinstance(node, yaml.SequenceNode):
            items = YamlList(self.build(child, depth + 1) for child in node.value)
            items.location = _location(self.path, node.start_mark)
            items.item_locations = [_location(self.path, child.start_mark) for child in node.value]
            return items
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, depth)
        raise TypeError(f"unexpected YAML node {node!r}")  # pragma: no cover

    def mapping(self, node: yaml.MappingNode, depth: int = 1) -> YamlMap:
        path = self.path
        result = YamlMap()
        result.location = _location(path, node.start_mark)
        # Filled through locals: this loop runs for every key of every number of a tenant.
        key_locations: dict[Any, Location] = {}
        value_locations: dict[Any, Location] = {}
        scalars: dict[Any, Scalar] = {}
        key_scalars: dict[Any, Scalar] = {}
        result.key_locations, result.value_locations = key_locations, value_locations
        result.scalars, result.key_scalars = scalars, key_scalars
        special_keys = any(key_node.tag in (_MERGE_TAG, _VALUE_TAG) for key_node, _ in node.value)
        for key_node, value_node in node.value:
            key_location = _location(path, key_node.start_mark)
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(Problem(key_location, "a mapping key must be a plain value", "yaml-key"))
                continue
            if special_keys and key_node.tag == _MERGE_TAG:
                message = f"merge keys (<<) are not allowed; {_SHARING_HINT}"
                self.problems.append(Problem(key_location, message, "yaml-merge"))
                continue
            if special_keys and key_node.tag == _VALUE_TAG:
                key, key_scalar = key_node.value, None
            else:
                key, key_scalar = self.scalar(key_node)
            if key in result:
                first = key_locations[key]
                self.problems.append(
                    Problem(
                        key_location,
                        f"duplicate key {key_node.value!r} (first at line {first.line}); "
                        "YAML would silently keep only the last one — remove or merge one of them",
                        "duplicate-key",
                    )
                )
                continue
            value_scalar = None
            if isinstance(value_node, yaml.ScalarNode):
                value, value_scalar = self.scalar(value_node)
                value_locations[key] = _location(path, value_node.start_mark)
            else:
                value = self.build(value_node, depth + 1)
                value_locations[key] = value.location  # where the nested mapping or sequence starts
            result[key] = value
            key_locations[key] = key_location
            if key_scalar is not None:
                key_scalars[key] = key_scalar
            if value_scalar is not None:
                scalars[key] = value_scalar
        return result


#: Characters refused raw in a YAML source (see the module doc): allowed only as escapes.
HIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def hidden_character(text: str, path: str) -> Problem | None:
    """The first character of :data:`HIDDEN` written raw in ``text``, located (lines counted at ``\\n``), or None."""
    found = HIDDEN.search(text)
    if found is None:
        return None
    at = found.start()
    line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
    ch = found.group()
    name = unicodedata.name(ch, "a control character")
    message = (
        f"the invisible character U+{ord(ch):04X} ({name}) is written here as is, where a reviewer cannot see it; "
        f"remove it, or if the value must hold it write it as the escape \\u{ord(ch):04x} inside a double-quoted string "
        f'(e.g. note: "before\\u{ord(ch):04x}after"), as numsync import does'
    )
    return Problem(Location(path, line, column), message, "hidden-character")


def double_quoted(value: str) -> str:
    """``value`` as a YAML double-quoted scalar that reads back exactly and shows every character.

    JSON string syntax (a subset of YAML's double-quoted style), with each character that is not
    printable (controls, format characters such as U+202E, separators, unassigned) as an escape:
    ``\\u202e``, or ``\\U0001d173`` beyond the BMP (YAML has no surrogate pairs).
    """
    text = json.dumps(value, ensure_ascii=False)
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() else f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}" for ch in text
    )


def load(text: str, path: str) -> tuple[Any, list[Problem]]:
    """Parse one YAML document from ``text`` (read from ``path``, used in locations).

    Returns the value (mappings as :class:`YamlMap`, sequences as :class:`YamlList`,
    None for an empty document) and the problems found while building it (duplicate
    keys, non-scalar keys, merge keys). Raises YamlSyntaxError when the text is not YAML
    or uses an anchor or alias (located at the first one), or holds a :data:`HIDDEN` character raw.
    """
    hidden = hidden_character(text, path)
    if hidden is not None:  # before PyYAML, whose reader refuses some of them with a vaguer message
        raise YamlSyntaxError(hidden)
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = _location(path, mark) if mark else Location(path, 1, 1)
        reason = exc.problem or str(exc)
        if exc.context:
            reason = f"{reason} ({exc.context})"
        raise YamlSyntaxError(Problem(location, f"YAML syntax error: {reason}", "yaml-syntax")) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(Problem(Location(path, 1, 1), f"YAML error: {exc}", "yaml-syntax")) from None
    if node is None:
        return None, []
    _refuse_anchors(text, path)  # before building: building expands every alias
    builder = _Builder(path)
    return builder.build(node), builder.problems


def _refuse_anchors(text: str, path: str) -> None:
    """Raise YamlSyntaxError at the first anchor or alias in ``text`` (which composed without error)."""
    if "&" not in text and "*" not in text:
        return  # neither can be written without its indicator: skip the second parse (nearly every file)
    found: list[tuple[str, Any]] = []  # (what, its start mark)
    for event in yaml.parse(text, Loader=_Loader):
        anchor = getattr(event, "anchor", None)  # node and alias events have one
        if anchor is not None:
            what = "alias *" if isinstance(event, yaml.AliasEvent) else "anchor &"
            found.append((what + anchor, event.start_mark))
    if not found:
        return
    what, mark = found[0]
    more = f", and {len(found) - 1} more in this file" if len(found) > 1 else ""
    message = f"YAML anchors and aliases are not allowed ({what}{more}); {_SHARING_HINT}"
    raise YamlSyntaxError(Problem(_location(path, mark), message, "yaml-anchor"))


def locate(root: Any, path: list[Any] | tuple[Any, ...], fallback: Location) -> Location:
    """Where the value at ``path`` (keys and indexes from ``root``) stands in the source.

    Walks as deep as the path exists; returns the deepest known location, else ``fallback``.
    """
    location = getattr(root, "location", fallback)
    node = root
    for step in path:
        if isinstance(node, YamlMap) and step in node:
            location = node.value_locations.get(step, location)
            node = node[step]
        elif isinstance(node, YamlList) and isinstance(step, int) and step < len(node):
            location = node.item_locations[step]
            node = node[step]
        else:
            break
    return location


def locate_key(root: Any, path: list[Any] | tuple[Any, ...], fallback: Location) -> Location:
    """Like :func:`locate`, but the position of the last key itself rather than its value."""
    if not path:
        return locate(root, path, fallback)
    parent_path, key = path[:-1], path[-1]
    node = root
    for step in parent_path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            return locate(root, path, fallback)
    if isinstance(node, YamlMap) and key in node.key_locations:
        return node.key_locations[key]
    return locate(root, path, fallback)
