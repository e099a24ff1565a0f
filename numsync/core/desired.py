"""Desired YAML files → desired state, with every problem located at file:line:column.

A desired file describes one group::

    group_id: ocp-qa
    defaults: {locale: en-US, provider: twilio}
    numbers:
      "+12015550123": {miniapp_id: "…", phone_number_set_id: us-east, note: "Billing"}
      "+12015550126": {}

Loading reports **all** problems at once (syntax, duplicate keys, values YAML retyped,
schema violations, invalid numbers, duplicates after normalization, a number in two
groups, malformed locales) instead of stopping at the first.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from sys import intern
from typing import Any

import phonenumbers

from numsync.core import yamlsrc
from numsync.core.desiredcache import TREE_SUBFOLDER, DesiredCache, tree_fingerprint, tree_key
from numsync.core.fileparts import file_parts
from numsync.core.files import encoding_problem, shown_path
from numsync.core.model import (
    FIELD_KEYS,
    PLAIN_E164,
    Field,
    NumberRecord,
    locale_problem,
    normalize_number,
    normalize_value,
    parse_number,
    records_fingerprint,
)
from numsync.core.paths import escapes, repository_root
from numsync.core.schema import load_schema, schema_problems
from numsync.core.state import DesiredState as DesiredState  # re-exported: where callers import it from
from numsync.core.yamlsrc import Location, Problem, YamlMap
from numsync.errors import DesiredError, NumberFormatError, YamlSyntaxError

YAML_SUFFIXES = (".yaml", ".yml")

#: OCP's clear marker, refused as a desired value: sent as is, it would clear the field. (The
#: core names it here rather than importing the vendor package; a test checks they agree.)
RESERVED_CLEAR_MARKER = "<NULL>"


def desired_files(folder: Path) -> list[Path]:
    """The YAML files under ``folder`` (recursively, hidden ones skipped), sorted."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in YAML_SUFFIXES
        and (p.is_file() or (p.is_symlink() and not p.exists()))  # a broken link is reported, not skipped
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def linked_folders(folder: Path) -> list[Path]:
    """The symbolic links under ``folder`` that the walk does not enter (hidden ones skipped): to folders, and broken
    ones not named like a desired file (perhaps a folder once; a broken ``*.yaml`` link is reported as such)."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_symlink()
        and (p.is_dir() or (not p.exists() and p.suffix.lower() not in YAML_SUFFIXES))
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _linked_folder(shown: str, link: Path) -> Problem:
    return Problem(
        Location(shown, 1, 1),
        f"this {'folder' if link.is_dir() else 'entry'} is a symbolic link to {os.readlink(link)}"
        + ("" if link.exists() else ", which is not there")
        + "; numsync does not read desired files through a linked folder (its files would be left out without a "
        "word): move the folder in, or link each file instead",
        "path-linked-folder",
    )


def load_desired(
    folder: Path,
    *,
    managed_groups: Iterable[str] | None = None,
    default_provider: str | None = None,
    display_root: Path | None = None,
    repository: Path | None = None,
    cache_dir: Path | None = None,
    workers: int | None = None,
) -> DesiredState:
    """Load every desired file under ``folder``.

    ``managed_groups``: when given, a file whose group_id is not among them is a problem.
    ``display_root``: paths in messages are shown relative to it (default: the current directory).
    ``repository``: files must resolve inside it or ``folder`` (default: the git top level above
    ``folder``); a symlink pointing elsewhere is a problem and is not read.
    ``cache_dir``: a :mod:`~numsync.core.desiredcache` folder: files unchanged since a load
    with the same settings are not parsed again (None: no cache).
    ``workers``: processes that parse files at once (default: the CPUs this process may use;
    1: this process only). Neither changes the result, only how fast it comes.
    Raises DesiredError with every problem found; returns the state when there are none.
    """
    state = DesiredState()
    problems: list[Problem] = []
    managed = set(managed_groups) if managed_groups is not None else None
    root = display_root or Path.cwd()
    if not folder.is_dir():
        raise DesiredError(
            [Problem(Location(str(folder), 1, 1), f"desired folder {folder} does not exist", "desired-missing")]
        )
    files = desired_files(folder)
    if not files:
        raise DesiredError(
            [
                Problem(
                    Location(str(folder), 1, 1),
                    f"no desired YAML files in {folder}; an empty desired state is never taken as 'delete everything'",
                    "desired-empty",
                )
            ]
        )
    inside = repository or repository_root(folder)
    problems += [_linked_folder(shown_path(link, root), link) for link in linked_folders(folder)]
    readable: list[tuple[Path, str]] = []
    for file in files:
        shown = shown_path(file, root)
        if not file.exists():  # a dangling or looping link (desired_files lists them)
            problems.append(_broken(shown, file))
            continue
        target = escapes(file, folder, inside)
        if target is not None:
            problems.append(_outside(shown, target, inside))
            continue
        state.files.append(file)
        readable.append((file, shown))
    store = DesiredCache(cache_dir) if cache_dir is not None else None
    parts, keys = file_parts(readable, load_part, managed, default_provider, store, workers)
    read_again = False
    for (file, shown), part in zip(readable, parts):
        # A file read on its own without a problem, that shares no group or number with the
        # files before it, adds exactly what reading it after them would. Any other file is
        # read again here, after them, so its problems are found and worded as always.
        if part is None or not _merge(part, state, managed):
            read_again = True
            problems += _load_file(file, shown, state, managed, default_provider)
    if problems:
        raise DesiredError(sorted(problems, key=lambda p: (p.location.path, p.location.line, p.location.column)), state)
    # Only when every file's content is that of its key (none read again, perhaps changed since).
    if cache_dir is not None and not read_again and None not in keys:
        state.fingerprint = _tree_fingerprint(DesiredCache(cache_dir, TREE_SUBFOLDER), keys, state)
    return state


def _tree_fingerprint(trees: DesiredCache, keys: list[str | None], state: DesiredState) -> str:
    """The fingerprint of ``state.records``: from the whole-tree entry of these files, else computed and stored.

    The entry's key covers every file's bytes and setting, so a hit restates the records loaded from them.
    """
    key = tree_key(k for k in keys if k is not None)
    cached = tree_fingerprint(trees.get(key))
    if cached is not None:
        return cached
    computed = records_fingerprint(state.records.values())
    trees.put(key, {"fingerprint": computed})
    trees.prune()
    return computed


def _merge(part: DesiredState, state: DesiredState, managed: set[str] | None) -> bool:
    """Add ``part`` (one file read on its own) to ``state``; False, changing nothing, if they overlap."""
    if len(part.groups) != 1:
        return False
    ((group_id, path),) = part.groups.items()
    if group_id in state.groups or (managed is not None and group_id not in managed):
        return False
    if not state.records.keys().isdisjoint(part.records):  # iterates the part, not the state
        return False
    state.groups[group_id] = path
    state.records.update(part.records)
    state.locations.update(part.locations)
    state.field_locations.update(part.field_locations)
    return True


def load_part(data: bytes, shown: str, managed: set[str] | None, default_provider: str | None) -> DesiredState | None:
    """One desired file's bytes read on their own, as :func:`load_desired` reads it; None when it has any problem."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\r" in text:  # as Path.read_text does (universal newlines)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    part = DesiredState()
    if _load_text(text, shown, part, managed, default_provider):
        return None
    return part


