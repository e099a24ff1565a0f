"""numsync fmt: canonical form, every comment kept, same records before and after, idempotent; --check."""

from __future__ import annotations

import random
import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from numsync.cli import main
from numsync.core.desired import load_text
from numsync.core.fmt import FormatError, format_text

ROOT = Path(__file__).resolve().parents[1]

MESSY = textwrap.dedent("""
    # yaml-language-server: $schema=../numsync/schema/desired.schema.json
    group_id: ocp-qa   # the group
    defaults:
      locale: 'en-US'
      provider: twilio
    numbers:
      # header of the numbers: stays on top

      # 126 is the spare line
      "+12015550126": {}
      "+12015550124":
        miniapp_id: app.one
        note: |
          # this is text, not a comment
          second line
      # directly above 123
      "+1 201 555 0123":   # trailing comment on 123
        'note': it's "quoted"
        phone_number_set_id: us-east
        # inside 123, after its fields

      "+12015550125": {note: 'x', locale: en-GB}
      # after the last number
    """).lstrip()

CANONICAL = textwrap.dedent("""
    # yaml-language-server: $schema=../numsync/schema/desired.schema.json
    group_id: "ocp-qa"   # the group
    defaults:
      locale: "en-US"
      provider: "twilio"
    numbers:
      # header of the numbers: stays on top

      # directly above 123
      "+12015550123":   # trailing comment on 123
        note: "it's \\"quoted\\""
        phone_number_set_id: "us-east"
        # inside 123, after its fields
      "+12015550124":
        miniapp_id: "app.one"
        note: |
          # this is text, not a comment
          second line
      "+12015550125": {note: "x", locale: "en-GB"}

      # 126 is the spare line
      "+12015550126": {}
      # after the last number
    """).lstrip()


def comments(text: str) -> list[str]:
    """Every comment of a fixture (they have no '#' inside values), with its indentation."""
    return sorted(
        line[line.index("#") :] if not line.lstrip().startswith("#") else line
        for line in text.splitlines()
        if "#" in line
    )


def records(text: str) -> dict:
    state, problems = load_text(text, "a.yaml")
    assert problems == []
    return state.records


def test_canonical_form() -> None:
    assert format_text(MESSY) == CANONICAL


def test_same_records_every_comment_kept_and_idempotent() -> None:
    formatted = format_text(MESSY)
    assert records(formatted) == records(MESSY)
    assert comments(formatted) == comments(MESSY)
    assert format_text(formatted) == formatted


def test_a_comment_inside_a_block_scalar_stays_text() -> None:
    formatted = format_text(MESSY)
    assert records(formatted)["+12015550124"].fields  # unchanged note, checked by records equality above
    block = formatted.index("note: |")
    assert formatted[block:].startswith("note: |\n      # this is text, not a comment\n      second line\n")


def test_shuffled_bundled_file_comes_back_sorted_with_its_comments() -> None:
    original = (ROOT / "desired" / "uk-care.yaml").read_text("utf-8")
    head, body = original.split("numbers:\n")
    entries = re.split(r"(?m)^(?=  \")", body)[1:]
    rng = random.Random(7)
    commented = [f"  # comment for entry {i}\n{entry}" for i, entry in enumerate(entries)]
    rng.shuffle(commented)
    shuffled = head + "numbers:\n" + "".join(commented)
    formatted = format_text(shuffled)
    assert records(formatted) == records(original)
    assert comments(formatted) == comments(shuffled)
    numbers = re.findall(r'(?m)^  "(\+\d+)":', formatted)
    assert numbers == sorted(numbers) and len(numbers) == len(entries)
    for i, entry in enumerate(entries):  # each comment still sits directly above its entry
        assert f"  # comment for entry {i}\n{entry}" in formatted
    assert format_text(formatted) == formatted


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "desired").glob("*.yaml")))
def test_the_bundled_files_are_canonical(name: str) -> None:
    text = (ROOT / "desired" / name).read_text("utf-8")
    assert format_text(text) == text


