"""The apply journal and per-row failures, change-freeze windows, and redaction of secrets.

Every test drives the real CLI (click's CliRunner) against the emulator running as its own
process. freezegun freezes the clock of this process only; the freeze tests give the emulator
the same time (``--clock-offset``), since numsync checks a freeze by OCP's clock too
(test_freeze_clocks.py covers the clocks disagreeing).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from cli_workspace import OTP_SETTING, REAL_CLOCK, emulator_process
from cli_workspace import TOTP_SECRET as SEEDED_TOTP_SECRET
from click.testing import CliRunner, Result
from freezegun import freeze_time

from numsync.cli import main
from numsync.config import ConfigError, load_config
from numsync.emulator.process import EmulatorProcess

CREDENTIALS = {
    "OCP_USERNAME": "demo",
    "OCP_PASSWORD": "demo-secret",
    "OCP_TOKEN": None,
    "OCP_OTP": None,
    "OCP_TOTP_SECRET": SEEDED_TOTP_SECRET,
    "CI": None,
}
BILLING = "3781bcc1-7c76-439b-ba26-05d22217b316.SND_billing_flow.Flow.ocp-qa@SND_billing_flow.ocp-qa"
CARE_ROUTER = "0b7f3a90-2c4d-4e1b-9a55-7d2e8c6f1a3b.care_router.Flow.uk-care@care_router.uk-care"
INVALID = "+11234567890"  # possible but not valid: numsync accepts it with allow_possible, OCP refuses the Create
NEW = "+12025550160"


def write_config(tmp_path: Path, base_url: str, extra: str = "") -> Path:
    config = tmp_path / "numsync.yaml"
    config.write_text(
        f"environments:\n  test:\n    base_url: {base_url}\n    desired: desired\n    groups:\n      ocp-qa: {{}}\n{extra}"
        f"    {OTP_SETTING}\n"
    )
    (tmp_path / "desired").mkdir(exist_ok=True)
    return config


def desired_yaml(miniapp_104: str = CARE_ROUTER, with_invalid: bool = True, note_101: str = "journal test") -> str:
    """+12015550101 note (independent), +12015550104 attached to ``miniapp_104``, INVALID and NEW created with a note."""
    invalid = f'  "{INVALID}":\n    allow_possible: true\n    note: "new line"\n' if with_invalid else ""
    return (
        "group_id: ocp-qa\ndefaults:\n  provider: twilio\nnumbers:\n"
        f'  "+12015550101":\n    miniapp_id: "{BILLING}"\n    locale: en-US\n    phone_number_set_id: us-east\n    application_tag: billing\n    note: "{note_101}"\n'
        f'  "+12015550104":\n    miniapp_id: "{miniapp_104}"\n    locale: en-US\n    phone_number_set_id: us-east\n'
        f"{invalid}"
        f'  "{NEW}":\n    note: "new line"\n'
    )


def run(config: Path, *args: str, env: dict | None = None) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args], env=env or CREDENTIALS, catch_exceptions=False)


def journal(path: Path) -> list[dict]:
    lines = path.read_text("utf-8").splitlines()
    assert lines, f"{path} is empty"
    return [json.loads(line) for line in lines]


@pytest.fixture
def emulator() -> Iterator[EmulatorProcess]:
    with emulator_process() as process:
        yield process


# --- journal and per-row failures ------------------------------------------------------------


def test_per_row_failures_skip_dependents_continue_the_rest_and_are_journaled(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    config = write_config(tmp_path, emulator.base_url)
    (tmp_path / "desired" / "ocp-qa.yaml").write_text(desired_yaml())
    path = tmp_path / "journal.jsonl"

    result = run(config, "apply", "--auto-approve", "--journal", str(path))

    assert result.exit_code == 1, result.output
    out = result.output
    assert "Applied 3 of 6 operation(s) in 2 request(s), 2 failed, 1 skipped." in out
    assert "Failed:" in out
    assert f"Create  {INVALID}" in out and f"NUMBER {INVALID} is not a valid E.164 number" in out
    assert "Attach  +12015550104" in out and f"MINIAPP_ID {CARE_ROUTER} belongs to group uk-care, not ocp-qa" in out
    # each refused row points at the YAML to fix: the miniapp_id value of +12015550104 (line 12), the INVALID key (line 15)
    desired_file = tmp_path / "desired" / "ocp-qa.yaml"
    lines = out.splitlines()
    after = {
        lines[i - 1].split()[1]: lines[i].strip() for i, line in enumerate(lines) if line.strip().startswith("at ")
    }
    assert after == {"+12015550104": f"at {desired_file}:12:17", INVALID: f"at {desired_file}:15:3"}, out
    assert "Skipped (an earlier operation on the same number failed):" in out and f"Update  {INVALID}" in out
    assert "NOT converged: 2 number(s) still differ" in out
    numbers = emulator.numbers()
    assert numbers["+12015550101"]["NOTE"] == "journal test"  # independent rows applied
    assert numbers[NEW]["NOTE"] == "new line"  # a whole independent chain applied
    assert INVALID not in numbers and numbers["+12015550104"]["MINIAPP_ID"] == ""

    events = journal(path)
    assert all({"ts", "event"} <= e.keys() for e in events)
    assert all(dt.datetime.fromisoformat(e["ts"]).tzinfo is not None for e in events)
    # written ahead: each PUT is announced ("sending") before it leaves, then its outcome recorded
    assert [e["event"] for e in events] == ["apply-start", "sending", "request", "sending", "request", "apply-end"]
    start, sending_first, first, sending_second, second, end = events
    assert sending_first["rows"] == first["rows"] and sending_second["rows"] == second["rows"]
    assert start["environment"] == "test" and start["requests"] == 2 and "2 to create" in start["summary"]
    for request in (first, second):
        assert {
            "phase",
            "batch",
            "rows",
            "status",
            "failed",
            "skipped",
            "seconds",
            "ambiguous",
            "error",
        } <= request.keys()
        assert request["status"] == 200 and isinstance(request["seconds"], float) and request["seconds"] >= 0
        assert request["ambiguous"] is False and request["error"] is None
    assert (first["phase"], first["batch"]) == (1, 1) and (second["phase"], second["batch"]) == (2, 1)
    assert sorted(first["rows"]) == sorted(
        [f"Create {INVALID}", f"Create {NEW}", "Attach +12015550104", "Update +12015550101"]
    )
    assert {f["row"] for f in first["failed"]} == {f"Create {INVALID}", "Attach +12015550104"}
    assert any("belongs to group uk-care" in f["message"] for f in first["failed"])
    assert second["rows"] == [f"Update {NEW}"] and second["skipped"] == [f"Update {INVALID}"]
    assert end == end | {"applied": 3, "failed": 2, "skipped": 1, "interrupted": None, "converged": False}

    # Fix the YAML; the re-run sends only what is left and converges.
    (tmp_path / "desired" / "ocp-qa.yaml").write_text(desired_yaml(miniapp_104=BILLING, with_invalid=False))
    puts = emulator.stats()["put_requests"]
    again = run(config, "apply", "--auto-approve", "--journal", str(path))
    assert again.exit_code == 0, again.output
    assert "Applied 1 of 1 operation(s) in 1 request(s), 0 failed, 0 skipped." in again.output
    assert "Verified: live now matches desired." in again.output
    assert emulator.stats()["put_requests"] == puts + 1
    events = journal(path)  # appended to, not overwritten
    assert [e["event"] for e in events][6:] == ["apply-start", "sending", "request", "apply-end"]
    assert events[8]["rows"] == ["Attach +12015550104"] and events[-1]["converged"] is True
    assert run(config, "plan", "--detailed-exitcode").exit_code == 0


def test_retries_are_journaled(tmp_path: Path) -> None:
    spec = tmp_path / "faults.yaml"
    spec.write_text(
        yaml.safe_dump([{"target": "put", "kind": "status", "status": 429, "retry_after": "0", "times": 1}])
    )
    with emulator_process("--faults", str(spec)) as emu:
        config = write_config(tmp_path, emu.base_url)
        (tmp_path / "desired" / "ocp-qa.yaml").write_text(desired_yaml(miniapp_104=BILLING, with_invalid=False))
        path = tmp_path / "journal.jsonl"
        result = run(config, "apply", "--auto-approve", "--journal", str(path))
        assert result.exit_code == 0, result.output
        assert "PUT /integrations/api/numbers/csv: HTTP 429, retrying in 0.0s" in result.output
        events = journal(path)
        [retry] = [e for e in events if e["event"] == "retry"]
        assert retry == retry | {
            "method": "PUT",
            "url": emu.base_url + "/api/numbers/csv",
            "reason": "HTTP 429",
            "delay": 0.0,
        }
        assert events.index(retry) < [e["event"] for e in events].index("request")
        assert emu.stats()["rows_applied"] == 4  # each row applied once, though one file was sent twice


def test_ci_writes_the_journal_by_default(
    tmp_path: Path, emulator: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, emulator.base_url)
    (tmp_path / "desired" / "ocp-qa.yaml").write_text(desired_yaml(miniapp_104=BILLING, with_invalid=False))
    work = tmp_path / "ci"
    work.mkdir()
    monkeypatch.chdir(work)
    result = run(config, "apply", "--auto-approve", env=CREDENTIALS | {"CI": "true"})
    assert result.exit_code == 0, result.output
    events = journal(work / "numsync-journal.jsonl")
    assert events[0]["event"] == "apply-start" and events[-1]["event"] == "apply-end"

    (tmp_path / "desired" / "ocp-qa.yaml").write_text(
        desired_yaml(miniapp_104=BILLING, with_invalid=False, note_101="outside CI")
    )
    other = tmp_path / "local"
    other.mkdir()
    monkeypatch.chdir(other)
    assert run(config, "apply", "--auto-approve").exit_code == 0
    assert list(other.iterdir()) == []  # not in CI: no journal unless asked


# --- freeze windows --------------------------------------------------------------------------

FREEZE = """    freeze:
      timezone: Europe/Berlin
      dates:
        - {from: "2026-12-20", to: "2027-01-03", reason: "holiday freeze"}
      weekly:
        - {days: [fri], from: "16:00", to: "24:00", reason: "no Friday evening changes"}