def _broken(shown: str, link: Path) -> Problem:
    return Problem(
        Location(shown, 1, 1),
        f"this file is a symbolic link to {os.readlink(link)}, which cannot be read (it does not exist, or links "
        "back to itself); restore the file it points to, or remove the link",
        "path-broken",
    )


def _outside(shown: str, target: Path, repository: Path) -> Problem:
    return Problem(
        Location(shown, 1, 1),
        f"this file is a symbolic link to {target}, outside the repository {repository}, and was not read; "
        "desired files must be inside the repository: copy the file in, or point the link inside it",
        "path-outside",
    )


def load_text(text: str, shown: str, *, default_provider: str | None = None) -> tuple[DesiredState, list[Problem]]:
    """One desired file's ``text`` on its own (``shown``: its path in messages): the state and its problems.

    Checks that need the other files or numsync.yaml (groups, numbers in two files) are not made.
    """
    state = DesiredState()
    problems = _load_text(text, shown, state, None, default_provider)
    return state, sorted(problems, key=lambda p: (p.location.line, p.location.column))


def _load_file(
    file: Path, shown: str, state: DesiredState, managed: set[str] | None, default_provider: str | None
) -> list[Problem]:
    try:
        text = file.read_text("utf-8")
    except UnicodeDecodeError as exc:
        return [encoding_problem(shown, exc)]
    return _load_text(text, shown, state, managed, default_provider)


