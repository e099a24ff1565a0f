"""Concurrent files within a phase (issue 16 item 2): overlap, phase order, 429 halving, stop and unknown outcomes.

The integration tests talk to the emulator over real HTTP; overlap is measured in the emulator
(``max_puts_in_flight``: PUTs between arrival and answer at once, the injected latency
included), never from wall time.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from cli_workspace import CREDENTIALS, emulator_process, live_records, run, workspace, write_desired

from numsync.config import DEFAULT_APPLY_CONCURRENCY, load_config
from numsync.core.model import Field, NumberRecord
from numsync.emulator.process import EmulatorProcess
from numsync.errors import ApiError, PlanningError
from numsync.ocp import Credentials, OCPAuth
from numsync.ocp.client import ExecuteResult, RowResult
from numsync.ocp.rows import Batch, OperationRow, Phase
from numsync.ocp.vocabulary import Operation
from numsync.workflow.apply import Concurrency, apply_plan, check_disjoint
from numsync.workflow.plan import Plan
from numsync.workflow.run_apply import ApplyRequest, run_apply

# --- the rules, without a server ------------------------------------------------------------------


def test_a_429_halves_the_concurrency_down_to_one() -> None:
    limiter = Concurrency(8)
    seen = []
    for _ in range(4):
        limiter.throttled()
        seen.append(limiter.limit)
    assert seen == [4, 2, 1, 1]
    assert [e.concurrency for e in limiter.take_events()] == [4, 2, 1, 1]
    assert limiter.take_events() == []


def test_429s_of_files_sent_before_the_last_halving_halve_only_once() -> None:
    limiter = Concurrency(8)
    # four workers' files left at the same rate; all four are answered 429
    entered = threading.Barrier(4)
    answered = threading.Barrier(4)

    def worker() -> None:
        with limiter.sending():
            entered.wait()  # every file left before any 429 came back
            answered.wait()
            limiter.throttled(0.0)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert limiter.limit == 4
    assert len(limiter.take_events()) == 4  # every 429 is still reported


def test_retry_after_holds_new_files_back() -> None:
    now = [100.0]
    limiter = Concurrency(4, clock=lambda: now[0])
    assert limiter.hold_off() == 0
    limiter.throttled(2.5)
    assert limiter.hold_off() == 2.5
    now[0] += 2.0
    assert limiter.hold_off() == pytest.approx(0.5)
    now[0] += 1.0
    assert limiter.hold_off() == 0


def test_concurrency_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Concurrency(0)


def test_a_phase_naming_a_number_twice_is_refused_before_anything_is_sent() -> None:
    update = OperationRow(Operation.UPDATE, "+442079460001", {"NOTE": "x"})
    plan = Plan("test", [Phase((Batch((update,)), Batch((update,))))], [])
    sent: list[bytes] = []

    class Recorder:
        def execute(self, body: bytes, *, filename: str = "") -> object:
            sent.append(body)
            raise AssertionError("nothing may be sent")

    with pytest.raises(PlanningError, match="phase 1 twice"):
        check_disjoint(plan)
    with pytest.raises(PlanningError):
        apply_plan(plan, Recorder(), concurrency=4)  # type: ignore[arg-type]
    assert sent == []


def test_threads_needing_a_token_at_once_log_in_once() -> None:
    logins = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            logins.append(request)
            time.sleep(0.2)  # every other thread arrives while this login is on its way
            return httpx.Response(200, json={"access_token": "tok-abcdefgh", "expires_in": 300})
        return httpx.Response(200, json={})

    auth = OCPAuth("https://ocp.test/auth/token", Credentials(username="u", password="p"))
    with httpx.Client(auth=auth, transport=httpx.MockTransport(handler)) as client:
        threads = [threading.Thread(target=client.get, args=("https://ocp.test/x",)) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(logins) == 1


# --- against the emulator ------------------------------------------------------------------------


def edited(
    tmp_path: Path, emulator: EmulatorProcess, notes: int, detach: int = 0, *extra: str
) -> tuple[Path, list[NumberRecord]]:
    """uk-care with ``notes`` unattached numbers' NOTE edited and ``detach`` attached numbers detached and edited."""
    config = workspace(tmp_path, emulator.base_url, {"uk-care": False}, *extra)
    records = sorted((r for r in live_records(emulator) if r.group_id == "uk-care"), key=lambda r: r.number)
    plain = [r for r in records if not r.get(Field.MINIAPP_ID)][:notes]
    attached = [r for r in records if r.get(Field.MINIAPP_ID)][-detach:] if detach else []  # the last numbers
    assert len(plain) == notes and len(attached) == detach
    changed = []
    for r in records:
        fields = dict(r.fields)
        if r in plain or r in attached:
            fields[Field.NOTE] = f"edited {r.number}"
        if r in attached:
            del fields[Field.MINIAPP_ID]
        changed.append(type(r)(r.number, r.group_id, fields, provider="twilio"))
    write_desired(tmp_path, changed, ["uk-care"])
    return config, plain + attached


