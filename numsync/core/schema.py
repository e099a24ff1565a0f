"""JSON Schema validation whose findings point at YAML lines.

jsonschema does the checking; this module turns each error into a :class:`Problem`
at the offending key or value, with a did-you-mean for unknown keys and "quote this
value" where YAML retyped a scalar the schema wanted as a string.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from numsync.core.yamlsrc import Location, Problem, YamlMap, locate, locate_key


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``numsync/schema/<name>.schema.json`` shipped in the package."""
    text = resources.files("numsync.schema").joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    # The schemas are shipped, not the user's: tests check each against its metaschema
    # (tests/test_schema_and_hooks.py), rather than every run paying ~0.1 s to do it again.
    schema = load_schema(name)
    return jsonschema.validators.validator_for(schema)(schema)


def _parent(root: Any, path: list[Any]) -> Any:
    node = root
    for step in path:
        node = node[step]
    return node


def _describe(error: jsonschema.ValidationError, root: Any) -> tuple[list[Any], str, bool]:
    """(path to point at, message, point at the key rather than the value)."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        unknown = _unknown_keys(error)
        if unknown:
            return unknown[0]
    if error.validator == "type" and path:
        parent = _parent(root, path[:-1])
        if isinstance(parent, YamlMap):
            scalar = parent.scalars.get(path[-1])
            wanted = error.validator_value
            wants_string = wanted == "string" or (isinstance(wanted, list) and "string" in wanted)
            if scalar is not None and scalar.retyped_as and wants_string:
                form = _failed_schema(error).get("pattern")
                if isinstance(form, str) and not re.search(form, scalar.text):
                    # quoting would not help (retire_after: 14 needs 14d): say the form, not "quote it"
                    return path, _not_in_form(path, scalar.text, error), False
                return (
                    path,
                    (f'YAML read {scalar.text!r} as {scalar.retyped_as}, not text; quote this value: "{scalar.text}"'),
                    False,
                )
    where = ".".join(str(p) for p in path)
    prefix = f"{where}: " if where else ""
    if error.validator == "required":
        return path, prefix + error.message, False  # names the entry, not only the key
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        named = [
            t for t in wanted if t != "null"
        ] or wanted  # "or empty" is implied: leaving a value out is always allowed
        message = f"{prefix}{_shown(error.instance)} is not {' or '.join(_TYPE_WORDS.get(t, t) for t in named)}"
        if isinstance(error.instance, str) and {"number", "integer"} & set(wanted) and _looks_numeric(error.instance):
            message += f"; YAML reads {error.instance} as text, write it out in plain digits (e.g. 1000000 for 1e6)"
        return path, message, False
    if error.validator == "pattern":
        return path, _not_in_form(path, error.instance, error), False
    return path, prefix + error.message, False


def _not_in_form(path: list[Any], value: Any, error: jsonschema.ValidationError) -> str:
    """``where: "value" is not in the expected form: <the property's description>``."""
    where = ".".join(str(p) for p in path)
    described = _failed_schema(error).get("description")
    return f"{where + ': ' if where else ''}{_shown(value)} is not in the expected form" + (
        f": {described}" if described else ""
    )


_TYPE_WORDS = {
    "string": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "object": "a mapping (key: value)",
    "array": "a list",
    "null": "empty",
}


def _shown(value: Any) -> str:
    """``value`` as the YAML/JSON reader would write it (true, null, ["a"]), not as Python does."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _unknown_keys(error: jsonschema.ValidationError) -> list[tuple[list[Any], str, bool]]:
    """One finding per key the schema does not allow, each with a did-you-mean."""
    schema = _failed_schema(error)
    allowed = list(schema.get("properties", {}))
    found = []
    for key in error.instance if isinstance(error.instance, Mapping) else ():
        if key in allowed or _matches_pattern(schema, key):
            continue
        hint = difflib.get_close_matches(str(key), allowed, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else f"; allowed keys: {', '.join(allowed)}"
        found.append((list(error.absolute_path) + [key], f"unknown key {key!r}{suggestion}", True))
    return found


def _failed_schema(error: jsonschema.ValidationError) -> Mapping[str, Any]:
    """The subschema ``error`` is about (ours are all mappings; jsonschema also allows true/false)."""
    return error.schema if isinstance(error.schema, Mapping) else {}


def _matches_pattern(schema: Mapping[str, Any], key: Any) -> bool:
    return any(re.search(p, str(key)) for p in schema.get("patternProperties", {}))


def schema_problems(name: str, data: Any, path: str) -> list[Problem]:
    """Validate ``data`` against the shipped schema ``name``; one Problem per violation, sorted by line and column."""
    fallback = getattr(data, "location", Location(path, 1, 1))
    # Only the config has numbers; in desired files every value is text, so .nan is a type error there.
    problems = (
        [Problem(locate(data, at, fallback), message, "schema-finite") for at, message in _non_finite(data, ())]
        if name == "config"
        else []
    )
    for error in _validator(name).iter_errors(data):
        if problems and isinstance(error.instance, float) and not math.isfinite(error.instance):
            continue  # reported above, in plain words
        findings = (
            _unknown_keys(error)
            if error.validator == "additionalProperties" and isinstance(error.instance, dict)
            else []
        )
        for error_path, message, at_key in findings or [_describe(error, data)]:
            where = locate_key if at_key else locate
            problems.append(Problem(where(data, error_path, fallback), message, f"schema-{error.validator}"))
    return sorted(problems, key=lambda p: (p.location.line, p.location.column))


def _non_finite(data: Any, at: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    """Paths to YAML's ``.nan`` / ``.inf``: JSON Schema's "number" admits them, yet a limit of NaN
    compares false with everything and would silently switch a check off."""
    if isinstance(data, float) and not math.isfinite(data):
        where = ".".join(str(step) for step in at)
        return [(at, f"{where}: {_yaml_float(data)} is not a finite number; write a plain value such as 10")]
    if isinstance(data, dict):
        return [found for key, value in data.items() for found in _non_finite(value, (*at, key))]
    if isinstance(data, list):
        return [found for i, value in enumerate(data) for found in _non_finite(value, (*at, i))]
    return []


def _yaml_float(value: float) -> str:
    return ".nan" if math.isnan(value) else (".inf" if value > 0 else "-.inf")