"""


def freeze_of(tmp_path: Path, block: str = FREEZE):
    return load_config(write_config(tmp_path, "http://127.0.0.1:9/integrations", block)).environment("test").freeze


@pytest.mark.parametrize(
    ("instant", "frozen"),
    [
        # the holiday window, read in Berlin time (CET = UTC+1 in winter)
        ("2026-12-19T22:59:59+00:00", None),  # 23:59:59 on Sat 19 Dec in Berlin
        ("2026-12-19T23:00:00+00:00", "holiday freeze"),  # 00:00 on the 20th in Berlin, still the 19th in UTC
        ("2027-01-03T22:59:00+00:00", "holiday freeze"),  # last minute of the last day: inclusive
        ("2027-01-03T23:00:00+00:00", None),  # Mon 4 Jan 00:00 in Berlin
        # Friday 16:00-24:00 Berlin, across daylight saving time
        ("2026-07-03T13:59:00+00:00", None),  # 15:59 CEST
        ("2026-07-03T14:00:00+00:00", "no Friday evening changes"),  # 16:00 CEST (UTC+2)
        ("2026-11-06T14:30:00+00:00", None),  # 15:30 CET: the same UTC time as below is not frozen in winter
        ("2026-07-03T14:30:00+00:00", "no Friday evening changes"),  # 16:30 CEST
        ("2026-11-06T15:00:00+00:00", "no Friday evening changes"),  # 16:00 CET (UTC+1)
        ("2026-11-06T22:59:00+00:00", "no Friday evening changes"),  # 23:59 Friday
        ("2026-11-06T23:00:00+00:00", None),  # Saturday 00:00: "to" is exclusive
        ("2026-11-05T20:00:00+00:00", None),  # Thursday evening
    ],
)
def test_freeze_windows_in_the_configured_time_zone(tmp_path: Path, instant: str, frozen: str | None) -> None:
    reason = freeze_of(tmp_path).active(dt.datetime.fromisoformat(instant))
    assert (reason.split(" (")[0] if reason else None) == frozen
    if reason:
        assert "Europe/Berlin" in reason


def test_freeze_uses_the_current_time_when_none_is_given(tmp_path: Path) -> None:
    freeze = freeze_of(tmp_path)
    with freeze_time("2026-12-24T10:00:00+00:00"):
        assert freeze.active() == "holiday freeze (2026-12-20 to 2027-01-03, Europe/Berlin)"
    with freeze_time("2026-07-03T14:00:00+00:00"):
        assert freeze.active() == "no Friday evening changes (fri 16:00-24:00, Europe/Berlin)"
    with freeze_time("2026-07-01T12:00:00+00:00"):
        assert freeze.active() is None


def _freeze_workspace(tmp_path: Path, emulator: EmulatorProcess) -> Path:
    config = write_config(tmp_path, emulator.base_url, FREEZE)
    (tmp_path / "desired" / "ocp-qa.yaml").write_text(desired_yaml(miniapp_104=BILLING, with_invalid=False))
    return config


@contextlib.contextmanager
def clocks_at(instant: str) -> Iterator[EmulatorProcess]:
    """An emulator whose clock (its Date header, ``--clock-offset``) and this process's clock (freezegun, ticking)
    both read ``instant``, to within the seconds the emulator takes to start; two-factor keeps the real clock."""
    offset = dt.datetime.fromisoformat(instant).timestamp() - time.time()
    with (
        emulator_process("--clock-offset", str(offset)) as emulator,
        freeze_time(instant, tick=True, ignore=REAL_CLOCK),
    ):
        yield emulator


@pytest.mark.parametrize(
    ("instant", "reason"),
    [
        ("2026-12-19T23:30:00+00:00", "holiday freeze (2026-12-20 to 2027-01-03, Europe/Berlin)"),
        ("2026-07-03T14:00:00+00:00", "no Friday evening changes (fri 16:00-24:00, Europe/Berlin)"),
    ],
    ids=["holiday-just-after-midnight-berlin", "friday-16h-summer"],
)
def test_apply_in_a_freeze_is_refused_without_writing(tmp_path: Path, instant: str, reason: str) -> None:
    path = tmp_path / "journal.jsonl"
    with clocks_at(instant) as emulator:
        config = _freeze_workspace(tmp_path, emulator)
        result = run(config, "apply", "--auto-approve", "--journal", str(path))
        assert result.exit_code == 1
        assert f"apply refused: a change freeze is in force: {reason}. Nothing was written." in result.output
        assert '--override-freeze "<why>"' in result.output
        assert "clock" not in result.output  # the clocks agree: no skew warning, no "by OCP's clock"
        assert emulator.stats()["put_requests"] == 0
        assert emulator.numbers()["+12015550101"]["NOTE"] == ""


def test_a_freeze_and_a_refusal_are_in_the_saved_plan_and_every_format(tmp_path: Path) -> None:
    plan_file = tmp_path / "plan.json"
    with clocks_at("2026-12-25T12:00:00+00:00") as emulator:
        config = _freeze_workspace(tmp_path, emulator)
        config.write_text(
            config.read_text().replace(FREEZE, FREEZE + "    safety: {max_change_percent: 0, min_size: 1}\n")
        )
        planned = run(config, "plan", "--out", str(plan_file))
        assert planned.exit_code == 1, planned.output
        # the text plan on stdout says both, not only the error after it
        plan_text = planned.output[: planned.output.index("Saved the plan")]
        assert "Note: a change freeze is in force (holiday freeze" in plan_text
        assert "Apply would be refused by these safety checks:" in plan_text
        notices = json.loads(plan_file.read_text())["notices"]
        assert [n["kind"] for n in notices] == ["freeze", "safety"]
        assert notices[1]["flag"] == "--override-thresholds" and "max_change_percent is 0%" in notices[1]["text"]
        for fmt, freeze, refusal in [
            ("text", "Note: a change freeze", "Apply would be refused"),
            ("markdown", "`a change freeze", "**Apply would be refused**"),
        ]:
            shown = run(config, "show", str(plan_file), "--format", fmt)
            assert shown.exit_code == 0, shown.output
            assert freeze in shown.output and refusal in shown.output
            # a saved plan is lifted only by planning again: no flag to pass to apply
            assert (
                "make the plan again with --override-thresholds" in shown.output
                and "pass --override" not in shown.output
            )
        applied = run(config, "apply", str(plan_file), "--auto-approve")
        assert applied.exit_code == 1
        assert "Refused: " in applied.output and "make the plan again with --override-thresholds" in applied.output
        # the notices are what held at plan time, not a permission: removing one lifts nothing (apply judges afresh)
        edited = json.loads(plan_file.read_text()) | {"notices": []}
        plan_file.write_text(json.dumps(edited))
        again = run(config, "apply", str(plan_file), "--auto-approve")
        assert again.exit_code == 1 and "Refused: " in again.output and "edited" not in again.output
        assert emulator.stats()["put_requests"] == 0


def test_apply_in_a_freeze_with_a_blank_override_is_refused(tmp_path: Path) -> None:
    with clocks_at("2026-12-25T12:00:00+00:00") as emulator:
        config = _freeze_workspace(tmp_path, emulator)
        result = run(config, "apply", "--auto-approve", "--override-freeze", "   ")
        assert result.exit_code == 1 and "apply refused: a change freeze is in force" in result.output
        assert "--override-freeze was given a blank reason, which does not count" in result.output
        assert emulator.stats()["put_requests"] == 0


def test_override_freeze_applies_and_journals_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with clocks_at("2026-12-25T12:00:00+00:00") as emulator:
        config = _freeze_workspace(tmp_path, emulator)
        result = run(config, "apply", "--auto-approve", "--override-freeze", "incident 42", "--journal", str(path))
        assert result.exit_code == 0, result.output
        assert (
            "Change freeze in force (holiday freeze (2026-12-20 to 2027-01-03, Europe/Berlin)); overridden: incident 42"
            in result.output
        )
        assert "Verified: live now matches desired." in result.output
        assert emulator.numbers()["+12015550101"]["NOTE"] == "journal test"
    events = journal(path)
    [override] = [e for e in events if e["event"] == "freeze-override"]
    assert override["reason"] == "incident 42" and override["freeze"].startswith("holiday freeze")
    assert events.index(override) < [e["event"] for e in events].index("apply-start")
    assert override["ts"].startswith("2026-12-25T12:00")  # the journal's clock is the frozen one


def test_apply_outside_any_window_needs_no_override(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with clocks_at("2026-11-06T14:30:00+00:00") as emulator:  # Friday 15:30 in Berlin (CET)
        config = _freeze_workspace(tmp_path, emulator)
        result = run(config, "apply", "--auto-approve", "--journal", str(path))
    assert result.exit_code == 0, result.output
    assert "freeze" not in result.output.lower()
    assert "freeze-override" not in [e["event"] for e in journal(path)]


def test_plan_is_not_affected_by_a_freeze(tmp_path: Path) -> None:
    with clocks_at("2026-12-25T12:00:00+00:00") as emulator:
        config = _freeze_workspace(tmp_path, emulator)
        result = run(config, "plan", "--detailed-exitcode")
    assert result.exit_code == 2  # the plan is made and shown as ever
    assert (
        "Note: a change freeze is in force (holiday freeze (2026-12-20 to 2027-01-03, Europe/Berlin)); apply will refuse"
        in result.output
    )


def test_an_override_reason_holding_a_secret_is_masked_in_the_output(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    with clocks_at("2026-12-25T12:00:00+00:00") as emulator:
        config = _freeze_workspace(tmp_path, emulator)
        result = run(
            config,
            "apply",
            "--auto-approve",
            "--override-freeze",
            f"incident 42 {CREDENTIALS['OCP_PASSWORD']}",
            "--journal",
            str(path),
        )
    assert result.exit_code == 0, result.output
    assert "overridden: incident 42 ***" in result.output
    assert CREDENTIALS["OCP_PASSWORD"] not in result.output and CREDENTIALS["OCP_PASSWORD"] not in path.read_text()


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            "    freeze:\n      timezone: Mars/Olympus_Mons\n",
            [(8, 17, "freeze: unknown time zone 'Mars/Olympus_Mons'; use an IANA name like Europe/Berlin")],
        ),
        (
            '    freeze:\n      dates:\n        - {from: "2026-02-30", to: "2026-03-01", reason: x}\n',
            [
                (
                    9,
                    18,
                    "freeze: dates[0].from: '2026-02-30' is not a date (day is out of range for month); write YYYY-MM-DD",
                )
            ],
        ),
        (
            '    freeze:\n      weekly:\n        - {days: [fri], from: "25:00", to: "26:00", reason: x}\n',
            [
                (9, 31, "freeze: weekly[0].from: '25:00' is not a time of day HH:MM"),
                (9, 44, "freeze: weekly[0].to: '26:00' is not a time of day HH:MM"),
            ],
        ),
        (
            '    freeze:\n      dates:\n        - {from: "2027-01-03", to: "2026-12-20", reason: reversed}\n',
            [(9, 36, "freeze: dates[0]: to 2026-12-20 is before from 2027-01-03; the range is inclusive, swap them")],
        ),
        (
            '    freeze:\n      weekly:\n        - {days: [fri], from: "06:00", to: "06:00", reason: x}\n',
            [
                (
                    9,
                    44,
                    "freeze: weekly[0]: from 06:00 to 06:00 is an empty window; for a whole day write 00:00 to 24:00",
                )
            ],
        ),
        (
            "    freeze:\n      timezone: localtime\n",  # the runner's own zone: differs from machine to machine
            [(8, 17, "freeze: unknown time zone 'localtime'; use an IANA name like Europe/Berlin")],
        ),
        (
            '    freeze:\n      weekly:\n        - {days: [fri], from: "24:00", to: "06:00", reason: x}\n',
            [
                (
                    9,
                    31,
                    "freeze: weekly[0]: a window cannot start at 24:00 (the end of the day); start at 00:00 and list the next day",
                )
            ],
        ),
    ],
    ids=["timezone", "date", "time", "dates-reversed", "weekly-empty", "localtime", "start-at-24"],
)
def test_a_bad_freeze_is_a_config_error_at_the_value(
    tmp_path: Path, block: str, expected: list[tuple[int, int, str]]
) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/integrations", block)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert [str(p) for p in caught.value.problems] == [
        f"{config}:{line}:{col}: {message}" for line, col, message in expected
    ]
    assert {p.check for p in caught.value.problems} == {"config-freeze"}
    result = run(config, "plan")
    assert result.exit_code == 1 and "problem(s) in numsync.yaml" in result.output
    for line, col, message in expected:
        assert f"{config}:{line}:{col}: {message}" in result.output


@pytest.mark.parametrize(
    ("instant", "frozen"),
    [
        ("2026-11-06T21:59:00+00:00", False),  # Friday, before the window
        ("2026-11-06T22:00:00+00:00", True),  # Friday 22:00: starts
        ("2026-11-07T05:59:00+00:00", True),  # Saturday morning: still the Friday night window
        ("2026-11-07T06:00:00+00:00", False),  # Saturday 06:00: ended ("to" is exclusive)
        ("2026-11-07T23:00:00+00:00", False),  # Saturday night: not a listed day
        ("2026-11-09T01:00:00+00:00", True),  # Monday 01:00: the Sunday night window, across the week's end
    ],
)
def test_an_overnight_weekly_window_runs_into_the_next_day(tmp_path: Path, instant: str, frozen: bool) -> None:
    block = (
        '    freeze:\n      weekly:\n        - {days: [fri, sun], from: "22:00", to: "06:00", reason: "overnight"}\n'
    )
    config = write_config(tmp_path, "http://127.0.0.1:9/integrations", block)
    freeze = load_config(config).environment("test").freeze
    reason = freeze.active(dt.datetime.fromisoformat(instant))
    assert (reason is not None) is frozen
    if frozen:
        assert reason == "overnight (fri,sun 22:00-06:00, UTC)"


# --- redaction -------------------------------------------------------------------------------

PASSWORD = "Pw-7f3c1e9a-REDACT-ME"
TOTP_SECRET = "JBSWY3DPEHPK3PXPQRSTUVWXYZ234567"
BAD_TOKEN = "tok-INVALID-9d8c7b6a-REDACT-ME"


def _everything(results: list[Result], folder: Path, emu: EmulatorProcess) -> str:
    """Every byte a run produced: stdout and stderr of each command, every file written, the emulator's log and state."""
    parts = []
    for r in results:
        parts += [r.output, r.stdout, r.stderr, repr(r.exception) if r.exception else ""]
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            parts.append(path.read_bytes().decode("utf-8", errors="replace"))
    parts.append(emu.stderr_text())
    parts.append(json.dumps(emu.state()))
    return "\n".join(parts)