def _load_text(
    text: str, shown: str, state: DesiredState, managed: set[str] | None, default_provider: str | None
) -> list[Problem]:
    start = Location(shown, 1, 1)
    try:
        data, problems = yamlsrc.load(text, shown)
    except YamlSyntaxError as exc:
        return [exc.problem]
    if data is None:
        return [
            Problem(
                start,
                "the file is empty; give it a group_id and numbers (an empty file never means 'delete everything')",
                "desired-empty",
            )
        ]
    if not isinstance(data, YamlMap):
        return [Problem(start, "a desired file must be a mapping with group_id and numbers", "schema-type")]
    problems += _retyped_keys(data.get("numbers"))
    problems += schema_problems("desired", schema_view(data), shown)
    if not isinstance(data.get("group_id"), str) or not isinstance(data.get("numbers"), YamlMap):
        return problems  # too broken to check numbers; the schema problems say why
    group_id: str = data["group_id"].strip()
    group_location = data.value_locations["group_id"]
    if managed is not None and group_id not in managed:
        problems.append(
            Problem(
                group_location,
                f"group {group_id!r} is not managed by this environment; add it under groups in numsync.yaml or fix the group_id",
                "unmanaged-group",
            )
        )
    if group_id in state.groups:
        problems.append(
            Problem(
                group_location,
                f"group {group_id!r} is also declared in {state.groups[group_id]}; keep one file per group",
                "duplicate-group",
            )
        )
    else:
        state.groups[group_id] = Path(shown)
    given_defaults = data.get("defaults")
    defaults: dict[str, Any] = given_defaults if isinstance(given_defaults, dict) else {}
    numbers: YamlMap = data["numbers"]
    for key, spec in numbers.items():
        if isinstance(key, str) and (spec is None or isinstance(spec, dict)):
            problems += _load_number(key, spec or {}, numbers, group_id, defaults, default_provider, state)
    return list(dict.fromkeys(problems))  # a bad default is found at every number that inherits it


_JSON_TYPES: dict[str, type] = {"string": str, "null": type(None), "boolean": bool}


def schema_view(data: YamlMap) -> YamlMap:
    """``data`` without the entries of ``numbers`` that plainly satisfy the schema (for speed).

    The schema checks each entry of ``numbers`` on its own, so leaving out entries that are
    valid changes no finding. What "plainly valid" means is read from the schema itself
    (:func:`number_rules`); if the schema ever uses more than it understands, every entry goes
    to jsonschema as before.
    """
    numbers = data.get("numbers")
    rules = number_rules()
    if rules is None or not isinstance(numbers, YamlMap):
        return data
    kept = YamlMap((key, spec) for key, spec in numbers.items() if not _plainly_valid(spec, rules))
    if len(kept) == len(numbers):
        return data
    view = YamlMap(data)
    for source, target in ((numbers, kept), (data, view)):
        target.location, target.scalars, target.key_scalars = source.location, source.scalars, source.key_scalars
        target.key_locations, target.value_locations = source.key_locations, source.value_locations
    view["numbers"] = kept
    return view


