"""The schema fast path in desired.py: leaving plainly valid numbers out of jsonschema changes no finding."""

from __future__ import annotations

import copy
import itertools

import pytest

from numsync.core import desired, yamlsrc
from numsync.core import schema as schemacheck
from numsync.core.desired import number_rules, schema_view
from numsync.core.schema import schema_problems

SPECS = [
    "{}",
    "null",
    "",
    "{locale: en-US, note: hi}",
    "{miniapp_id: app, locale: en-US, phone_number_set_id: s, application_tag: t, provider: p, allow_possible: true}",
    "{miniapp_id: ''}",  # minLength 1
    "{miniapp_id: null, note: null}",
    "{note: no}",  # a boolean where text is wanted
    "{note: 12}",
    "{note: [a]}",
    "{allow_possible: 'yes'}",
    "{colour: red}",
    "{1: x}",
    "[a, b]",
    "text",
    "{note: {a: b}}",
]


def _document(specs: list[str]) -> str:
    lines = ["group_id: ocp-qa", "defaults: {note: no, colour: x}", "numbers:"]
    lines += [f'  "+1201555{i:04d}": {spec}' for i, spec in enumerate(specs)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("order", range(6))
def test_the_view_gives_exactly_the_same_problems(order: int) -> None:
    specs = list(itertools.islice(itertools.cycle(SPECS), order, order + 3 * len(SPECS)))
    data, _ = yamlsrc.load(_document(specs), "a.yaml")
    full = schema_problems("desired", data, "a.yaml")
    view = schema_view(data)
    assert len(view["numbers"]) < len(data["numbers"])  # the fast path did leave entries out
    assert schema_problems("desired", view, "a.yaml") == full
    assert len(full) >= 9 * 3


def test_unknown_schema_keywords_switch_the_fast_path_off(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = copy.deepcopy(schemacheck.load_schema("desired"))
    schema["$defs"]["fields"]["note"]["maxLength"] = 10
    monkeypatch.setattr(desired, "load_schema", lambda name: schema)
    number_rules.cache_clear()
    try:
        assert number_rules() is None
        data, _ = yamlsrc.load(_document(["{note: hi}"]), "a.yaml")
        assert schema_view(data) is data
    finally:
        monkeypatch.undo()
        number_rules.cache_clear()
    assert number_rules() is not None


def test_the_rules_follow_the_shipped_schema() -> None:
    rules = number_rules()
    number = schemacheck.load_schema("desired")["$defs"]["number"]
    assert rules is not None and set(rules) == set(number["properties"])
    assert rules["miniapp_id"][1] == 1 and rules["allow_possible"][0] == (bool,)
