"""Desired YAML → desired state: every problem reported, each at file:line:column; the happy path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from numsync.core import yamlsrc
from numsync.core.desired import DesiredError, DesiredState, load_desired
from numsync.core.model import Field, NumberRecord
from numsync.core.yamlsrc import Problem

APP = "3781bcc1-7c76-439b-ba26-05d22217b316.SND_billing_flow.Flow.ocp-qa@SND_billing_flow.ocp-qa"


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def desired(tmp_path: Path) -> Path:
    folder = tmp_path / "desired"
    folder.mkdir()
    return folder


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8", newline="")
    return path


def load(folder: Path, **kwargs) -> DesiredState:
    return load_desired(folder, display_root=folder.parent, **kwargs)


def problems_of(folder: Path, **kwargs) -> list[Problem]:
    with pytest.raises(DesiredError) as info:
        load(folder, **kwargs)
    problems = info.value.problems
    assert problems, "DesiredError without problems"
    assert str(len(problems)) in str(info.value)
    return problems


def only(problems: list[Problem], check: str) -> Problem:
    found = [p for p in problems if p.check == check]
    assert len(found) == 1, f"expected one {check!r} problem, got {[str(p) for p in problems]}"
    return found[0]


def at(problem: Problem) -> tuple[str, int, int]:
    return problem.location.path, problem.location.line, problem.location.column


# The C loader (libyaml) marks plain scalars with style '' where the pure-Python loader uses None;
# Both loaders must give the same findings: libyaml marks plain scalars differently.
_LOADERS = [pytest.param(yaml.SafeLoader, id="python-loader")]
if hasattr(yaml, "CSafeLoader"):
    _LOADERS.append(pytest.param(yaml.CSafeLoader, id="libyaml-loader"))


@pytest.fixture(params=_LOADERS)
def loader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> type:
    """Run a test once with each YAML loader yamlsrc may end up using."""
    monkeypatch.setattr(yamlsrc, "_Loader", request.param)
    return request.param


# --------------------------------------------------------------------------- YAML level


def test_yaml_syntax_error_has_line_and_column(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123": note: x
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "yaml-syntax"
    assert "YAML syntax error" in problem.message
    assert "mapping values are not allowed" in problem.message
    assert at(problem) == ("desired/a.yaml", 3, 23)


def test_duplicate_number_key(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123": {note: first}
          "+12015550124": {}
          "+12015550123": {note: second}
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "duplicate-key"
    assert "duplicate key '+12015550123'" in problem.message
    assert "first at line 3" in problem.message
    assert at(problem) == ("desired/a.yaml", 5, 3)


def test_duplicate_key_inside_a_number(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123":
            note: first
            locale: en-US
            note: second
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "duplicate-key"
    assert "duplicate key 'note'" in problem.message
    assert "first at line 4" in problem.message
    assert at(problem) == ("desired/a.yaml", 6, 5)


# --------------------------------------------------------------------------- duplicates of numbers


def test_duplicate_after_normalization_within_a_file(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123": {}
          "+1 (201) 555-0123": {note: again}
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "duplicate-number"
    assert "'+1 (201) 555-0123' is +12015550123 once normalized" in problem.message
    assert "desired/a.yaml:3:3" in problem.message  # the first one
    assert at(problem) == ("desired/a.yaml", 4, 3)


def test_duplicate_after_normalization_across_two_files(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123": {}
        """,
    )
    write(
        desired,
        "b.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550124": {}
          "+1 (201) 555-0123": {}
        """,
    )
    problems = problems_of(desired)
    dup = only(problems, "duplicate-number")
    assert "+12015550123 once normalized" in dup.message
    assert "desired/a.yaml:3:3" in dup.message
    assert at(dup) == ("desired/b.yaml", 4, 3)
    group = only(problems, "duplicate-group")  # the same group in two files is a problem of its own
    assert "desired/a.yaml" in group.message
    assert at(group) == ("desired/b.yaml", 1, 11)
    assert len(problems) == 2


def test_number_in_two_groups(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123": {}
        """,
    )
    write(
        desired,
        "b.yaml",
        """
        group_id: sales
        numbers:
          "+12015550124": {}
          "+12015550123": {}
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "duplicate-number"
    assert "listed in two groups" in problem.message
    assert "'ocp-qa' at desired/a.yaml:3:3" in problem.message
    assert "'sales'" in problem.message
    assert at(problem) == ("desired/b.yaml", 4, 3)


# --------------------------------------------------------------------------- values YAML retyped


def test_unquoted_number_key_says_quote_this_value(desired: Path, loader: type) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550124": {}
          +12015550123: {}
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "quote-number"
    assert "quote this value" in problem.message
    assert '"+12015550123"' in problem.message
    assert "an integer" in problem.message
    assert at(problem) == ("desired/a.yaml", 4, 3)


@pytest.mark.parametrize(
    ("key", "raw", "type_name"),
    [
        ("note", "no", "a boolean"),
        ("application_tag", "12:30", "an integer"),
        ("phone_number_set_id", "0123", "an integer"),
        ("locale", "yes", "a boolean"),
    ],
)
def test_retyped_value_says_quote_this_value(desired: Path, loader: type, key: str, raw: str, type_name: str) -> None:
    write(
        desired,
        "a.yaml",
        f"""
        group_id: ocp-qa
        numbers:
          "+12015550123":
            {key}: {raw}
        """,
    )
    [problem] = problems_of(desired)
    assert f"YAML read {raw!r} as {type_name}" in problem.message
    assert f'quote this value: "{raw}"' in problem.message
    assert at(problem) == ("desired/a.yaml", 4, 7 + len(key))


def test_retyped_value_in_defaults_says_quote_this_value(desired: Path, loader: type) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        defaults:
          note: off
        numbers:
          "+12015550123": {}
        """,
    )
    [problem] = problems_of(desired)
    assert "YAML read 'off' as a boolean" in problem.message
    assert at(problem) == ("desired/a.yaml", 3, 9)


