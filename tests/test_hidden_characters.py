"""Invisible characters (bidi overrides and isolates, C0/C1 controls, line separators) in live values and in
desired files: refused where written raw in a file (a reviewer cannot see them), kept when written as a
visible escape, and written as escapes by import, so adopting live as it is plans no changes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml
from cli_workspace import run, workspace
from hypothesis import given, settings
from hypothesis import strategies as st

from numsync.config import ConfigError, load_config
from numsync.core.desired import load_desired
from numsync.core.model import Field
from numsync.core.policy import GroupPolicy
from numsync.core.yamlsrc import HIDDEN, double_quoted
from numsync.emulator.process import EmulatorProcess
from numsync.errors import DesiredError
from numsync.workflow.init import check_config_text, render_config

#: What a tenant's editors left in live values: an override, an isolate pair, a C1 CSI, a line separator, ESC.
NOTE = "Billing \u202eenilcc\u202c \u2066iso\u2069 c1\u009b31m line\u2028sep esc\x1b[0m"
TAG = "tag\u2067rtl\u2069"
RAW = ["\u202e", "\u202c", "\u2066", "\u2069", "\u2067", "\u009b", "\u2028", "\x1b"]


def test_double_quoted_shows_every_invisible_character_and_reads_back_exactly() -> None:
    text = double_quoted(NOTE)
    assert not HIDDEN.search(text) and text.isprintable()
    assert "\\u202e" in text and "\\u009b" in text and "\\u2028" in text and "\\u001b" in text
    assert yaml.safe_load(f"v: {text}")["v"] == NOTE
    assert double_quoted('plain "quoted" ü') == '"plain \\"quoted\\" ü"'  # printable text stays as it is
    assert double_quoted("\U000e0001") == '"\\U000e0001"'  # beyond the BMP: YAML's 8-digit escape


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.text())
def test_double_quoted_round_trips_any_text(value: str) -> None:
    text = double_quoted(value)
    assert HIDDEN.search(text) is None
    assert yaml.safe_load(f"v: {text}")["v"] == value


def _load(folder: Path) -> dict[str, str | None]:
    state = load_desired(folder, managed_groups={"g": GroupPolicy("g")}, repository=folder)
    return {n: r.get(Field.NOTE) for n, r in state.records.items()}


def test_an_escaped_invisible_character_in_a_desired_value_is_kept(tmp_path: Path) -> None:
    (tmp_path / "g.yaml").write_text(f'group_id: g\nnumbers:\n  "+12015550123":\n    note: {double_quoted(NOTE)}\n')
    assert _load(tmp_path) == {"+12015550123": NOTE}


@pytest.mark.parametrize("ch", RAW, ids=[f"U+{ord(c):04X}" for c in RAW])
def test_a_raw_invisible_character_in_a_desired_file_is_refused_where_it_stands(tmp_path: Path, ch: str) -> None:
    (tmp_path / "g.yaml").write_text(f'group_id: g\nnumbers:\n  "+12015550123":\n    note: "ab{ch}cd"\n')
    with pytest.raises(DesiredError) as info:
        _load(tmp_path)
    [problem] = info.value.problems
    assert problem.check == "hidden-character"
    assert (problem.location.line, problem.location.column) == (4, 14)
    assert f"U+{ord(ch):04X}" in problem.message
    assert f"write it as the escape \\u{ord(ch):04x} inside a double-quoted string" in problem.message


def test_a_raw_override_in_a_comment_is_refused_too(tmp_path: Path) -> None:
    # "Trojan Source": a comment that reads differently from what the file does
    (tmp_path / "g.yaml").write_text('group_id: g\n# ok \u202e}"\nnumbers: {}\n')
    with pytest.raises(DesiredError) as info:
        _load(tmp_path)
    assert [(p.check, p.location.line, p.location.column) for p in info.value.problems] == [("hidden-character", 2, 6)]


def test_a_raw_invisible_character_in_numsync_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "numsync.yaml"
    path.write_text("environments:\n  prod:\n    region: EU1\n    desired: d\n    groups: {g\u202e: {}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    [problem] = info.value.problems
    assert (problem.check, problem.location.line, problem.location.column) == ("hidden-character", 5, 15)


# -- import over real HTTP ---------------------------------------------------------------------------------------


def _hostile_live(emulator: EmulatorProcess) -> str:
    number = "+12015550999"
    row = {"NUMBER": number, "GROUP_ID": "ocp-qa", "NOTE": NOTE, "APPLICATION_TAG": TAG}
    httpx.post(f"{emulator.url}/_emulator/numbers", json=row).raise_for_status()
    return number


def _assert_escaped(text: str) -> None:
    assert not any(ch in text for ch in RAW), "a raw invisible character reached the file"
    assert "\\u202e" in text and "\\u2067" in text and "\\u009b" in text


def test_import_unmanaged_adopts_invisible_characters_as_escapes_and_plans_no_changes(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": True})
    assert run(config, "import").exit_code == 0
    number = _hostile_live(emulator)

    result = run(config, "import", "--unmanaged")

    assert result.exit_code == 0, result.output
    assert f"({number})" in result.output
    text = (tmp_path / "desired" / "ocp-qa.yaml").read_text("utf-8")
    _assert_escaped(text)
    assert run(config, "validate").exit_code == 0
    plan = run(config, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0 and "No changes" in plan.output, plan.output


def test_import_writes_invisible_characters_as_escapes_and_plans_no_changes(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": True})
    _hostile_live(emulator)

    result = run(config, "import")

    assert result.exit_code == 0, result.output
    _assert_escaped((tmp_path / "desired" / "ocp-qa.yaml").read_text("utf-8"))
    plan = run(config, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0 and "No changes" in plan.output, plan.output


def test_init_writes_a_live_group_id_with_an_invisible_character_as_an_escape(tmp_path: Path) -> None:
    """``numsync init`` wrote such a GROUP_ID raw, then its own check of the text refused it (at a line of a
    numsync.yaml never written), so a tenant with one could not be adopted at all."""
    groups = {"rtl\u202egroup": 3, "line\u2028sep": None, "ocp-qa": 1}
    text = render_config("prod", "EU1", groups)
    assert "\\u202e" in text and "\\u2028" in text
    assert not HIDDEN.search(text)
    check_config_text(text, "numsync.yaml")
    (tmp_path / "numsync.yaml").write_text(text, "utf-8")
    (tmp_path / "desired").mkdir()
    assert set(load_config(tmp_path / "numsync.yaml").environment("prod").groups) == set(groups)
