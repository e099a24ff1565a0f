"""Ambiguous writes settle before anything is re-planned or verified, and a second writer stops apply.

Against the emulator over real HTTP with the faults that make it hard: a file OCP finishes
after its answer was lost (``late``), an export behind its writes (``lag``), another writer
between two files (``writer``). The settling rule itself is unit-tested with a scripted
client and a fake clock.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from cli_workspace import CREDENTIALS, emulator_process, live_records, wait_for, workspace, write_desired

from numsync.config import Environment, Settle, load_config
from numsync.core.diff import Diff
from numsync.core.model import Field, NumberRecord
from numsync.core.policy import GroupPolicy
from numsync.core.safety import Overrides
from numsync.emulator.process import EmulatorProcess
from numsync.errors import UnsettledError
from numsync.ocp.csvcodec import ExportRead, read_export
from numsync.ocp.vocabulary import COLUMN, EXPORT_COLUMNS
from numsync.workflow.events import ApplyObserver
from numsync.workflow.run_apply import ApplyRequest, run_apply
from numsync.workflow.settle import settle

SETTLE = "settle: {interval: %s, timeout: 20}"


def faulty(tmp_path: Path, rules: list[dict]) -> EmulatorProcess:
    spec = tmp_path / "faults.yaml"
    spec.write_text(yaml.safe_dump(rules))
    return emulator_process("--faults", str(spec))


def environment(tmp_path: Path, emu: EmulatorProcess, desired: list[NumberRecord], interval: float) -> Environment:
    groups = ["ocp-qa", "uk-care"]
    config = workspace(tmp_path, emu.base_url, {g: False for g in groups}, SETTLE % interval)
    write_desired(tmp_path, desired, groups)
    return load_config(config).environment("test")


def managed(emu: EmulatorProcess) -> list[NumberRecord]:
    return [r for r in live_records(emu) if r.group_id in ("ocp-qa", "uk-care")]


def journal_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_late_delete_after_a_timeout_does_not_remove_the_re_created_number(tmp_path: Path) -> None:
    # the first file (the Delete of a replacement) times out: OCP carries it out 4 s later,
    # after recovery has resent the Delete and re-created the number in its new group
    rules = [{"target": "put", "kind": "late", "status": 504, "seconds": 4.0, "times": 1}]
    with faulty(tmp_path, rules) as emu:
        live = managed(emu)
        moving = next(r for r in live if r.group_id == "ocp-qa" and not r.get(Field.MINIAPP_ID))
        desired = [r for r in live if r.number != moving.number] + [
            NumberRecord(moving.number, "uk-care", {Field.NOTE: "moved"}, provider="twilio")
        ]
        env = environment(tmp_path, emu, desired, 0.2)
        journal = tmp_path / "journal.jsonl"
        request = ApplyRequest(
            env, overrides=Overrides(allow_replace=True), auto_approve=True, journal=journal, environ=CREDENTIALS
        )
        outcome = run_apply(request)
        assert outcome.result is not None and outcome.result.unknown_outcomes == 1
        assert emu.stats()["put_requests"] == outcome.result.requests - 1, "the late Delete must land after apply"
        sent = [row for e in journal_events(journal) if e["event"] == "sending" for row in e["rows"]]
        assert sent == [f"Delete {moving.number}"] * 2 + [f"Create {moving.number}", f"Update {moving.number}"]
        assert outcome.exit_code == 0 and outcome.remaining is not None and outcome.remaining.empty

        assert wait_for(
            lambda: emu.stats()["put_requests"] == outcome.result.requests, seconds=20
        )  # the late Delete ran
        number = emu.numbers().get(moving.number)
        assert number is not None, "the late Delete released the re-created number"
        assert (number["GROUP_ID"], number["NOTE"]) == ("uk-care", "moved")


class VerifiedWhen(ApplyObserver):
    """Records, at the moment apply claims a result, how many PUTs the emulator has processed."""

    def __init__(self, emu: EmulatorProcess) -> None:
        self.emu, self.processed, self.remaining, self.settled_count = emu, -1, None, 0

    def settled(self, exports: int, seconds: float) -> None:
        self.settled_count += 1

    def verified(self, remaining: Diff) -> None:
        self.processed, self.remaining = self.emu.stats()["put_requests"], remaining


def test_apply_does_not_claim_verified_before_a_late_write_has_landed(tmp_path: Path) -> None:
    rules = [{"target": "put", "kind": "late", "status": 502, "seconds": 0.6, "times": 1}]
    with faulty(tmp_path, rules) as emu:
        live = managed(emu)
        changed = replace(live[0], fields={**live[0].fields, Field.NOTE: "late but landed"})
        env = environment(tmp_path, emu, [changed, *live[1:]], 1.0)
        observer = VerifiedWhen(emu)
        outcome = run_apply(ApplyRequest(env, auto_approve=True, environ=CREDENTIALS), observer)
        assert outcome.result is not None
        # the settled export showed the late write: nothing was resent
        assert outcome.result.requests == 1 and outcome.result.unknown_outcomes == 1
        assert observer.processed == 1, "Verified was claimed while OCP was still processing a file"
        assert observer.remaining is not None and observer.remaining.empty
        assert emu.numbers()[changed.number]["NOTE"] == "late but landed"
        assert observer.settled_count >= 2  # after the unknown outcome, and before the verify


def test_a_lagging_export_is_waited_out_before_verify(tmp_path: Path) -> None:
    with faulty(tmp_path, [{"target": "export", "kind": "lag", "seconds": 0.5}]) as emu:
        live = managed(emu)
        changed = replace(live[0], fields={**live[0].fields, Field.NOTE: "seen late"})
        env = environment(tmp_path, emu, [changed, *live[1:]], 0.8)
        observer = VerifiedWhen(emu)
        outcome = run_apply(ApplyRequest(env, auto_approve=True, environ=CREDENTIALS), observer)
        assert outcome.exit_code == 0 and observer.remaining is not None and observer.remaining.empty
        assert observer.settled_count == 1  # the first read after the write was stale: it settled, then verified


def test_another_writer_between_phases_stops_apply(tmp_path: Path) -> None:
    with emulator_process() as probe:
        live = managed(probe)
    attached = next(r for r in live if r.group_id == "ocp-qa" and r.get(Field.MINIAPP_ID))
    bystander = next(r for r in live if r.group_id == "uk-care")
    rules = [{"target": "put", "kind": "writer", "number": bystander.number, "times": 1}]
    with faulty(tmp_path, rules) as emu:
        detached = {f: v for f, v in attached.fields.items() if f is not Field.MINIAPP_ID}
        desired = [r for r in live if r.number != attached.number] + [
            replace(attached, fields={**detached, Field.NOTE: "two phases"})
        ]  # Detach, then Update: two phases
        env = environment(tmp_path, emu, desired, 0.2)
        outcome = run_apply(ApplyRequest(env, auto_approve=True, environ=CREDENTIALS))
        assert outcome.result is not None and outcome.result.stopped and outcome.exit_code == 1
        assert outcome.result.interrupted is not None
        assert "another writer" in outcome.result.interrupted and bystander.number in outcome.result.interrupted
        assert emu.stats()["put_requests"] == 1  # nothing more was sent
        assert emu.numbers()[attached.number]["NOTE"] != "two phases"


# --- the settling rule, without a network --------------------------------------------------------


def write_export(records: list[NumberRecord]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for r in records:
        cells = {"NUMBER": r.number, "GROUP_ID": r.group_id, **{COLUMN[f]: v for f, v in r.fields.items()}}
        writer.writerow([cells.get(c, "") for c in EXPORT_COLUMNS])
    return out.getvalue().encode()


class Scripted:
    """A client whose exports are given in order (the last one repeats)."""

    def __init__(self, *exports: list[NumberRecord]) -> None:
        self.exports, self.calls = list(exports), 0

    def export(self) -> bytes:
        self.calls += 1
        return write_export(self.exports[min(self.calls, len(self.exports)) - 1])

    def export_records(self, on_progress: object = None) -> ExportRead:
        return read_export(self.export())  # as OCPReader reads it, through the same parser


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


A = [NumberRecord("+12015550100", "ocp-qa", {Field.NOTE: "a"})]
B = [NumberRecord("+12015550100", "ocp-qa", {Field.NOTE: "b"})]
UNMANAGED_MOVES = [*A, NumberRecord("+12015550101", "elsewhere", {Field.NOTE: "x"})]


def env_with(settle_: Settle) -> Environment:
    return Environment(
        "t", "http://127.0.0.1:1", "http://127.0.0.1:1/t", Path("."), {"ocp-qa": GroupPolicy("ocp-qa")}, settle=settle_
    )


def test_live_settles_when_two_consecutive_exports_agree() -> None:
    clock, client = Clock(), Scripted(A, B, B)
    settled = settle(client, env_with(Settle(interval=2, timeout=60)), sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]
    assert (settled.exports, settled.seconds, client.calls) == (3, 4.0, 3)
    assert settled.live[0].get(Field.NOTE) == "b"


def test_only_managed_groups_must_agree() -> None:
    clock, client = Clock(), Scripted(A, UNMANAGED_MOVES)
    settled = settle(client, env_with(Settle(interval=1, timeout=60)), sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]
    assert settled.exports == 2


def test_live_that_keeps_moving_is_reported_within_the_timeout() -> None:
    clock, client = Clock(), Scripted(*([A, B] * 50))
    with pytest.raises(UnsettledError, match=r"did not settle within 10 s: 6 export\(s\) 2 s apart"):
        settle(client, env_with(Settle(interval=2, timeout=10)), sleep=clock.sleep, clock=clock)  # type: ignore[arg-type]
    assert clock.now <= 10