def test_no_secret_appears_in_any_output_file_or_journal(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"  # some retries, so the retry lines and journal events are exercised too
    faults.write_text(
        yaml.safe_dump(
            [
                {"target": "token", "kind": "status", "status": 502, "times": 1},
                {"target": "export", "kind": "status", "status": 503, "times": 2},
                {"target": "put", "kind": "status", "status": 429, "retry_after": "0", "times": 1},
            ]
        )
    )
    work = tmp_path / "work"
    work.mkdir()
    with emulator_process(
        "--user", f"ci-bot:{PASSWORD}:OWNER", "--faults", str(faults), totp_secret=TOTP_SECRET
    ) as emu:
        config = write_config(work, emu.base_url)
        (work / "desired" / "ocp-qa.yaml").write_text(desired_yaml())  # with per-row failures: error output too
        env = CREDENTIALS | {"OCP_USERNAME": "ci-bot", "OCP_PASSWORD": PASSWORD, "OCP_TOTP_SECRET": TOTP_SECRET}
        out = lambda name: str(work / name)  # noqa: E731
        results = [
            run(config, "validate", env=env),
            run(config, "plan", "--out", out("plan.json"), "--emit-csv", out("emit"), env=env),
            run(config, "show", out("plan.json"), env=env),
            run(config, "apply", out("plan.json"), "--journal", out("journal.jsonl"), env=env),
            run(
                config,
                "drift",
                "--format",
                "text",
                "--format",
                f"json={out('drift.json')}",
                "--format",
                f"html={out('drift.html')}",
                "--format",
                f"junit={out('drift.xml')}",
                env=env,
            ),
            run(config, "export", "--out", out("live.csv"), env=env),
            run(config, "export", env=env),
            run(config, "apply", "--auto-approve", env=env | {"OCP_PASSWORD": PASSWORD + "-wrong"}),
        ]
        assert [r.exit_code for r in results] == [0, 0, 0, 1, 2, 0, 0, 1], [r.output for r in results]
        assert "retrying" in results[1].output + results[3].output  # the retry paths ran
        assert "Applied 3 of 6 operation(s)" in results[3].output  # the failure table ran
        assert "OCP refused to log in user 'ci-bot'" in results[-1].output
        assert {e["event"] for e in journal(work / "journal.jsonl")} >= {"retry", "apply-start", "request", "apply-end"}
        everything = _everything(results, work, emu)
    assert PASSWORD not in everything
    assert TOTP_SECRET not in everything
    assert "demo-secret" not in everything


def test_no_token_appears_in_any_output_file_or_journal(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    with emulator_process("--user", f"ci-bot:{PASSWORD}:OWNER") as emu:
        token = emu.token("ci-bot", PASSWORD)
        config = write_config(work, emu.base_url)
        (work / "desired" / "ocp-qa.yaml").write_text(desired_yaml())
        env = CREDENTIALS | {"OCP_TOKEN": token, "OCP_USERNAME": None, "OCP_PASSWORD": None}
        out = lambda name: str(work / name)  # noqa: E731
        results = [
            run(config, "plan", "--out", out("plan.json"), env=env),
            run(config, "apply", "--auto-approve", "--journal", out("journal.jsonl"), env=env),
            run(config, "drift", "--format", "text", "--format", f"json={out('drift.json')}", env=env),
            run(config, "export", "--out", out("live.csv"), env=env),
            run(config, "plan", env=env | {"OCP_TOKEN": BAD_TOKEN}),
            run(
                config,
                "apply",
                "--auto-approve",
                "--journal",
                out("journal-bad.jsonl"),
                env=env | {"OCP_TOKEN": BAD_TOKEN},
            ),
        ]
        assert [r.exit_code for r in results] == [0, 1, 2, 0, 1, 1], [r.output for r in results]
        assert "HTTP 401 (the token was refused" in results[-2].output
        assert "Applied 3 of 6 operation(s)" in results[1].output
        everything = _everything(results, work, emu)
    assert token not in everything
    assert BAD_TOKEN not in everything
    assert PASSWORD not in everything


def test_the_journal_redacts_a_secret_that_reaches_it(tmp_path: Path) -> None:
    """The last line of defence: any string holding a known secret is masked before it is written."""
    from numsync.workflow.journal import Journal

    path = tmp_path / "j.jsonl"
    with Journal(path, [PASSWORD, "", TOTP_SECRET]) as j:
        j.write("request", error=f"login as ci-bot with {PASSWORD} failed", nested={"otp": [TOTP_SECRET]})
    text = path.read_text()
    assert PASSWORD not in text and TOTP_SECRET not in text
    [event] = journal(path)
    assert event["error"] == "login as ci-bot with *** failed" and event["nested"] == {"otp": ["***"]}


@contextlib.contextmanager
def echoing_server(answer: Callable[[dict[str, str], bytes], dict]) -> Iterator[str]:
    """A loopback server answering every POST with 401 and the JSON ``answer(headers, body)``; yields its base URL."""
    import http.server
    import threading

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.dumps(
                answer(dict(self.headers), self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            ).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/integrations"
    finally:
        server.shutdown()


def test_an_error_body_echoing_the_token_is_masked_in_the_output(tmp_path: Path) -> None:
    """An API that echoes the bearer token in its error message: the CLI masks it when it prints the error."""
    with echoing_server(lambda headers, _: {"message": f"token {headers['Authorization'][7:]} has expired"}) as url:
        config = write_config(tmp_path, url)
        (tmp_path / "desired" / "ocp-qa.yaml").write_text(desired_yaml())
        result = run(config, "plan", env=CREDENTIALS | {"OCP_TOKEN": BAD_TOKEN})
    assert result.exit_code == 1 and "token *** has expired" in result.output
    assert BAD_TOKEN not in result.output


def test_a_token_refusal_echoing_the_password_is_masked_in_the_output(tmp_path: Path) -> None:
    from urllib.parse import parse_qs

    def refuse(_: dict[str, str], body: bytes) -> dict:
        return {
            "error": "invalid_grant",
            "error_description": f"password {parse_qs(body.decode())['password'][0]} is wrong",
        }

    with echoing_server(refuse) as url:
        config = write_config(tmp_path, url)
        (tmp_path / "desired" / "ocp-qa.yaml").write_text(desired_yaml())
        path = tmp_path / "journal.jsonl"
        result = run(
            config, "apply", "--auto-approve", "--journal", str(path), env=CREDENTIALS | {"OCP_PASSWORD": PASSWORD}
        )
    assert result.exit_code == 1 and "password *** is wrong" in result.output
    assert PASSWORD not in result.output and PASSWORD not in path.read_text()


def test_the_emulator_never_shows_a_user_password(tmp_path: Path) -> None:
    from numsync.emulator.process import EmulatorStartError

    # a bad --user is refused without repeating the password
    with pytest.raises(EmulatorStartError) as caught:
        emulator_process("--user", f"ci-bot:{PASSWORD}:NOBODY").start()
    assert "ci-bot" in str(caught.value) and PASSWORD not in str(caught.value)
    with emulator_process("--user", f"ci-bot:{PASSWORD}:OWNER") as emu:
        state = json.dumps(emu.state())
        assert "ci-bot" in state and PASSWORD not in state
        assert (
            httpx.post(
                emu.token_url,
                data=emu.login_form("ci-bot", PASSWORD),
            ).status_code
            == 200
        )
        assert PASSWORD not in emu.stderr_text()


@pytest.mark.parametrize("command", ["plan", "drift"])
def test_plan_and_drift_say_when_they_retry(tmp_path: Path, command: str) -> None:
    """A retry can wait minutes (Retry-After): plan and drift say so on stderr instead of sitting silent."""
    spec = tmp_path / "faults.yaml"
    spec.write_text(yaml.safe_dump([{"target": "export", "kind": "status", "status": 503, "times": 1}]))
    with emulator_process("--faults", str(spec)) as emu:
        config = write_config(tmp_path, emu.base_url, "    retry: {max_delay: 0.01}\n")
        (tmp_path / "desired" / "ocp-qa.yaml").write_text(desired_yaml())
        result = run(config, command)
    assert result.exit_code in (0, 2), result.output
    assert "POST /integrations/api/numbers/csv: HTTP 503, retrying in 0.0s" in result.output