@cache
def number_rules() -> dict[str, tuple[tuple[type, ...], int]] | None:
    """Allowed keys of one number → (Python types its value may have, minLength), from the schema; None if it says more."""
    schema = load_schema("desired")

    def resolve(node: Any) -> Any:
        while (
            isinstance(node, dict)
            and "$ref" in node
            and set(node) <= {"$ref", "description"}
            and node["$ref"].startswith("#/")
        ):
            target: Any = schema
            for part in node["$ref"][2:].split("/"):
                target = target.get(part) if isinstance(target, dict) else None
            node = target
        return node

    def types(node: dict[str, Any]) -> set[str]:
        kind = node.get("type", [])
        return {kind} if isinstance(kind, str) else set(kind)

    numbers = schema.get("properties", {}).get("numbers", {})
    entry = resolve(numbers.get("additionalProperties"))
    if set(numbers) - {"description", "type", "additionalProperties"} or not isinstance(entry, dict):
        return None
    if (
        set(entry) - {"description", "type", "additionalProperties", "properties"}
        or entry.get("additionalProperties") is not False
        or types(entry) != {"object", "null"}
    ):
        return None
    rules = {}
    for name, prop in entry.get("properties", {}).items():
        prop = resolve(prop)
        if (
            not isinstance(prop, dict)
            or set(prop) - {"description", "type", "minLength"}
            or not types(prop)
            or not types(prop) <= set(_JSON_TYPES)
        ):
            return None
        rules[name] = (tuple(_JSON_TYPES[t] for t in types(prop)), prop.get("minLength", 0))
    return rules


def _plainly_valid(spec: Any, rules: dict[str, tuple[tuple[type, ...], int]]) -> bool:
    if spec is None:
        return True
    if not isinstance(spec, dict):
        return False
    for key, value in spec.items():
        rule = rules.get(key) if isinstance(key, str) else None
        if rule is None or not isinstance(value, rule[0]) or (isinstance(value, str) and len(value) < rule[1]):
            return False
    return True


def _retyped_keys(numbers: Any) -> list[Problem]:
    if not isinstance(numbers, YamlMap):
        return []
    retyped = [key for key, scalar in numbers.key_scalars.items() if scalar.retyped_as]
    problems = []
    for key in retyped:
        scalar = numbers.key_scalars[key]
        problems.append(
            Problem(
                numbers.key_locations[key],
                f'YAML read the number {scalar.text!r} as {scalar.retyped_as}, not text; quote this value: "{scalar.text}"',
                "quote-number",
            )
        )
        del numbers[key]  # reported here; the schema would only repeat it less clearly
    return problems


def _load_number(
    key: str,
    spec: dict[str, Any],
    numbers: YamlMap,
    group_id: str,
    defaults: dict[str, Any],
    default_provider: str | None,
    state: DesiredState,
) -> list[Problem]:
    location = numbers.key_locations[key]
    if not PLAIN_E164.fullmatch(key) and any(
        ch.isalpha() for ch in key.split(";")[0].lower().replace("ext", "").replace("x", "")
    ):
        return [
            Problem(
                location, f'{key!r} holds letters; write NUMBER in digits, E.164, e.g. "+18003569377"', "number-format"
            )
        ]
    try:
        # one parse for both the E.164 form and the validity check, unless spaces around the key make them differ
        number, parsed = parse_number(key) if key == key.strip() else (normalize_number(key), None)
    except NumberFormatError as exc:
        return [Problem(location, f'{exc}; write NUMBER in E.164, e.g. "+12015550123"', "number-format")]
    problems = _check_number(key, number, spec, location, parsed)
    if problems and problems[0].check == "number-extension":
        return problems
    if number in state.records:
        first = state.locations[number]
        other = state.records[number].group_id
        if other != group_id:
            message = f"{number} is listed in two groups: {other!r} at {first} and {group_id!r}; a number belongs to one group"
        elif key != number:
            message = f"{key!r} is {number} once normalized, already listed at {first}"
        else:
            message = f"{number} is listed twice (first at {first})"
        return problems + [Problem(location, message, "duplicate-number")]
    # Values of the wrong type were reported by the schema check; read only the text ones.
    merged = {k: v for k, v in {**defaults, **spec}.items() if isinstance(v, str) or v is None}
    values: dict[Field, str] = {}
    for f, yaml_key in FIELD_KEYS:
        value = normalize_value(f, merged.get(yaml_key))
        if value is not None:
            problem = _text_problem(f, value)
            if problem:
                where, owner = _field_location(spec, defaults, yaml_key, location, number)
                problems.append(Problem(where, f"{yaml_key} {owner}: {problem}", "text-value"))
            values[f] = intern(value)  # one string per distinct value: a tenant repeats a few miniapps, locales, sets
    locale = merged.get("locale")
    if isinstance(locale, str) and locale.strip() and (locale_message := locale_problem(locale)):
        problems.append(
            Problem(_field_location(spec, defaults, "locale", location, number)[0], locale_message, "locale-format")
        )
    if Field.MINIAPP_ID in values and Field.LOCALE not in values:
        given = spec.get("locale", defaults.get("locale"))
        if isinstance(given, str):  # blank: point at it
            where, owner = _field_location(spec, defaults, "locale", location, number)
            whose = "the numbers here that have" if owner == "in defaults" else "this number has"
            problems.append(
                Problem(
                    where,
                    f"locale {owner} is blank, but {whose} a miniapp_id and attaching needs a LOCALE (e.g. en-US)",
                    "locale-required",
                )
            )
        elif given is None:  # a value of the wrong type was reported by the schema check
            problems.append(
                Problem(
                    location,
                    f"{number} has a miniapp_id but no locale; attaching needs a LOCALE (add locale: en-US or set it in defaults)",
                    "locale-required",
                )
            )
    provider = (merged.get("provider") or "").strip() or default_provider
    state.records[number] = NumberRecord(number=number, group_id=group_id, fields=values, provider=provider)
    state.locations[number] = location
    state.field_locations[number] = _value_locations(merged, spec, defaults)
    return problems