def test_crlf_line_ends_are_kept_and_a_final_line_break_added() -> None:
    text = 'group_id: ocp-qa\r\nnumbers:\r\n  "+12015550124": {}\r\n  # one two three\r\n  "+12015550123": {note: x}'
    formatted = format_text(text)
    assert (
        formatted
        == 'group_id: "ocp-qa"\r\nnumbers:\r\n  # one two three\r\n  "+12015550123": {note: "x"}\r\n  "+12015550124": {}\r\n'
    )


def test_flow_style_numbers_are_quoted_but_keep_their_order() -> None:
    text = 'group_id: ocp-qa\nnumbers: {"+12015550124": {}, "+12015550123": {note: x}}\n'
    formatted = format_text(text)
    assert formatted == 'group_id: "ocp-qa"\nnumbers: {"+12015550124": {}, "+12015550123": {note: "x"}}\n'
    assert records(formatted) == records(text)


# Anchors and aliases are refused by the loader (README, "Desired YAML"), so fmt leaves such a
# file alone; this test used to pin that sorting kept an alias after its anchor.
def test_a_file_with_an_anchor_is_not_formatted_and_says_where() -> None:
    text = textwrap.dedent("""
        group_id: ocp-qa
        numbers:
          "+12015550125": &common {locale: en-US, note: shared}
          "+12015550123":
            <<: *common
            note: own
        """).lstrip()
    with pytest.raises(FormatError) as info:
        format_text(text, "a.yaml")
    [problem] = info.value.problems
    assert str(problem).startswith("a.yaml:3:19: YAML anchors and aliases are not allowed (anchor &common")


def test_values_that_are_not_strings_and_block_scalars_are_left_alone() -> None:
    text = textwrap.dedent("""
        group_id: ocp-qa
        numbers:
          "+12011234567":
            allow_possible: true
            note: >
              folded
              text
            application_tag: ~
        """).lstrip()
    formatted = format_text(text)
    assert formatted == text.replace("group_id: ocp-qa", 'group_id: "ocp-qa"')
    assert records(formatted) == records(text)


def test_a_file_with_problems_is_refused() -> None:
    with pytest.raises(FormatError) as info:
        format_text('group_id: ocp-qa\nnumbers:\n  "+12015550124": {note: no}\n  +12015550123: {}\n', "a.yaml")
    assert [(p.location.line, p.check) for p in info.value.problems] == [(3, "schema-type"), (4, "quote-number")]


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "numsync.yaml").write_text(
        "environments:\n  prod:\n    region: EU1\n    desired: desired\n    groups: {ocp-qa: {}, uk-care: {}}\n",
        encoding="utf-8",
    )
    (tmp_path / "desired").mkdir()
    (tmp_path / "desired" / "ocp-qa.yaml").write_text(MESSY, encoding="utf-8")
    (tmp_path / "desired" / "uk-care.yaml").write_text(
        (ROOT / "desired" / "uk-care.yaml").read_text("utf-8"), encoding="utf-8"
    )
    return tmp_path


def fmt(*args: str) -> Result:
    return CliRunner().invoke(main, ["fmt", *args], catch_exceptions=False)


def test_check_lists_files_that_would_change_and_changes_nothing(project: Path) -> None:
    result = fmt("--check")
    assert result.exit_code == 1
    assert result.stdout == "would reformat desired/ocp-qa.yaml\n"
    assert "1 file(s) would be reformatted, 1 already formatted" in result.stderr
    assert (project / "desired" / "ocp-qa.yaml").read_text("utf-8") == MESSY


def test_fmt_rewrites_then_check_passes(project: Path) -> None:
    result = fmt()
    assert result.exit_code == 0
    assert result.stdout == "reformatted desired/ocp-qa.yaml\n"
    assert (project / "desired" / "ocp-qa.yaml").read_text("utf-8") == CANONICAL
    again = fmt("--check")
    assert again.exit_code == 0
    assert again.stdout == ""


