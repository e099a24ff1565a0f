"""A change freeze is checked by OCP's clock (its Date header) as well as this machine's: the stricter answer
wins, a skew over five minutes is a warning, and the freeze is checked again before every phase of apply.

Over real HTTP: the emulator's clock is moved with ``--clock-offset``, this process's with freezegun."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_workspace import (
    CREDENTIALS,
    OTP_POLICY,
    REAL_CLOCK,
    emulator_process,
    live_records,
    run,
    workspace,
    write_desired,
)
from freezegun import freeze_time

from numsync.config import load_config
from numsync.core.freeze import SKEW_WARNING, check_clocks, duration, parse_freeze
from numsync.core.model import Field
from numsync.emulator.process import EmulatorProcess
from numsync.errors import FreezeRefusal
from numsync.ocp import Credentials, OCPAuth, OCPReader
from numsync.ocp.client import OCPClient
from numsync.workflow.run_apply import ApplyRequest, run_apply

HOLIDAY = {"timezone": "UTC", "dates": [{"from": "2026-12-24", "to": "2026-12-26", "reason": "holiday freeze"}]}
FREEZE_BLOCK = [
    "freeze:",
    "  timezone: UTC",
    "  dates:",
    '    - {from: "2026-12-24", to: "2026-12-26", reason: "holiday freeze"}',
]
INSIDE = dt.datetime(2026, 12, 25, 12, 0, tzinfo=dt.UTC)
OUTSIDE = INSIDE - dt.timedelta(days=30)  # a runner whose clock is 30 days behind


def utc(instant: dt.datetime) -> str:
    return instant.strftime("%Y-%m-%d %H:%M:%S UTC")


# -- the rule (pure) -----------------------------------------------------------------------------------------


def test_frozen_by_either_clock_is_frozen() -> None:
    freeze = parse_freeze(HOLIDAY)
    by_server = check_clocks(freeze, OUTSIDE, INSIDE)
    assert by_server.active is not None and by_server.active.startswith(
        "holiday freeze (2026-12-24 to 2026-12-26, UTC)"
    )
    assert f"by OCP's clock ({utc(INSIDE)}; this machine's clock says {utc(OUTSIDE)})" in by_server.active
    by_local = check_clocks(freeze, INSIDE, OUTSIDE)
    assert by_local.active == "holiday freeze (2026-12-24 to 2026-12-26, UTC)"  # the local answer, as before
    assert check_clocks(freeze, OUTSIDE, OUTSIDE + dt.timedelta(seconds=3)).active is None
    assert check_clocks(freeze, INSIDE, None).active == by_local.active  # no Date header: the local clock alone
    assert check_clocks(freeze, OUTSIDE, None).active is None


@pytest.mark.parametrize(
    ("skew", "warned"),
    [
        (dt.timedelta(0), False),
        (SKEW_WARNING, False),  # "over five minutes"
        (SKEW_WARNING + dt.timedelta(seconds=1), True),
        (-SKEW_WARNING - dt.timedelta(seconds=1), True),
        (dt.timedelta(days=30), True),
    ],
    ids=["none", "five-minutes", "just-over", "just-over-ahead", "thirty-days"],
)
def test_a_skew_over_five_minutes_is_a_warning(skew: dt.timedelta, warned: bool) -> None:
    check = check_clocks(parse_freeze({}), OUTSIDE, OUTSIDE + skew)
    assert (check.skew_warning is not None) == warned
    assert check.skew == skew
    assert check_clocks(parse_freeze({}), OUTSIDE, None).skew_warning is None


def test_the_skew_warning_says_how_far_and_which_way() -> None:
    behind = check_clocks(parse_freeze({}), OUTSIDE, INSIDE).skew_warning
    assert behind is not None
    assert behind.startswith(f"this machine's clock is 30 days 0 h behind OCP's (here {utc(OUTSIDE)}")
    ahead = check_clocks(parse_freeze({}), INSIDE, INSIDE - dt.timedelta(minutes=7)).skew_warning
    assert ahead is not None and "is 7 min 0 s ahead of OCP's" in ahead
    assert duration(dt.timedelta(hours=3, minutes=5, seconds=9)) == "3 h 5 min"


# -- the vendor package reads the header -----------------------------------------------------------------------


@contextlib.contextmanager
def emulator_at(instant: dt.datetime, *args: str) -> Iterator[EmulatorProcess]:
    """An emulator whose Date header reads ``instant`` (and ticks from it)."""
    with emulator_process("--clock-offset", str(instant.timestamp() - time.time()), *args) as emulator:
        yield emulator


def test_every_answer_of_the_emulator_carries_one_date_on_its_clock() -> None:
    with emulator_at(INSIDE) as emulator:
        answer = httpx.get(emulator.url + "/_emulator/stats")
    [date] = answer.headers.get_list("date")
    seconds = (dt.datetime.strptime(date, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=dt.UTC) - INSIDE).total_seconds()
    assert 0 <= seconds < 60


def test_the_client_exposes_ocp_s_clock_as_data() -> None:
    with emulator_at(INSIDE) as emulator:
        auth = OCPAuth(emulator.token_url, Credentials.from_env(CREDENTIALS), otp=OTP_POLICY)
        with OCPReader(emulator.base_url, auth) as client:
            assert client.server_time() is None  # nothing answered yet
            client.export()
            seen = client.server_time()
    assert seen is not None and seen.tzinfo is not None
    assert abs((seen - INSIDE).total_seconds()) < 60  # the emulator's clock, not this machine's (days apart)


# -- apply and plan over real HTTP, with this machine's clock 30 days off -------------------------------------------


def _workspace(tmp_path: Path, emulator: EmulatorProcess, *, prune: bool = False) -> Path:
    config = workspace(tmp_path, emulator.base_url, {"uk-care": prune}, *FREEZE_BLOCK)
    records = [r for r in live_records(emulator) if r.group_id == "uk-care"]
    write_desired(tmp_path, records, ["uk-care"])
    path = tmp_path / "desired" / "uk-care.yaml"
    text = path.read_text().replace('    note: "Main line, after-hours routing"\n', "", 1)
    path.write_text(text.replace('"+442079460958":\n', '"+442079460958":\n    note: "after review"\n', 1))
    return config


def test_apply_is_refused_inside_the_window_by_the_server_clock_under_local_skew(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    with emulator_at(INSIDE) as emulator:
        config = _workspace(tmp_path, emulator)
        with freeze_time(OUTSIDE, tick=True, ignore=REAL_CLOCK):
            result = run(config, "apply", "--auto-approve", "--journal", str(journal))
        assert emulator.stats()["put_requests"] == 0
    assert result.exit_code == 1, result.output
    assert (
        "apply refused: a change freeze is in force: holiday freeze (2026-12-24 to 2026-12-26, UTC), by OCP's clock"
        in (result.output)
    )
    assert "Nothing was written." in result.output
    # 30 days, give or take the Date header's whole seconds: "29 days 23 h" when it reads just under
    assert re.search(r"Warning: this machine's clock is (30 days 0 h|29 days 23 h) behind OCP's", result.output), (
        result.output
    )
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    [skew] = [e for e in events if e["event"] == "clock-skew"]
    assert 30 * 86400 - 60 < skew["seconds"] < 30 * 86400 + 60


def test_plan_says_the_freeze_holds_by_the_server_clock(tmp_path: Path) -> None:
    with emulator_at(INSIDE) as emulator:
        config = _workspace(tmp_path, emulator)
        with freeze_time(OUTSIDE, tick=True, ignore=REAL_CLOCK):
            result = run(config, "plan", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert (
        "a change freeze is in force (holiday freeze (2026-12-24 to 2026-12-26, UTC), by OCP's clock" in result.output
    )


def test_a_server_clock_outside_the_window_does_not_lift_a_local_freeze(tmp_path: Path) -> None:
    with emulator_at(OUTSIDE) as emulator:
        config = _workspace(tmp_path, emulator)
        with freeze_time(INSIDE, tick=True, ignore=REAL_CLOCK):
            result = run(config, "apply", "--auto-approve")
        assert emulator.stats()["put_requests"] == 0
    assert result.exit_code == 1
    assert (
        "apply refused: a change freeze is in force: holiday freeze (2026-12-24 to 2026-12-26, UTC)." in result.output
    )


def test_clocks_that_agree_outside_a_window_apply_without_a_word(tmp_path: Path) -> None:
    with emulator_at(OUTSIDE) as emulator:
        config = _workspace(tmp_path, emulator)
        with freeze_time(OUTSIDE, tick=True, ignore=REAL_CLOCK):
            result = run(config, "apply", "--auto-approve")
        assert emulator.stats()["put_requests"] == 1
    assert result.exit_code == 0, result.output
    assert "clock" not in result.output and "freeze" not in result.output


def test_a_freeze_that_begins_between_phases_stops_the_apply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Phase 1 runs before the window; the freeze is checked again before phase 2, which is not sent."""
    start = INSIDE - dt.timedelta(days=2)  # the day before the holiday freeze, by both clocks
    with emulator_at(start) as emulator:
        live = [r for r in live_records(emulator) if r.group_id == "ocp-qa"]
        attached = sorted(r.number for r in live if Field.MINIAPP_ID in r.fields)
        assert attached, "the seed has attached numbers in ocp-qa"
        gone = attached[0]  # pruned: Detach (phase 1), then Delete (phase 2)
        config = workspace(tmp_path, emulator.base_url, {"ocp-qa": True}, *FREEZE_BLOCK)
        write_desired(tmp_path, [r for r in live if r.number != gone], ["ocp-qa"])
        with freeze_time(start, tick=True, ignore=REAL_CLOCK) as frozen:
            send = OCPClient.execute

            def execute_then_midnight(self: OCPClient, body: bytes, **options: str) -> object:
                answer = send(self, body, **options)
                frozen.move_to(INSIDE)  # this machine's clock enters the window after the first file
                return answer

            monkeypatch.setattr(OCPClient, "execute", execute_then_midnight)
            result = run(config, "apply", "--auto-approve")
        assert emulator.stats()["put_requests"] == 1, result.output  # the Detach only
        assert gone in emulator.numbers()  # not deleted
    assert result.exit_code == 1, result.output
    assert "stopped before phase 2: a change freeze began during the apply: holiday freeze" in result.output
    assert "row(s) were not sent" in result.output