def test_retyped_value_reported_as_a_type_error_whatever_the_loader(desired: Path) -> None:
    """Independent of the hint: a YAML boolean note is refused at its line (the loader in use)."""
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123":
            note: no
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "schema-type"
    assert at(problem) == ("desired/a.yaml", 4, 11)


# --------------------------------------------------------------------------- schema


def test_unknown_key_in_a_number_suggests_the_right_one(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123":
            locale: en-US
            minapp_id: app
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "schema-additionalProperties"
    assert "unknown key 'minapp_id'" in problem.message
    assert "did you mean 'miniapp_id'?" in problem.message
    assert at(problem) == ("desired/a.yaml", 5, 5)


def test_unknown_top_level_key_suggests_the_right_one(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        defualts:
          locale: en-US
        numbers:
          "+12015550123": {}
        """,
    )
    [problem] = problems_of(desired)
    assert "unknown key 'defualts'; did you mean 'defaults'?" in problem.message
    assert at(problem) == ("desired/a.yaml", 2, 1)


def test_unknown_key_without_a_close_match_lists_allowed_keys(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123": {colour: red}
        """,
    )
    [problem] = problems_of(desired)
    assert "unknown key 'colour'" in problem.message
    assert "allowed keys:" in problem.message and "miniapp_id" in problem.message
    assert at(problem)[1] == 3


def test_wrong_type_list_for_note(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123":
            note: [first, second]
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "schema-type"
    assert "note" in problem.message
    assert problem.message.endswith('note: ["first", "second"] is not text')
    assert at(problem) == ("desired/a.yaml", 4, 11)


def test_missing_group_id_is_reported(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        numbers:
          "+12015550123": {}
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "schema-required"
    assert "group_id" in problem.message
    assert problem.location.path == "desired/a.yaml"


def test_a_file_that_is_not_a_mapping(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        - "+12015550123"
        """,
    )
    [problem] = problems_of(desired)
    assert "must be a mapping" in problem.message
    assert at(problem) == ("desired/a.yaml", 1, 1)


# --------------------------------------------------------------------------- numbers


def test_number_not_in_e164(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "12015550123": {}
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "number-format"
    assert "'12015550123' is not in E.164" in problem.message
    assert "+" in problem.message
    assert at(problem) == ("desired/a.yaml", 3, 3)


@pytest.mark.parametrize("number", ["+1201555012", "+4420794609581234"])
def test_number_invalid_for_its_region(desired: Path, number: str) -> None:
    write(
        desired,
        "a.yaml",
        f"""
        group_id: ocp-qa
        numbers:
          "+12015550123": {{}}
          "{number}": {{}}
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "number-invalid"
    assert f"{number} is not a valid phone number" in problem.message
    assert at(problem) == ("desired/a.yaml", 4, 3)


def test_unparseable_number(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+999123": {}
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "number-format"
    assert "'+999123' is not a phone number" in problem.message
    assert at(problem) == ("desired/a.yaml", 3, 3)


@pytest.mark.parametrize("key", ["+12015550123 ext. 5", "+12015550123;ext=5"])
def test_number_with_an_extension(desired: Path, key: str) -> None:
    write(
        desired,
        "a.yaml",
        f"""
        group_id: ocp-qa
        numbers:
          "+12015550124": {{}}
          "{key}": {{}}
        """,
    )
    problems = problems_of(desired)
    problem = only(problems, "number-extension")
    assert "has an extension" in problem.message
    assert at(problem) == ("desired/a.yaml", 4, 3)


def test_possible_but_not_valid_number_is_an_error(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12011234567": {note: new range}
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "number-invalid"
    assert "possible but not a valid number" in problem.message
    assert "allow_possible: true" in problem.message
    assert at(problem) == ("desired/a.yaml", 3, 3)


def test_possible_but_not_valid_number_accepted_with_allow_possible(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12011234567": {note: new range, allow_possible: true}
        """,
    )
    state = load(desired)
    assert state.records["+12011234567"] == NumberRecord("+12011234567", "ocp-qa", {Field.NOTE: "new range"})


def test_allow_possible_does_not_rescue_an_impossible_number(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+1201555012": {allow_possible: true}
        """,
    )
    [problem] = problems_of(desired)
    assert "not a valid phone number" in problem.message


# --------------------------------------------------------------------------- locale, miniapp, groups


def one_locale(folder: Path, locale: str) -> Path:
    return write(
        folder,
        "a.yaml",
        f"""
        group_id: ocp-qa
        numbers:
          "+12015550123":
            locale: "{locale}"
        """,
    )


@pytest.mark.parametrize(
    ("locale", "message"),
    [
        *[
            (tag, f"locale {tag!r} is not a tag numsync accepts: write language[-Script][-REGION]")
            for tag in ("english", "en-USA", "e", "en US")
        ],
        ("eb-US", "language 'eb' is not in the IANA language subtag registry"),
        ("en-UX", "region 'UX' is not in the IANA language subtag registry"),
        ("en-UK", "region 'UK' is not in the IANA language subtag registry"),  # the registry says GB
        ("eng-US", "language 'eng' is not in the IANA language subtag registry"),  # en is the registered subtag
        ("en-999", "region '999' is not in the IANA language subtag registry"),
        ("zh-Hxnt-TW", "script 'Hxnt' is not in the IANA language subtag registry"),
    ],
)
def test_a_bad_locale_is_refused_at_its_value(desired: Path, locale: str, message: str) -> None:
    one_locale(desired, locale)
    [problem] = problems_of(desired)
    assert problem.check == "locale-format" and message in problem.message and repr(locale) in problem.message
    assert at(problem) == ("desired/a.yaml", 4, 13)


@pytest.mark.parametrize("locale", ["en-US", "en_gb", "zh-Hant-TW", "es-419", "fil-PH", "sr-Latn-RS", "de"])
def test_registered_locales_are_accepted(desired: Path, locale: str) -> None:
    one_locale(desired, locale)
    assert load(desired).records["+12015550123"].get(Field.LOCALE) is not None


def test_a_bad_default_is_reported_once_at_the_defaults(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        defaults: {locale: english, note: "a\\u0000nul"}
        numbers:
          "+12015550123": {}
          "+12015550124": {}
          "+12015550125": {locale: en-UK}
        """,
    )
    problems = problems_of(desired)
    assert [(p.check, at(p)) for p in problems] == [
        ("locale-format", ("desired/a.yaml", 2, 20)),
        ("text-value", ("desired/a.yaml", 2, 35)),
        ("locale-format", ("desired/a.yaml", 6, 28)),
    ], problems
    assert problems[1].message.startswith("note in defaults: ")
    assert "'en-UK': region 'UK'" in problems[2].message


def test_miniapp_without_locale(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        f"""
        group_id: ocp-qa
        numbers:
          "+12015550123":
            miniapp_id: "{APP}"
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "locale-required"
    assert "+12015550123 has a miniapp_id but no locale" in problem.message
    assert at(problem) == ("desired/a.yaml", 3, 3)


def test_miniapp_from_defaults_with_locale_cleared_needs_a_locale(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        f"""
        group_id: ocp-qa
        defaults:
          miniapp_id: "{APP}"
          locale: en-US
        numbers:
          "+12015550123": {{}}
          "+12015550124": {{locale: null}}
        """,
    )
    [problem] = problems_of(desired)
    assert problem.check == "locale-required"
    assert "+12015550124" in problem.message
    assert problem.location.line == 7


def test_group_not_managed(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: sales
        numbers:
          "+12015550123": {}
        """,
    )
    [problem] = problems_of(desired, managed_groups=["ocp-qa", "uk-care"])
    assert problem.check == "unmanaged-group"
    assert "group 'sales' is not managed" in problem.message
    assert at(problem) == ("desired/a.yaml", 1, 11)
    # without managed_groups nothing is checked
    assert set(load(desired).records) == {"+12015550123"}


# --------------------------------------------------------------------------- empty


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing here yet\n", "---\n"])
def test_empty_file(desired: Path, text: str) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123": {}
        """,
    )
    (desired / "b.yaml").write_text(text, encoding="utf-8")
    [problem] = problems_of(desired)
    assert problem.check == "desired-empty"
    assert "empty" in problem.message
    assert at(problem) == ("desired/b.yaml", 1, 1)


def test_empty_folder(desired: Path) -> None:
    (desired / "README.md").write_text("not YAML\n")
    (desired / ".hidden").mkdir()
    write(desired, ".hidden/a.yaml", "group_id: x\nnumbers: {}\n")
    [problem] = problems_of(desired)
    assert problem.check == "desired-empty"
    assert "no desired YAML files" in problem.message
    assert "delete everything" in problem.message


def test_missing_folder(tmp_path: Path) -> None:
    [problem] = problems_of(tmp_path / "nope")
    assert problem.check == "desired-missing"
    assert "does not exist" in problem.message


# --------------------------------------------------------------------------- all problems at once


def test_several_problems_are_all_reported(desired: Path) -> None:
    write(
        desired,
        "a_schema.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550101":
            minapp_id: x
          "+12015550102":
            note: [a]
          "+12015550101": {}
        """,
    )
    write(
        desired,
        "b_numbers.yaml",
        f"""
        group_id: sales
        numbers:
          "12015550103": {{}}
          "+1201555010": {{}}
          "+12011234567": {{}}
          "+12015550104": {{locale: english}}
          "+12015550105": {{miniapp_id: "{APP}"}}
          "+12015550106": {{}}
          "+1 201 555 0106": {{}}
        """,
    )
    write(
        desired,
        "c_group.yaml",
        """
        group_id: elsewhere
        numbers:
          "+12015550107": {}
        """,
    )
    write(
        desired,
        "d_syntax.yaml",
        """
        group_id: ocp-qa
          numbers: [
        """,
    )
    write(desired, "e_empty.yml", "")
    problems = problems_of(desired, managed_groups=["ocp-qa", "sales"])
    found = [(p.location.path, p.location.line, p.check) for p in problems]
    assert found == [
        ("desired/a_schema.yaml", 4, "schema-additionalProperties"),
        ("desired/a_schema.yaml", 6, "schema-type"),
        ("desired/a_schema.yaml", 7, "duplicate-key"),
        ("desired/b_numbers.yaml", 3, "number-format"),
        ("desired/b_numbers.yaml", 4, "number-invalid"),
        ("desired/b_numbers.yaml", 5, "number-invalid"),
        ("desired/b_numbers.yaml", 6, "locale-format"),
        ("desired/b_numbers.yaml", 7, "locale-required"),
        ("desired/b_numbers.yaml", 9, "duplicate-number"),
        ("desired/c_group.yaml", 1, "unmanaged-group"),
        ("desired/d_syntax.yaml", 2, "yaml-syntax"),
        ("desired/e_empty.yml", 1, "desired-empty"),
    ]
    assert len(problems) == 12


def test_schema_and_semantic_problems_in_one_file_are_all_reported(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: sales
        numbers:
          "+12015550101": {minapp_id: x}
          "+1201555010": {}
        """,
    )
    problems = problems_of(desired, managed_groups=["ocp-qa"])
    assert {(p.location.line, p.check) for p in problems} == {
        (1, "unmanaged-group"),
        (3, "schema-additionalProperties"),
        (4, "number-invalid"),
    }


# --------------------------------------------------------------------------- happy path


def test_happy_path_defaults_nulls_providers_locales_notes(desired: Path) -> None:
    write(
        desired,
        "ocp-qa.yaml",
        f"""
        group_id: ocp-qa
        defaults:
          miniapp_id: "{APP}"
          locale: en-us
          phone_number_set_id: us-east
          note: Default note
          provider: twilio
        numbers:
          "+12015550123":
            note: "line one\\r\\nline two\\r\\n"
          "+1 (201) 555-0124":
            note: null
            miniapp_id: null
            provider: vonage
            locale: EN_gb
          "+12015550125": {{}}
          "+12015550126":
        """,
    )
    write(
        desired,
        "sub/sales.yml",
        """
        group_id: sales
        numbers:
          "+442079460958":
            application_tag: "  support  "
            locale: zh-hant-tw
        """,
    )
    state = load(desired, managed_groups=["ocp-qa", "sales"], default_provider="bandwidth")
    base = {
        Field.MINIAPP_ID: APP,
        Field.LOCALE: "en-US",
        Field.PHONE_NUMBER_SET_ID: "us-east",
        Field.NOTE: "Default note",
    }
    assert state.records == {
        "+12015550123": NumberRecord("+12015550123", "ocp-qa", {**base, Field.NOTE: "line one\nline two"}, "twilio"),
        "+12015550124": NumberRecord(
            "+12015550124", "ocp-qa", {Field.LOCALE: "en-GB", Field.PHONE_NUMBER_SET_ID: "us-east"}, "vonage"
        ),
        "+12015550125": NumberRecord("+12015550125", "ocp-qa", base, "twilio"),
        "+12015550126": NumberRecord("+12015550126", "ocp-qa", base, "twilio"),
        "+442079460958": NumberRecord(
            "+442079460958", "sales", {Field.APPLICATION_TAG: "support", Field.LOCALE: "zh-Hant-TW"}, "bandwidth"
        ),
    }
    assert {n: (loc.path, loc.line, loc.column) for n, loc in state.locations.items()} == {
        "+12015550123": ("desired/ocp-qa.yaml", 9, 3),
        "+12015550124": ("desired/ocp-qa.yaml", 11, 3),
        "+12015550125": ("desired/ocp-qa.yaml", 16, 3),
        "+12015550126": ("desired/ocp-qa.yaml", 17, 3),
        "+442079460958": ("desired/sub/sales.yml", 3, 3),
    }
    assert state.groups == {"ocp-qa": Path("desired/ocp-qa.yaml"), "sales": Path("desired/sub/sales.yml")}
    assert state.files == [desired / "ocp-qa.yaml", desired / "sub" / "sales.yml"]


@pytest.mark.parametrize(
    ("number_provider", "defaults_provider", "env_provider", "expected"),
    [
        ("vonage", "twilio", "bandwidth", "vonage"),
        (None, "twilio", "bandwidth", "twilio"),
        (None, None, "bandwidth", "bandwidth"),
        (None, None, None, None),
        ("vonage", None, None, "vonage"),
    ],
)
def test_provider_resolution_order(
    desired: Path,
    number_provider: str | None,
    defaults_provider: str | None,
    env_provider: str | None,
    expected: str | None,
) -> None:
    defaults = f"defaults: {{provider: {defaults_provider}}}\n" if defaults_provider else ""
    spec = f"{{provider: {number_provider}}}" if number_provider else "{}"
    (desired / "a.yaml").write_text(
        f'group_id: ocp-qa\n{defaults}numbers:\n  "+12015550123": {spec}\n', encoding="utf-8"
    )
    state = load(desired, default_provider=env_provider)
    assert state.records["+12015550123"].provider == expected


def test_crlf_file_and_crlf_note(desired: Path) -> None:
    text = 'group_id: ocp-qa\r\nnumbers:\r\n  "+12015550123":\r\n    note: |\r\n      first\r\n      second\r\n'
    (desired / "a.yaml").write_bytes(text.encode("utf-8"))
    state = load(desired)
    assert state.records["+12015550123"].get(Field.NOTE) == "first\nsecond"
    assert state.locations["+12015550123"].line == 3


def test_group_id_is_stripped(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: "  ocp-qa "
        numbers:
          "+12015550123": {}
        """,
    )
    state = load(desired, managed_groups=["ocp-qa"])
    assert state.records["+12015550123"].group_id == "ocp-qa"
    assert list(state.groups) == ["ocp-qa"]


# Anchors, aliases and merge keys are refused (README, "Desired YAML"): nested aliases expand
# exponentially, and defaults: is how numbers share values. These two tests used to pin how a
# merge key was resolved.
def test_an_anchor_and_its_alias_are_refused_at_the_anchor(desired: Path, loader: type) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550123": &common {locale: en-US, note: shared}
          "+12015550124":
            <<: *common
            application_tag: own
        """,
    )
    [problem] = problems_of(desired)
    assert (problem.check, at(problem)) == ("yaml-anchor", ("desired/a.yaml", 3, 19))
    assert "anchors and aliases are not allowed (anchor &common, and 1 more in this file)" in problem.message
    assert "defaults" in problem.message


def test_an_alias_of_an_undefined_anchor_is_a_syntax_error(desired: Path) -> None:
    write(desired, "a.yaml", 'group_id: ocp-qa\nnumbers:\n  "+12015550124": *common\n')
    [problem] = problems_of(desired)
    assert problem.check == "yaml-syntax" and at(problem)[:2] == ("desired/a.yaml", 3)


def test_a_merge_key_with_an_inline_mapping_is_refused_at_the_key(desired: Path, loader: type) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550124":
            <<: {locale: en-US}
            note: own
        """,
    )
    [problem] = problems_of(desired)
    assert (problem.check, at(problem)) == ("yaml-merge", ("desired/a.yaml", 4, 5))
    assert "merge keys (<<) are not allowed" in problem.message


def test_a_quoted_merge_key_is_text_and_an_ampersand_in_a_value_is_no_anchor(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        """
        group_id: ocp-qa
        numbers:
          "+12015550124": {note: "R&D * 2", application_tag: A&B*}
        """,
    )
    assert load(desired).records["+12015550124"].fields == {Field.NOTE: "R&D * 2", Field.APPLICATION_TAG: "A&B*"}
    data, problems = yamlsrc.load('"<<": x\n', "x.yaml")
    assert (dict(data), problems) == ({"<<": "x"}, [])


def test_an_alias_bomb_is_refused_before_it_expands(desired: Path) -> None:
    """Nine levels of nine aliases would be 9**9 strings (gigabytes) if built; it fails at once."""
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    write(desired, "a.yaml", "group_id: ocp-qa\n" + "\n".join(levels) + "\nnumbers: {}\n")
    [problem] = problems_of(desired)
    assert (problem.check, at(problem)) == ("yaml-anchor", ("desired/a.yaml", 2, 5))
    assert "(anchor &a0, and 80 more in this file)" in problem.message


def test_a_blank_or_mistyped_locale_beside_a_miniapp_is_reported_once_at_the_locale(desired: Path) -> None:
    write(
        desired,
        "a.yaml",
        f"""
        group_id: ocp-qa
        numbers:
          "+12015550123":
            miniapp_id: "{APP}"
            locale: 123
          "+12015550124":
            miniapp_id: "{APP}"
            locale: ""
        """,
    )
    problems = problems_of(desired)
    assert [(p.check, at(p)) for p in problems] == [
        ("schema-type", ("desired/a.yaml", 5, 13)),
        ("locale-required", ("desired/a.yaml", 8, 13)),
    ], problems
    assert (
        problems[1].message
        == "locale of +12015550124 is blank, but this number has a miniapp_id and attaching needs a LOCALE (e.g. en-US)"
    )