def test_fmt_takes_files_and_folders(project: Path) -> None:
    assert fmt("--check", "desired/uk-care.yaml").exit_code == 0
    assert fmt("--check", "desired/ocp-qa.yaml").exit_code == 1
    assert fmt("--check", "desired").stdout == "would reformat desired/ocp-qa.yaml\n"


def test_fmt_refuses_a_file_with_problems_and_prints_them(project: Path) -> None:
    broken = 'group_id: ocp-qa\nnumbers:\n  "+12015550124": {}\n  "+1201555012": {}\n'
    (project / "desired" / "ocp-qa.yaml").write_text(broken, encoding="utf-8")
    result = fmt()
    assert result.exit_code == 1
    assert "desired/ocp-qa.yaml:4:3: +1201555012 is not a valid phone number" in result.stderr
    assert "not formatted: desired/ocp-qa.yaml has 1 problem(s)" in result.stderr
    assert (project / "desired" / "ocp-qa.yaml").read_text("utf-8") == broken


def _random_file(rng: random.Random) -> str:
    """A desired file with numbers in random order and random quoting, comments and blank lines."""

    def quoted(value: str) -> str:
        return rng.choice([value, f"'{value}'", f'"{value}"'])

    lines = [rng.choice(["", "# top\n"]), f"group_id: {quoted('ocp-qa')}\n", "numbers:\n"]
    numbers = rng.sample(range(100, 200), rng.randint(2, 12))
    for i, n in enumerate(numbers):
        if rng.random() < 0.3:
            lines.append("\n")
        if rng.random() < 0.4:
            lines.append(f"  # above {i}\n")
        key = rng.choice([f'"+12015550{n}"', f'"+1 201 555 0{n}"', f"'+12015550{n}'"])
        trailing = f"  # trailing {i}" if rng.random() < 0.3 else ""
        style = rng.randrange(3)
        if style == 0:
            lines.append(f"  {key}: {{}}{trailing}\n")
        elif style == 1:
            lines.append(f"  {key}: {{locale: {quoted('en-US')}, note: {quoted(f'n {i}')}}}{trailing}\n")
        else:
            lines.append(f"  {key}:{trailing}\n    locale: {quoted('en-GB')}\n")
            if rng.random() < 0.5:
                lines.append(f"    note: |\n      # text {i}\n      more\n")
            if rng.random() < 0.4:
                lines.append(f"    # inner {i}\n")
    if rng.random() < 0.5:
        lines.append("  # the end\n")
    return "".join(lines)


@pytest.mark.parametrize("seed", range(40))
def test_random_files_keep_records_and_comments_and_come_out_sorted(seed: int) -> None:
    text = _random_file(random.Random(seed))
    formatted = format_text(text)
    assert records(formatted) == records(text)
    assert comments(formatted) == comments(text)
    keys = re.findall(r'(?m)^  "(\+\d+)":', formatted)
    assert keys == sorted(keys) and len(keys) == len(records(text))
    assert "'" not in formatted.replace("it's", "")
    assert format_text(formatted) == formatted
    for i in range(12):  # an inner comment stays inside its own entry
        if f"# inner {i}\n" in formatted:
            assert re.search(
                rf'(?m)^    locale: "en-GB"\n(    note: \|\n      # text {i}\n      more\n)?    # inner {i}\n',
                formatted,
            )


# --------------------------------------------------------------------------- locale case (issue 18, item 9)


def test_locales_are_written_in_canonical_case_wherever_they_stand() -> None:
    text = textwrap.dedent(
        """\
        group_id: ocp-qa
        defaults:
          locale: en-gb   # British English
        numbers:
          "+12015550124": {locale: 'en_us'}
          "+12015550123":
            locale: "EN-us"
            note: en-gb
        """
    )
    formatted = format_text(text)
    assert 'locale: "en-GB"   # British English' in formatted
    assert '"+12015550124": {locale: "en-US"}' in formatted
    assert 'locale: "en-US"\n' in formatted
    assert 'note: "en-gb"' in formatted  # only locale values: a note says what it says
    assert load_text(formatted, "f")[0].records == load_text(text, "f")[0].records
    assert format_text(formatted) == formatted
