"""Run a plan against OCP, batch by batch, phase by phase.

Rows of a number that failed are followed by nothing for that number: its later
operations are skipped (they depend on it), everything independent goes on. A file
that OCP refused as a whole counts as failed for each of its rows; a refusal every later file
would meet too (no licences, a role that cannot write, a token a fresh login did not cure: see
numsync.ocp.answers) stops the run there, nothing more is sent. An answer whose
outcome is unknown (transport error; 202, or 2xx without readable per-row results; 402, 409,
5xx or any status not in :data:`REFUSED_BEFORE_PROCESSING`) stops the run
without retrying: the caller re-exports and plans again, never resending blindly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from numsync.errors import ApiError
from numsync.ocp.answers import REFUSED_BEFORE_PROCESSING
from numsync.ocp.client import ExecuteResult
from numsync.ocp.csvcodec import upload_file_name, write_operations
from numsync.ocp.rows import OperationRow
from numsync.workflow.plan import Plan


class Executor(Protocol):
    """What apply needs from the API client."""

    def execute(self, body: bytes, *, filename: str = ...) -> ExecuteResult: ...


@dataclass(frozen=True, slots=True)
class RowFailure:
    """A row OCP did not apply and why (its message, or the whole file's refusal)."""

    row: OperationRow
    message: str


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What happened to one uploaded file: ``phase`` and ``batch`` are 1-based."""

    phase: int
    batch: int
    rows: int
    status: int | None
    failures: tuple[RowFailure, ...] = ()
    skipped: tuple[OperationRow, ...] = ()
    error: str | None = None
    ambiguous: bool = False  # sent, but whether OCP applied it is unknown
    refuses_all: bool = False  # refused for a reason every later file would meet too: nothing more is sent
    seconds: float = 0.0
    rows_sent: tuple[OperationRow, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The outcome as journal data (no secrets: rows, status, failures, timing)."""
        return {
            "phase": self.phase,
            "batch": self.batch,
            "rows": [f"{r.operation.value} {r.number}" for r in self.rows_sent],
            "status": self.status,
            "failed": [{"row": f"{f.row.operation.value} {f.row.number}", "message": f.message} for f in self.failures],
            "skipped": [f"{r.operation.value} {r.number}" for r in self.skipped],
            "error": self.error,
            "ambiguous": self.ambiguous,
            "seconds": round(self.seconds, 3),
        }


@dataclass(slots=True)
class ApplyResult:
    """The outcome of a whole apply.

    ``applied``: rows OCP accepted (or did not report as failed); ``failures``: rows that
    failed with the reason; ``skipped``: rows not sent because an earlier row of the same
    number failed; ``interrupted``: the sentence explaining why the run stopped early, if it did.
    """

    requests: int = 0
    applied: int = 0
    failures: list[RowFailure] = field(default_factory=list)
    skipped: list[OperationRow] = field(default_factory=list)
    interrupted: str | None = None
    unknown_outcomes: int = 0  # files sent whose outcome was unknown (each then settled and re-planned)
    stopped: bool = False  # by a signal, another writer or a refusal of every file: nothing more is to be sent

    @property
    def ok(self) -> bool:
        """True when every row was applied."""
        return not self.failures and not self.skipped and self.interrupted is None


def apply_plan(
    plan: Plan,
    client: Executor,
    *,
    on_batch: Callable[[BatchOutcome], None] | None = None,
    on_sending: Callable[[int, int, Sequence[OperationRow]], None] | None = None,
    should_stop: Callable[[], str | None] | None = None,
    before_phase: Callable[[int], str | None] | None = None,
) -> ApplyResult:
    """Upload every batch of ``plan`` in order; see the module doc for failure handling.

    ``on_sending(phase, batch, rows)`` runs before each PUT leaves (a write-ahead journal entry),
    ``on_batch(outcome)`` after its answer. ``should_stop()`` is asked before each file; when it
    names a reason (a signal), nothing more is sent: the file in flight always finishes first.
    ``before_phase(p)`` is asked before each phase after the first; a reason it names (another
    writer) stops the run the same way.
    """
    result = ApplyResult()
    failed_numbers: set[str] = set()
    total_rows = sum(len(p.rows) for p in plan.phases)
    for p, phase in enumerate(plan.phases, start=1):
        refusal = before_phase(p) if before_phase and p > 1 and phase.batches else None
        if refusal:
            done = result.applied + len(result.failures) + len(result.skipped)
            result.interrupted = f"{refusal}. {total_rows - done} row(s) were not sent."
            result.stopped = True
            return result
        for b, batch in enumerate(phase.batches, start=1):
            rows = [r for r in batch.rows if r.number not in failed_numbers]
            skipped = tuple(r for r in batch.rows if r.number in failed_numbers)
            result.skipped.extend(skipped)
            stop = should_stop() if should_stop and rows else None
            if stop:
                done = result.applied + len(result.failures) + len(result.skipped) - len(skipped)
                result.skipped = result.skipped[: len(result.skipped) - len(skipped)]
                result.interrupted = (
                    f"stopped before phase {p} batch {b}: {stop}. {total_rows - done} row(s) were not sent; "
                    "every file sent before finished. Run plan again: it starts from the live state."
                )
                result.stopped = True
                return result
            if not rows:
                outcome = BatchOutcome(p, b, 0, None, skipped=skipped)
            else:
                if on_sending:
                    on_sending(p, b, rows)
                outcome = _upload(p, b, rows, skipped, client)
                result.requests += 1
                result.failures.extend(outcome.failures)
                failed_numbers.update(f.row.number for f in outcome.failures)
                if not outcome.ambiguous:
                    result.applied += len(rows) - len(outcome.failures)
            if on_batch:
                on_batch(outcome)
            if outcome.refuses_all:
                done = result.applied + len(result.failures) + len(result.skipped)
                result.interrupted = (
                    f"stopped after phase {p} batch {b}: {outcome.error}. OCP would refuse every later file for "
                    f"the same reason, so {total_rows - done} later row(s) were not sent; fix it, then run plan again."
                )
                result.stopped = True
                return result
            if outcome.ambiguous:
                done = result.applied + len(result.failures) + len(result.skipped)
                result.interrupted = (
                    f"stopped after phase {p} batch {b}: {outcome.error}. The outcome of that file is unknown; "
                    f"{total_rows - done} later row(s) were not sent. Run plan again: it starts from the live state."
                )
                return result
    return result


def _upload(
    phase: int, batch: int, rows: list[OperationRow], skipped: tuple[OperationRow, ...], client: Executor
) -> BatchOutcome:
    started = time.monotonic()
    outcome = _send(phase, batch, rows, skipped, client)
    return replace(outcome, seconds=time.monotonic() - started, rows_sent=tuple(rows))


def _send(
    phase: int, batch: int, rows: list[OperationRow], skipped: tuple[OperationRow, ...], client: Executor
) -> BatchOutcome:
    body = write_operations(rows)
    try:
        answer = client.execute(body, filename=upload_file_name(phase, batch))
    except ApiError as exc:
        # Only these statuses say nothing in the file was applied; any other (402, 409, 5xx...) is ambiguous.
        refused = exc.status in REFUSED_BEFORE_PROCESSING or not exc.sent
        failures = tuple(RowFailure(r, str(exc)) for r in rows) if refused else ()
        return BatchOutcome(
            phase,
            batch,
            len(rows),
            exc.status,
            failures,
            skipped,
            str(exc),
            ambiguous=not refused,
            refuses_all=refused and exc.every_file,
        )
    if answer.status == 202 or answer.rows is None:
        # accepted for later, or no readable per-row results: which rows were applied is unknown
        why = "accepted it for later processing" if answer.status == 202 else "gave no readable per-row results"
        error = f"OCP answered HTTP {answer.status} but {why}, so whether the file was applied is unknown"
        return BatchOutcome(phase, batch, len(rows), answer.status, (), skipped, error, ambiguous=True)
    failures = tuple(
        RowFailure(rows[f.row - 1] if 0 < f.row <= len(rows) else _by_number(rows, f.number), f.message)
        for f in answer.failed
    )
    return BatchOutcome(phase, batch, len(rows), answer.status, failures, skipped)


def _by_number(rows: list[OperationRow], number: str) -> OperationRow:
    return next((r for r in rows if r.number == number), rows[0])