def test_override_freeze_given_for_the_run_covers_a_window_that_opens_during_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = INSIDE - dt.timedelta(days=2)
    journal = tmp_path / "journal.jsonl"
    with emulator_at(start) as emulator:
        live = [r for r in live_records(emulator) if r.group_id == "ocp-qa"]
        gone = sorted(r.number for r in live if Field.MINIAPP_ID in r.fields)[0]
        config = workspace(tmp_path, emulator.base_url, {"ocp-qa": True}, *FREEZE_BLOCK)
        write_desired(tmp_path, [r for r in live if r.number != gone], ["ocp-qa"])
        with freeze_time(start, tick=True, ignore=REAL_CLOCK) as frozen:
            send = OCPClient.execute

            def execute_then_midnight(self: OCPClient, body: bytes, **options: str) -> object:
                answer = send(self, body, **options)
                frozen.move_to(INSIDE)
                return answer

            monkeypatch.setattr(OCPClient, "execute", execute_then_midnight)
            result = run(
                config, "apply", "--auto-approve", "--override-freeze", "incident 7", "--journal", str(journal)
            )
        assert gone not in emulator.numbers()
    assert result.exit_code == 0, result.output
    [override] = [json.loads(line) for line in journal.read_text().splitlines() if '"freeze-override"' in line]
    assert override["reason"] == "incident 7" and override["phase"] == 2


def test_only_the_vendor_package_reads_the_date_header() -> None:
    root = Path(__file__).resolve().parents[1] / "numsync"
    readers = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if "parsedate" in p.read_text("utf-8") or 'headers.get("Date"' in p.read_text("utf-8")
    )
    assert "ocp/client.py" in readers and all(r.startswith("ocp/") for r in readers), readers  # retry.py: Retry-After


def test_a_window_that_opens_while_the_prompt_waits_refuses_after_the_yes(tmp_path: Path) -> None:
    """apply asks, the person answers after the window opened: refused before the first file."""
    start = INSIDE - dt.timedelta(days=2)
    with emulator_at(start) as emulator:
        config = _workspace(tmp_path, emulator)
        env = load_config(config).environment("test")
        with freeze_time(start, tick=True, ignore=REAL_CLOCK) as frozen:

            def yes_two_days_later(question: str) -> bool:
                frozen.move_to(INSIDE)
                return True

            request = ApplyRequest(env, interactive=True, environ=CREDENTIALS)
            with pytest.raises(FreezeRefusal, match="a change freeze is in force: holiday freeze"):
                run_apply(request, confirm=yes_two_days_later)
        assert emulator.stats()["put_requests"] == 0
