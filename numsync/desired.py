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

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import phonenumbers

from . import yamlsrc
from .model import FIELDS, Field, NumberFormatError, NumberRecord, is_locale, normalize_number, normalize_value
from .schemacheck import schema_problems
from .yamlsrc import Location, Problem, YamlMap

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(slots=True)
class DesiredState:
    """Desired numbers by E.164 NUMBER, where each was declared, and the files read.

    ``records``: NUMBER → :class:`NumberRecord` (fields normalized, provider resolved from
    the number, the file's defaults, then the environment's default_provider);
    ``locations``: NUMBER → the position of its key; ``files``: the YAML files loaded;
    ``groups``: GROUP_ID → the file that declares it.
    """

    records: dict[str, NumberRecord] = field(default_factory=dict)
    locations: dict[str, Location] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    groups: dict[str, Path] = field(default_factory=dict)


class DesiredError(ValueError):
    """The desired files have problems; ``problems`` lists them all, sorted by file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in desired files")
        self.problems = problems


def desired_files(folder: Path) -> list[Path]:
    """The YAML files under ``folder`` (recursively, hidden ones skipped), sorted."""
    return sorted(
        p for p in folder.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def load_desired(
    folder: Path,
    *,
    managed_groups: Iterable[str] | None = None,
    default_provider: str | None = None,
    display_root: Path | None = None,
) -> DesiredState:
    """Load every desired file under ``folder``.

    ``managed_groups``: when given, a file whose group_id is not among them is a problem.
    ``display_root``: paths in messages are shown relative to it (default: the current directory).
    Raises DesiredError with every problem found; returns the state when there are none.
    """
    state = DesiredState()
    problems: list[Problem] = []
    managed = set(managed_groups) if managed_groups is not None else None
    root = display_root or Path.cwd()
    if not folder.is_dir():
        raise DesiredError([Problem(Location(str(folder), 1, 1), f"desired folder {folder} does not exist", "desired-missing")])
    files = desired_files(folder)
    if not files:
        raise DesiredError([Problem(Location(str(folder), 1, 1), f"no desired YAML files in {folder}; an empty desired state is never taken as 'delete everything'", "desired-empty")])
    for file in files:
        shown = _shown(file, root)
        state.files.append(file)
        problems += _load_file(file, shown, state, managed, default_provider)
    if problems:
        raise DesiredError(sorted(problems, key=lambda p: (p.location.path, p.location.line, p.location.column)))
    return state


def _shown(file: Path, root: Path) -> str:
    try:
        return str(file.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(file)


def _load_file(file: Path, shown: str, state: DesiredState, managed: set[str] | None, default_provider: str | None) -> list[Problem]:
    start = Location(shown, 1, 1)
    try:
        text = file.read_text("utf-8")
    except UnicodeDecodeError as exc:
        return [Problem(start, f"not UTF-8 text (byte {exc.start}); save the file as UTF-8", "encoding")]
    try:
        data, problems = yamlsrc.load(text, shown)
    except yamlsrc.YamlSyntaxError as exc:
        return [exc.problem]
    if data is None:
        return [Problem(start, "the file is empty; give it a group_id and numbers (an empty file never means 'delete everything')", "desired-empty")]
    if not isinstance(data, YamlMap):
        return [Problem(start, "a desired file must be a mapping with group_id and numbers", "schema-type")]
    problems += _retyped_keys(data.get("numbers"))
    problems += schema_problems("desired", data, shown)
    if not isinstance(data.get("group_id"), str) or not isinstance(data.get("numbers"), YamlMap):
        return problems  # too broken to check numbers; the schema problems say why
    group_id: str = data["group_id"].strip()
    group_location = data.value_locations["group_id"]
    if managed is not None and group_id not in managed:
        problems.append(Problem(group_location, f"group {group_id!r} is not managed by this environment; add it under groups in numsync.yaml or fix the group_id", "unmanaged-group"))
    if group_id in state.groups:
        problems.append(Problem(group_location, f"group {group_id!r} is also declared in {state.groups[group_id]}; keep one file per group", "duplicate-group"))
    else:
        state.groups[group_id] = Path(shown)
    defaults = data.get("defaults") if isinstance(data.get("defaults"), dict) else {}
    numbers: YamlMap = data["numbers"]
    for key, spec in numbers.items():
        if isinstance(key, str) and (spec is None or isinstance(spec, dict)):
            problems += _load_number(key, spec or {}, numbers, group_id, defaults, default_provider, state)
    return problems


def _retyped_keys(numbers: Any) -> list[Problem]:
    if not isinstance(numbers, YamlMap):
        return []
    retyped = [key for key, scalar in numbers.key_scalars.items() if scalar.retyped_as]
    problems = []
    for key in retyped:
        scalar = numbers.key_scalars[key]
        problems.append(Problem(numbers.key_locations[key], f"YAML read the number {scalar.text!r} as {scalar.retyped_as}, not text; quote this value: \"{scalar.text}\"", "quote-number"))
        del numbers[key]  # reported here; the schema would only repeat it less clearly
    return problems


def _load_number(key: str, spec: dict[str, Any], numbers: YamlMap, group_id: str, defaults: dict[str, Any], default_provider: str | None, state: DesiredState) -> list[Problem]:
    location = numbers.key_locations[key]
    try:
        number = normalize_number(key)
    except NumberFormatError as exc:
        return [Problem(location, f"{exc}; write NUMBER in E.164, e.g. \"+12015550123\"", "number-format")]
    problems = _check_number(key, number, spec, location)
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
    for f in FIELDS:
        value = normalize_value(f, merged.get(f.yaml_key))
        if value is not None:
            values[f] = value
    locale = merged.get("locale")
    if isinstance(locale, str) and locale.strip() and not is_locale(locale):
        problems.append(Problem(_field_location(numbers, key, spec, "locale", location), f"locale {locale!r} is not a language tag like 'en-US'", "locale-format"))
    if Field.MINIAPP_ID in values and Field.LOCALE not in values:
        problems.append(Problem(location, f"{number} has a miniapp_id but no locale; attaching needs a LOCALE (add locale: en-US or set it in defaults)", "locale-required"))
    provider = (merged.get("provider") or "").strip() or default_provider
    state.records[number] = NumberRecord(number=number, group_id=group_id, fields=values, provider=provider)
    state.locations[number] = location
    return problems


def _field_location(numbers: YamlMap, key: str, spec: Any, name: str, fallback: Location) -> Location:
    if isinstance(spec, YamlMap) and name in spec.value_locations:
        return spec.value_locations[name]
    return fallback


def _check_number(key: str, number: str, spec: dict[str, Any], location: Location) -> list[Problem]:
    if phonenumbers.parse(key, None).extension:
        return [Problem(location, f"{key!r} has an extension; OCP numbers have none", "number-extension")]
    parsed = phonenumbers.parse(number, None)
    if phonenumbers.is_valid_number(parsed):
        return []
    if phonenumbers.is_possible_number(parsed):
        if spec.get("allow_possible"):
            return []
        return [Problem(location, f"{number} is possible but not a valid number for its region; if it really exists, set allow_possible: true on it", "number-invalid")]
    return [Problem(location, f"{number} is not a valid phone number", "number-invalid")]