def _value_locations(merged: dict[str, Any], spec: Any, defaults: Any) -> dict[str, Location]:
    """Key → where the value in ``merged`` came from: the number's own mapping, else the defaults."""
    found = {}
    on_number = spec.value_locations if isinstance(spec, YamlMap) else {}
    in_defaults = defaults.value_locations if isinstance(defaults, YamlMap) else {}
    for key, value in merged.items():
        if value is None:
            continue
        where = on_number.get(key)
        if where is None:
            where = in_defaults.get(key)
        if where is not None:
            found[intern(key)] = where  # not one copy of 'miniapp_id' per number
    return found


#: Longest value numsync writes; OCP documents none, and one huge cell fails a whole upload.
MAX_VALUE_LENGTH = 4000


def _text_problem(f: Field, value: str) -> str | None:
    """What is wrong with a text value, or None.

    Invisible characters (U+202E, C1 controls…) were refused where written raw (yamlsrc); one that
    reached a value was written as a visible escape, as import writes what live holds, so it is
    kept: a desired file must be able to say what live is, or adoption would plan a change.
    """
    if value == RESERVED_CLEAR_MARKER:
        return "the literal <NULL> is the API's clear marker, not a value; to clear the field write null or leave the key out"
    if len(value) > MAX_VALUE_LENGTH:
        return f"{len(value)} characters; at most {MAX_VALUE_LENGTH} are allowed"
    if "\0" in value:
        return "contains U+0000 (NUL), which an operation file cannot carry; remove the \\u0000 escape"
    return None


def _field_location(spec: Any, defaults: Any, name: str, fallback: Location, number: str) -> tuple[Location, str]:
    """Where the value of ``name`` a number got stands, and whose it is ("of NUMBER" or "in defaults").

    A value from the file's defaults is located there, so the same bad default is reported
    once (the file's problems are de-duplicated), not at every number inheriting it.
    """
    if isinstance(spec, YamlMap) and name in spec.value_locations:
        return spec.value_locations[name], f"of {number}"
    if isinstance(defaults, YamlMap) and name in defaults.value_locations:
        return defaults.value_locations[name], "in defaults"
    return fallback, f"of {number}"


def _check_number(
    key: str, number: str, spec: dict[str, Any], location: Location, parsed: phonenumbers.PhoneNumber | None = None
) -> list[Problem]:
    if parsed is None:  # ``key`` itself, when parse_number only saw it stripped
        parsed = phonenumbers.parse(key, None)
    if parsed.extension:
        return [Problem(location, f"{key!r} has an extension; OCP numbers have none", "number-extension")]
    if phonenumbers.is_valid_number(parsed):
        return []
    if phonenumbers.is_possible_number(parsed):
        if spec.get("allow_possible"):
            return []
        return [
            Problem(
                location,
                f"{number} is possible but not a valid number for its region; if it really exists, set allow_possible: true on it",
                "number-invalid",
            )
        ]
    return [Problem(location, f"{number} is not a valid phone number", "number-invalid")]
