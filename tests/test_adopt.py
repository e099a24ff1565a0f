"""Adoption (``numsync import --unmanaged``), per-file defaults in ``import``, and ``numsync init``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest
from cli_workspace import live_records, run, workspace, write_desired

from numsync.config import Environment, load_config
from numsync.core.desired import load_text
from numsync.core.diff import diff
from numsync.core.drift import DriftReport, classify
from numsync.core.fmt import format_text
from numsync.core.model import Field, NumberRecord
from numsync.core.policy import GroupPolicy
from numsync.emulator.process import EmulatorProcess
from numsync.errors import AdoptionError, InputError
from numsync.reports import drift as drift_reports
from numsync.workflow.adopt import adopt_text
from numsync.workflow.importer import render_group, shared_defaults
from numsync.workflow.init import render_config

QA_APP = "3781bcc1-7c76-439b-ba26-05d22217b316.SND_billing_flow.Flow.ocp-qa@SND_billing_flow.ocp-qa"


def rec(number: str, group: str = "ocp-qa", **fields: str) -> NumberRecord:
    return NumberRecord(number, group, {Field(k): v for k, v in fields.items()})


def without(text: str, *blocks: str) -> str:
    """``text`` with each of ``blocks`` removed once (each must be there)."""
    for block in blocks:
        assert block in text, block
        text = text.replace(block, "", 1)
    return text


HAND_WRITTEN = """\
# Billing numbers: owned by the payments team
group_id: "ocp-qa"
defaults:
  locale: "en-US"
  provider: "twilio"
numbers:
  # the hotline
  "+12015550123":
    miniapp_id: "app"   # set by ticket PAY-12
    note: "hotline"

  # spare, kept detached
  "+12015550130":
    locale: null
      # deliberately without a locale