def journal(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def written_ahead(events: list[dict[str, object]]) -> None:
    """Every file is journaled as sending before its answer, and every file sent is answered exactly once."""
    sending = [(e["phase"], e["batch"]) for e in events if e["event"] == "sending"]
    answered = [(e["phase"], e["batch"]) for e in events if e["event"] == "request" and e["rows"]]
    assert sorted(sending) == sorted(answered) and len(set(sending)) == len(sending)
    for key in sending:
        sent_at = next(i for i, e in enumerate(events) if e["event"] == "sending" and (e["phase"], e["batch"]) == key)
        answered_at = next(
            i for i, e in enumerate(events) if e["event"] == "request" and (e["phase"], e["batch"]) == key
        )
        assert sent_at < answered_at


def latency(tmp_path: Path, seconds: float, *rules: str) -> Path:
    faults = tmp_path / "faults.yaml"
    faults.write_text(
        "".join(f"- {rule}\n" for rule in rules) + f"- {{target: put, kind: latency, seconds: {seconds}}}\n"
    )
    return faults


@pytest.mark.parametrize("concurrency", [1, 3])
def test_files_of_a_phase_overlap_up_to_apply_concurrency(tmp_path: Path, concurrency: int) -> None:
    faults = latency(tmp_path, 0.4)
    with emulator_process("--faults", str(faults), "--limit", "Update=1") as emulator:
        config, numbers = edited(tmp_path, emulator, 7, 0, "limits: {Update: 1}", f"apply_concurrency: {concurrency}")
        log = tmp_path / "journal.jsonl"
        result = run(config, "apply", "--auto-approve", "--journal", str(log))
        assert result.exit_code == 0, result.output
        stats = emulator.stats()
        assert stats["put_requests"] == 7
        assert stats["max_puts_in_flight"] == concurrency
        assert stats["puts_in_flight"] == 0
        notes = {r.number: r.get(Field.NOTE) for r in live_records(emulator)}
    assert all(notes[r.number] == f"edited {r.number}" for r in numbers)
    events = journal(log)
    written_ahead(events)
    start = next(e for e in events if e["event"] == "apply-start")
    end = events[-1]
    assert start["concurrency"] == concurrency
    assert end["event"] == "apply-end" and end["requests_sent"] == 7 and end["applied"] == 7
    assert end["throttled"] == 0 and end["concurrency"] == concurrency


def test_the_default_concurrency_applies_without_a_setting(tmp_path: Path) -> None:
    faults = latency(tmp_path, 0.3)
    with emulator_process("--faults", str(faults), "--limit", "Update=1") as emulator:
        config, _ = edited(tmp_path, emulator, 6, 0, "limits: {Update: 1}")
        assert load_config(config).environment("test").apply_concurrency == DEFAULT_APPLY_CONCURRENCY
        assert run(config, "apply", "--auto-approve").exit_code == 0
        assert emulator.stats()["max_puts_in_flight"] == min(6, DEFAULT_APPLY_CONCURRENCY)


def test_phases_stay_in_order_while_their_files_overlap(tmp_path: Path) -> None:
    # six note edits and two detach-then-edit (the last numbers, so the edits go first): phase 1 = six
    # files (the Detaches ride with two of them), phase 2 = the two later Updates; each file waits 0.3 s
    faults = latency(tmp_path, 0.3)
    with emulator_process("--faults", str(faults), "--limit", "Update=1", "--limit", "Detach=1") as emulator:
        config, _ = edited(tmp_path, emulator, 6, 2, "limits: {Update: 1, Detach: 1}", "apply_concurrency: 4")
        plan_file = tmp_path / "plan.json"
        assert run(config, "plan", "--out", str(plan_file)).exit_code == 0
        phases = json.loads(plan_file.read_text())["phases"]
        assert [len(p) for p in phases] == [6, 2]  # the shape this test is about
        log = tmp_path / "journal.jsonl"
        result = run(config, "apply", str(plan_file), "--journal", str(log))
        assert result.exit_code == 0, result.output
        assert emulator.stats()["max_puts_in_flight"] == 4
        carried_out = httpx.get(f"{emulator.url}/_emulator/log").json()
    events = journal(log)
    written_ahead(events)
    index = {
        (e["event"], e["phase"], e["batch"]): i for i, e in enumerate(events) if e["event"] in ("sending", "request")
    }
    last_answer_of_1 = max(i for (kind, p, _), i in index.items() if kind == "request" and p == 1)
    first_send_of_2 = min(i for (kind, p, _), i in index.items() if kind == "sending" and p == 2)
    assert last_answer_of_1 < first_send_of_2
    # and OCP carried out every row of phase 1 before any of phase 2
    phase = {(row["OPERATION"], row["NUMBER"]): k for k, files in enumerate(phases, 1) for f in files for row in f}
    phase_of = [phase[(entry["OPERATION"], entry["NUMBER"])] for entry in carried_out]
    assert len(phase_of) == 10 and phase_of == sorted(phase_of)


def test_a_429_halves_the_files_in_flight_and_waits_its_retry_after(tmp_path: Path) -> None:
    faults = latency(tmp_path, 0.3, '{target: put, kind: status, status: 429, retry_after: "1", times: 1}')
    with emulator_process("--faults", str(faults), "--limit", "Update=1") as emulator:
        config, _ = edited(tmp_path, emulator, 10, 0, "limits: {Update: 1}", "apply_concurrency: 4")
        log = tmp_path / "journal.jsonl"
        result = run(config, "apply", "--auto-approve", "--journal", str(log))
        assert result.exit_code == 0, result.output
        assert emulator.stats()["rows_applied"] == 10
    assert "OCP asked to slow down (HTTP 429), waiting 1s: 2 file(s) at once from now on" in result.output
    events = journal(log)
    written_ahead(events)
    retries = [e for e in events if e["event"] == "retry"]
    assert len(retries) == 1 and retries[0]["reason"] == "HTTP 429"  # the refused file was sent again, once
    throttled = [e for e in events if e["event"] == "throttled"]
    assert throttled == [throttled[0]] and throttled[0]["concurrency"] == 2 and throttled[0]["retry_after"] == 1.0
    assert events[-1]["throttled"] == 1 and events[-1]["concurrency"] == 2
    # from the 429 on: no new file for a second, then never more than two in flight
    retry = next(i for i, e in enumerate(events) if e["event"] == "retry")
    retry_at = dt.datetime.fromisoformat(str(events[retry]["ts"]))
    later = [i for i, e in enumerate(events) if e["event"] == "sending" and i > retry]
    assert later, "files were left to send after the 429"
    assert dt.datetime.fromisoformat(str(events[later[0]]["ts"])) - retry_at >= dt.timedelta(seconds=0.95)
    outstanding: set[tuple[object, object]] = set()
    for i, e in enumerate(events):
        key = (e.get("phase"), e.get("batch"))
        if e["event"] == "sending":
            outstanding.add(key)
            if i in later:
                assert len(outstanding) <= 2
        elif e["event"] == "request":
            outstanding.discard(key)


def test_a_stop_mid_phase_lets_the_files_in_flight_finish_and_sends_nothing_new(tmp_path: Path) -> None:
    faults = latency(tmp_path, 0.5)
    with emulator_process("--faults", str(faults), "--limit", "Update=1") as emulator:
        config, _ = edited(tmp_path, emulator, 6, 0, "limits: {Update: 1}", "apply_concurrency: 2")
        env = load_config(config).environment("test")
        log = tmp_path / "journal.jsonl"
        asked = []

        def should_stop() -> str | None:
            asked.append(time.monotonic())
            return "test asked to stop" if len(asked) > 2 else None  # two files leave, then the stop

        outcome = run_apply(
            ApplyRequest(env, auto_approve=True, journal=log, environ=CREDENTIALS, should_stop=should_stop)
        )
        assert emulator.stats()["put_requests"] == 2
        assert emulator.stats()["rows_applied"] == 2
    assert outcome.result is not None and outcome.result.stopped
    assert outcome.result.requests == 2 and outcome.result.applied == 2
    assert "stopped before phase 1 batch 3: test asked to stop. 4 row(s) were not sent" in str(
        outcome.result.interrupted
    )
    events = journal(log)
    written_ahead(events)
    assert [e["event"] for e in events if e["event"] in ("sending", "request")].count("request") == 2
    assert events[-1]["event"] == "apply-end" and events[-1]["requests_sent"] == 2


def test_an_unknown_outcome_mid_phase_sends_nothing_new_until_live_is_read_again(tmp_path: Path) -> None:
    faults = latency(tmp_path, 0.5, "{target: put, kind: status_after, status: 502, times: 1}")
    with emulator_process("--faults", str(faults), "--limit", "Update=1") as emulator:
        config, numbers = edited(
            tmp_path,
            emulator,
            6,
            0,
            "limits: {Update: 1}",
            "apply_concurrency: 3",
            "settle: {interval: 0.2, timeout: 20}",
        )
        log = tmp_path / "journal.jsonl"
        result = run(config, "apply", "--auto-approve", "--journal", str(log))
        assert result.exit_code == 0, result.output
        assert emulator.stats()["rows_applied"] == 6  # the file whose answer was lost was not sent again
        notes = {r.number: r.get(Field.NOTE) for r in live_records(emulator)}
    assert all(notes[r.number] == f"edited {r.number}" for r in numbers)
    events = journal(log)
    kinds = [e["event"] for e in events]
    unknown = next(i for i, e in enumerate(events) if e["event"] == "request" and e["ambiguous"])
    replan = kinds.index("replan")
    assert "sending" not in kinds[unknown:replan]  # nothing new left between the unknown answer and the re-plan
    # the files that were in flight with it were answered and journaled before the re-plan
    first_round = [e for e in events[:replan] if e["event"] == "sending"]
    answered = [e for e in events[:replan] if e["event"] == "request"]
    assert len(first_round) == len(answered) == 3


def test_an_answer_already_in_stops_the_next_file_even_with_room_left() -> None:
    """With room for three files, an unknown outcome already answered keeps the third file from leaving."""
    rows = [OperationRow(Operation.UPDATE, f"+44207946000{i}", {"NOTE": "x"}) for i in range(1, 5)]
    plan = Plan("test", [Phase(tuple(Batch((r,)) for r in rows))], [])
    sent: list[str] = []
    lock = threading.Lock()

    class Tenant:
        def execute(self, body: bytes, *, filename: str = "") -> ExecuteResult:
            with lock:
                sent.append(filename)
            if filename.endswith("batch001.csv"):
                raise ApiError("upload refused by OCP: HTTP 502", status=502)  # outcome unknown
            time.sleep(0.3)
            return ExecuteResult(200, [RowResult(1, "", "Update", True)])

    def slow_stop() -> None:
        time.sleep(0.2)  # the first answer is in long before the third file is due
        return None

    recorded = []
    result = apply_plan(plan, Tenant(), concurrency=3, should_stop=slow_stop, on_batch=recorded.append)  # type: ignore[arg-type]
    assert "phase01-batch003.csv" not in sent and "phase01-batch004.csv" not in sent
    assert sorted((o.batch, o.ambiguous) for o in recorded) == [(b, b == 1) for b in range(1, len(sent) + 1)]
    assert result.interrupted is not None and "outcome of that file is unknown" in result.interrupted