"""


# --------------------------------------------------------------------------- adopt_text


def test_adopted_numbers_go_where_fmt_sorts_them_and_every_other_line_stays() -> None:
    first, middle, last = (
        rec("+12015550100", locale="en-US", note="new"),
        rec("+12015550125"),
        rec("+12015550199", locale="es-US"),
    )
    assert format_text(HAND_WRITTEN) == HAND_WRITTEN
    text = adopt_text(HAND_WRITTEN, [last, first, middle], "ocp-qa.yaml")
    added = (
        '  "+12015550100":\n    note: "new"\n',  # locale comes from defaults
        '  "+12015550125":\n    locale: null\n',  # a default it lacks is cleared
        '  "+12015550199":\n    locale: "es-US"\n',
    )
    assert without(text, *added) == HAND_WRITTEN
    assert text.index(added[0]) < text.index("  # the hotline") < text.index(added[1]) < text.index("\n\n  # spare")
    assert text.endswith("deliberately without a locale\n" + added[2])
    assert format_text(text) == text  # still canonical
    state, problems = load_text(text, "ocp-qa.yaml")
    assert problems == []
    assert state.records["+12015550100"].fields == {Field.LOCALE: "en-US", Field.NOTE: "new"}
    assert state.records["+12015550125"].fields == {}


def test_an_empty_flow_mapping_becomes_a_block_and_its_comment_stays() -> None:
    text = adopt_text('group_id: "uk-care"\nnumbers: {}  # none yet\n', [rec("+442079460958", "uk-care")], "f")
    assert text == 'group_id: "uk-care"\nnumbers:  # none yet\n  "+442079460958": {}\n'


def test_line_ends_and_indentation_of_the_file_are_kept() -> None:
    original = 'group_id: g\r\nnumbers:\r\n    "+12015550123":\r\n        note: "x"\r\n'
    text = adopt_text(original, [rec("+12015550199", "g", note="y")], "f")
    assert text == original + '    "+12015550199":\r\n        note: "y"\r\n'


def test_a_flow_style_numbers_mapping_with_entries_is_refused() -> None:
    with pytest.raises(AdoptionError, match="flow style"):
        adopt_text('group_id: g\nnumbers: {"+12015550123": {}}\n', [rec("+12015550199", "g")], "f")


def test_an_unsorted_file_is_not_reordered() -> None:
    original = 'group_id: g\nnumbers:\n  "+12015550150": {}\n  "+12015550123": {}\n'
    text = adopt_text(original, [rec("+12015550140", "g")], "f")
    assert text == 'group_id: g\nnumbers:\n  "+12015550140": {}\n  "+12015550150": {}\n  "+12015550123": {}\n'


# --------------------------------------------------------------------------- defaults in import


def test_defaults_hold_the_common_values_and_the_file_says_the_same() -> None:
    records = [
        rec("+12015550100", locale="en-US", phone_number_set_id="us-east", miniapp_id=QA_APP),
        rec("+12015550101", locale="en-US", phone_number_set_id="us-east"),
        rec("+12015550102", locale="en-US", phone_number_set_id="us-west"),
        rec("+12015550103", locale="es-US", phone_number_set_id="us-east"),
        rec("+12015550104"),
    ]
    assert shared_defaults(records) == {"locale": "en-US", "phone_number_set_id": "us-east"}
    text = render_group("ocp-qa", records, shared=True)
    plain = render_group("ocp-qa", records)
    assert 'defaults:\n  locale: "en-US"\n  phone_number_set_id: "us-east"\n' in text
    assert '  "+12015550101": {}\n' in text
    assert '  "+12015550104":\n    locale: null\n    phone_number_set_id: null\n' in text
    assert len(text.splitlines()) < len(plain.splitlines())
    state, problems = load_text(text, "ocp-qa.yaml")
    assert problems == [] and state.records == {r.number: r for r in records}


def test_a_shared_provider_round_trips_and_an_explicit_one_is_only_inherited() -> None:
    records = [NumberRecord(f"+1201555010{i}", "ocp-qa", {}, provider="twilio") for i in range(4)]
    records.append(NumberRecord("+12015550109", "ocp-qa", {}))
    text = render_group("ocp-qa", records, shared=True)
    assert 'defaults:\n  provider: "twilio"\n' in text and '  "+12015550109":\n    provider: null\n' in text
    state, problems = load_text(text, "ocp-qa.yaml")
    assert problems == [] and state.records == {r.number: r for r in records}
    explicit = render_group("ocp-qa", [rec("+12015550100")], provider="vonage", shared=True)
    assert explicit == 'group_id: "ocp-qa"\ndefaults:\n  provider: "vonage"\nnumbers:\n  "+12015550100": {}\n'


def test_no_defaults_when_they_would_not_shorten_the_file() -> None:
    # en-US twice, but two numbers without a locale would each need "locale: null"
    records = [rec("+12015550100", locale="en-US"), rec("+12015550101", locale="en-US"), rec("+12015550102")]
    records.append(rec("+12015550103"))
    assert shared_defaults(records) == {}
    assert shared_defaults([rec("+12015550100", locale="en-US")]) == {}  # used by one number only
    assert "defaults" not in render_group("ocp-qa", records, shared=True)


def test_a_number_that_is_only_possible_is_written_so_that_it_loads() -> None:
    records = [rec("+4420794609", "uk-care"), rec("+442079460958", "uk-care")]
    text = render_group("uk-care", records, shared=True)
    assert '  "+4420794609":\n    allow_possible: true\n' in text and '  "+442079460958": {}\n' in text
    state, problems = load_text(text, "uk-care.yaml")
    assert problems == [] and set(state.records) == {"+4420794609", "+442079460958"}


# --------------------------------------------------------------------------- drift hint


def test_drift_text_and_markdown_suggest_adoption_only_for_unmanaged_numbers(tmp_path: Path) -> None:
    env = Environment(
        "t", "http://127.0.0.1:9/integrations", "http://127.0.0.1:9/t", tmp_path, {"ocp-qa": GroupPolicy("ocp-qa")}
    )
    desired = {"+12015550100": rec("+12015550100")}
    for live, hinted in (([rec("+12015550100"), rec("+12015550101")], True), ([rec("+12015550100", note="x")], False)):
        report = DriftReport(
            "2026-12-01T00:00:00+00:00", [classify(env, diff(desired, live, env.groups), live, desired)]
        )
        for render in (drift_reports.render_text, drift_reports.render_markdown):
            assert ("adopt them with `numsync import --unmanaged`" in render(report)) is hinted


# --------------------------------------------------------------------------- end to end


def test_import_unmanaged_adopts_out_of_band_numbers_and_changes_nothing_else(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": True, "uk-care": False, "de-service": False})
    assert run(config, "import", "--group", "ocp-qa", "--group", "uk-care").exit_code == 0
    qa, uk = tmp_path / "desired" / "ocp-qa.yaml", tmp_path / "desired" / "uk-care.yaml"
    # a reviewer's comments, which adoption must keep
    qa.write_text(qa.read_text().replace('numbers:\n  "+12015550100":', 'numbers:\n  # reviewed\n  "+12015550100":'))
    uk.write_text("# Care lines\n" + uk.read_text())
    before = {p: p.read_bytes() for p in (qa, uk)}
    added = {"NUMBER": "+12015550999", "GROUP_ID": "ocp-qa", "LOCALE": "es-US", "NOTE": "set up by the carrier"}
    httpx.post(f"{emulator.url}/_emulator/numbers", json=added).raise_for_status()
    assert run(config, "plan", "--detailed-exitcode").exit_code == 2  # ocp-qa prunes: it would be deleted

    result = run(config, "import", "--unmanaged")

    assert result.exit_code == 0, result.output
    assert f"added to {qa}: 1 number(s) (+12015550999)" in result.output
    assert "created" in result.output and "de-service.yaml" in result.output
    assert "adopted 41 unmanaged number(s)" in result.output  # +1 in ocp-qa, the 40 of de-service
    entry = '  "+12015550999":\n    locale: "es-US"\n    phone_number_set_id: null\n    note: "set up by the carrier"\n'
    assert without(qa.read_text(), entry).encode() == before[qa]
    assert uk.read_bytes() == before[uk]
    assert (tmp_path / "desired" / "de-service.yaml").exists()
    plan = run(config, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0 and "No changes" in plan.output, plan.output
    again = run(config, "import", "--unmanaged")
    assert again.exit_code == 0 and "adopted 0 unmanaged number(s)" in again.output
    assert without(qa.read_text(), entry).encode() == before[qa]


def test_import_unmanaged_leaves_retiring_numbers_alone(tmp_path: Path, emulator: EmulatorProcess) -> None:
    # a number carrying its group's retire mark was removed from desired on purpose: adopting it would undo
    # that reviewed removal and write the mark into desired as a wanted value
    qa = sorted((r for r in live_records(emulator) if r.group_id == "ocp-qa"), key=lambda r: r.number)
    config = workspace(tmp_path, emulator.base_url, {"ocp-qa": "{prune: true, retire_after: 14d}"})
    write_desired(tmp_path, qa[2:], ["ocp-qa"])
    retired, stray = qa[0].number, qa[1].number
    today = dt.datetime.now(dt.UTC).date().isoformat()  # in its grace, so plan deletes nothing
    mark = {"MINIAPP_ID": "", "APPLICATION_TAG": f"numsync:retiring-since:{today}"}
    httpx.patch(f"{emulator.url}/_emulator/numbers/{retired}", json=mark).raise_for_status()

    result = run(config, "import", "--unmanaged")

    assert result.exit_code == 0, result.output
    assert f"1 number(s) ({stray})" in result.output and "adopted 1 unmanaged number(s)" in result.output
    assert f"left alone 1 retiring number(s) ({retired})" in result.output
    text = (tmp_path / "desired" / "ocp-qa.yaml").read_text()
    assert f'"{stray}"' in text and f'"{retired}"' not in text and "retiring-since" not in text
    plan = run(config, "plan", "--detailed-exitcode")
    assert plan.exit_code == 0, plan.output
    assert f"{retired}  (ocp-qa)  marked {today}" in plan.output
    # a full import (over the files, with --force) leaves it out as well
    full = run(config, "import", "--force")
    assert full.exit_code == 0 and f"left alone 1 retiring number(s) ({retired})" in full.output, full.output
    assert f'"{retired}"' not in (tmp_path / "desired" / "ocp-qa.yaml").read_text()
    assert run(config, "plan", "--detailed-exitcode").exit_code == 0


def test_import_unmanaged_does_not_write_through_a_link(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False})
    real = tmp_path / "kept" / "uk-care.yaml"  # inside the repository, so the link loads
    real.parent.mkdir()
    uk = [r for r in live_records(emulator) if r.group_id == "uk-care"]
    real.write_text(render_group("uk-care", uk[1:]))
    (tmp_path / "desired" / "uk-care.yaml").symlink_to(real)
    before = real.read_bytes()
    result = run(config, "import", "--unmanaged")
    assert result.exit_code == 1
    assert "symbolic link" in result.output and "Nothing was written" in result.output
    assert real.read_bytes() == before


def test_init_then_import_plans_no_changes(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = tmp_path / "numsync.yaml"
    # a pre-issued token: the numsync.yaml init writes has the tenant's default OTP policy (30 s codes), not the
    # test emulator's short one, so a password login would be refused
    login = {"OCP_TOKEN": emulator.token()}

    result = run(config, "init", "--region", "EU1", "--base-url", emulator.base_url, env=login)

    assert result.exit_code == 0, result.output
    counts = {g: sum(1 for r in live_records(emulator) if r.group_id == g) for g in ("ocp-qa", "uk-care")}
    assert f"  ocp-qa: {counts['ocp-qa']} number(s)" in result.output
    assert f"  uk-care: {counts['uk-care']} number(s)" in result.output
    text = config.read_text()
    assert "region: EU1" in text and f'base_url: "{emulator.base_url}"' in text
    assert f"ocp-qa: {{}}  # {counts['ocp-qa']} number(s) at init" in text  # report-only: nothing pruned
    imported = run(config, "import", env=login)
    assert imported.exit_code == 0, imported.output
    assert "defaults:" in (tmp_path / "desired" / "ocp-qa.yaml").read_text()
    plan = run(config, "plan", "--detailed-exitcode", env=login)
    assert plan.exit_code == 0 and "No changes" in plan.output, plan.output


def test_init_shows_a_live_group_id_with_invisible_characters_as_escapes(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    """init listed each live GROUP_ID raw on stdout: a U+202E reordered the line, a newline forged another one."""
    hostile = "rtl\u202egroup\nforged: 99 number(s)"
    httpx.post(
        f"{emulator.url}/_emulator/numbers", json={"NUMBER": "+12015559901", "GROUP_ID": hostile}
    ).raise_for_status()
    config = tmp_path / "numsync.yaml"

    result = run(
        config, "init", "--region", "EU1", "--base-url", emulator.base_url, env={"OCP_TOKEN": emulator.token()}
    )

    assert result.exit_code == 0, result.output
    assert "  rtl\\u202egroup\\nforged: 99 number(s): 1 number(s)\n" in result.output
    assert "\u202e" not in result.output and "\nforged" not in result.output


def test_init_with_groups_needs_no_network_and_never_overwrites_without_force(tmp_path: Path) -> None:
    config = tmp_path / "numsync.yaml"
    assert run(config, "init", "--region", "EU9", "--group", "ocp-qa", env={}).exit_code == 1
    assert not config.exists()
    result = run(config, "init", "--region", "us1", "--group", "ocp-qa", "--group", "no", env={})
    assert result.exit_code == 0, result.output
    text = config.read_text()
    assert "region: US1\n" in text and 'ocp-qa: {}\n      "no": {}\n' in text  # "no" would read as false unquoted
    again = run(config, "init", "--region", "EU1", "--group", "uk-care", env={})
    assert again.exit_code == 1 and "exists; pass --force" in again.output
    assert config.read_text() == text
    forced = run(config, "init", "--region", "EU1", "--group", "uk-care", "--force", env={})
    assert forced.exit_code == 0 and "uk-care" in config.read_text()
    assert list(load_config(config).environment(None).groups) == ["uk-care"]


def test_init_with_another_config_file_says_how_to_import_from_it(tmp_path: Path) -> None:
    """``next: numsync import`` would read ./numsync.yaml, not the file just written: name it."""
    config = tmp_path / "tenant.yaml"
    result = run(config, "init", "--region", "EU1", "--group", "uk-care", env={})
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith(f"next: numsync --config {config} import")


def test_init_without_groups_asks_for_credentials_and_writes_nothing(tmp_path: Path) -> None:
    config = tmp_path / "numsync.yaml"
    result = run(config, "init", "--region", "EU1", "--base-url", "http://127.0.0.1:9/integrations", env={})
    assert result.exit_code == 1 and "OCP_" in result.output
    assert not config.exists()


def test_a_config_needs_a_group_and_never_holds_credentials() -> None:
    with pytest.raises(InputError, match="--group"):
        render_config("prod", "EU1", {})
    with pytest.raises(InputError, match="must not hold credentials"):
        render_config("prod", "EU1", {"ocp-qa": None}, base_url="https://u:secret@eu1-m.ocp.ai/integrations")


def test_init_refuses_a_base_url_with_credentials_before_any_request(tmp_path: Path) -> None:
    config = tmp_path / "numsync.yaml"
    result = run(config, "init", "--region", "EU1", "--base-url", "http://demo:pw@127.0.0.1:9/integrations")
    assert result.exit_code == 1 and "must not hold credentials" in result.output and "pw" not in result.output
    assert not config.exists()
