"""Run a plan against OCP, batch by batch, phase by phase.

Rows of a number that failed are followed by nothing for that number: its later
operations are skipped (they depend on it), everything independent goes on. A file
that OCP refused as a whole counts as failed for each of its rows; a refusal every later file
would meet too (no licences, a role that cannot write, a token a fresh login did not cure: see
numsync.ocp.answers) stops the run there, nothing more is sent. An answer whose
outcome is unknown (transport error; 202, or 2xx without readable per-row results; 402, 409,
5xx or any status not in :data:`REFUSED_BEFORE_PROCESSING`) stops the run
without retrying: the caller re-exports and plans again, never resending blindly.

Files of one phase touch disjoint numbers (compile.phases_of makes phases so; apply checks
it before sending anything), so up to :class:`Concurrency` of them are in flight at once;
phases stay strictly ordered: every file of phase *k* is answered before phase *k + 1*
starts. Bookkeeping stays on the calling thread: ``on_sending`` runs before a file is handed
to a worker, ``on_batch`` when its answer is in (answers of one phase may come in any order).
An unknown outcome, a stop request or an error stops sending: files already in flight
finish and are recorded first. A 429 halves the concurrency (floor 1) and holds new files
back for its ``Retry-After``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol

from numsync.errors import ApiError, PlanningError
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
    ``planned``: the rows of the plan applied; those neither applied, failed nor skipped were
    not sent (the run stopped first) or their outcome is unknown.
    """

    requests: int = 0
    applied: int = 0
    failures: list[RowFailure] = field(default_factory=list)
    skipped: list[OperationRow] = field(default_factory=list)
    interrupted: str | None = None
    unknown_outcomes: int = 0  # files sent whose outcome was unknown (each then settled and re-planned)
    stopped: bool = False  # by a signal, another writer or a refusal of every file: nothing more is to be sent
    concurrency: int = 1  # files in flight at once at the end of the run (lower than configured after a 429)
    throttled: int = 0  # times OCP answered 429 (each may have halved the concurrency)
    planned: int = 0

    @property
    def unsent(self) -> int:
        """Rows of the plan neither applied, failed nor skipped: not sent, or sent with an outcome unknown."""
        return max(0, self.planned - self.applied - len(self.failures) - len(self.skipped))

    @property
    def ok(self) -> bool:
        """True when every row was applied."""
        return not self.failures and not self.skipped and self.interrupted is None


@dataclass(frozen=True, slots=True)
class Throttled:
    """OCP answered 429: ``concurrency`` files may be in flight from now on; ``retry_after`` seconds before the next."""

    concurrency: int
    retry_after: float | None


class Concurrency:
    """How many files of a phase may be in flight at once, lowered when OCP says it is too many.

    Starts at ``limit`` (the environment's ``apply_concurrency``). :meth:`throttled` — called
    by the client's transport on every 429, from whichever thread sent the request — halves it
    (floor 1) and holds new files back until the ``Retry-After`` has passed. A burst of 429s
    answering files that left before the last halving halves only once: those files were sent
    at the old rate. It never rises again within a run; the next run starts at ``limit``.
    Thread-safe.
    """

    def __init__(self, limit: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1:
            raise ValueError(f"concurrency must be at least 1, not {limit}")
        self.initial = limit
        self._limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._generation = 0  # bumped at every halving
        self._resume_at = 0.0
        self._events: list[Throttled] = []
        self._sender = threading.local()  # the generation the current thread's file left at

    @property
    def limit(self) -> int:
        """Files that may be in flight now."""
        with self._lock:
            return self._limit

    @contextmanager
    def sending(self) -> Iterator[None]:
        """Around one upload on a worker thread: its 429s are judged against the rate it left at."""
        with self._lock:
            self._sender.generation = self._generation
        try:
            yield
        finally:
            self._sender.generation = None

    def throttled(self, retry_after: float | None = None) -> None:
        """OCP answered 429 (its Retry-After, or the backoff the client waits, in seconds)."""
        with self._lock:
            sent_at = getattr(self._sender, "generation", None)
            if sent_at is None or sent_at == self._generation:
                self._limit = max(1, self._limit // 2)
                self._generation += 1
            if getattr(self._sender, "generation", None) is not None:
                self._sender.generation = self._generation  # its retry leaves at the new rate
            if retry_after:
                self._resume_at = max(self._resume_at, self._clock() + retry_after)
            self._events.append(Throttled(self._limit, retry_after))

    def hold_off(self) -> float:
        """Seconds before a new file may leave (a Retry-After still running), else 0."""
        with self._lock:
            return max(0.0, self._resume_at - self._clock())

    def take_events(self) -> list[Throttled]:
        """The 429s seen since the last call, oldest first."""
        with self._lock:
            events, self._events = self._events, []
            return events


def check_disjoint(plan: Plan) -> None:
    """Refuse a plan with a number twice in one phase: its files could not run side by side. Raises PlanningError.

    compile.phases_of never makes one; a plan built or edited by hand might.
    """
    for p, phase in enumerate(plan.phases, start=1):
        seen: dict[str, int] = {}
        for b, batch in enumerate(phase.batches, start=1):
            for row in batch.rows:
                if row.number in seen:
                    raise PlanningError(
                        {
                            row.number: f"is in phase {p} twice (batches {seen[row.number]} and {b}); the files of a "
                            "phase run side by side, so a number may appear in only one of them: run plan again"
                        }
                    )
                seen[row.number] = b


@dataclass(slots=True)
class _Halt:
    """Why nothing new is sent any more; files in flight still finish."""

    ambiguous: BatchOutcome | None = None
    refused_all: BatchOutcome | None = None  # a refusal every later file would meet too (numsync.ocp.answers)
    stop: str | None = None
    stop_at: tuple[int, int] = (0, 0)
    error: BaseException | None = None


def apply_plan(
    plan: Plan,
    client: Executor,
    *,
    on_batch: Callable[[BatchOutcome], None] | None = None,
    on_sending: Callable[[int, int, Sequence[OperationRow]], None] | None = None,
    should_stop: Callable[[], str | None] | None = None,
    before_phase: Callable[[int], str | None] | None = None,
    concurrency: Concurrency | int = 1,
    on_throttled: Callable[[Throttled], None] | None = None,
) -> ApplyResult:
    """Upload every batch of ``plan``, phase by phase; see the module doc for failure handling.

    ``on_sending(phase, batch, rows)`` runs before each PUT leaves (a write-ahead journal entry),
    ``on_batch(outcome)`` after its answer, both on the calling thread. ``should_stop()`` is
    asked before each file; when it names a reason (a signal), nothing more is sent: the files
    in flight always finish first. ``before_phase(p)`` is asked before each phase after the
    first; a reason it names (another writer) stops the run the same way. ``concurrency``:
    files in flight at once within a phase (1: one after the other, on the calling thread);
    pass a :class:`Concurrency` that the client's transport also tells about 429s.
    ``on_throttled`` hears of each 429. An exception from the client (no token) is raised
    once the files in flight are recorded. Raises PlanningError before sending anything
    when a phase names a number twice.
    """
    limiter = concurrency if isinstance(concurrency, Concurrency) else Concurrency(concurrency)
    check_disjoint(plan)
    run = _Run(plan, client, limiter, on_batch, on_sending, on_throttled)
    pool = ThreadPoolExecutor(limiter.initial, thread_name_prefix="numsync-apply") if limiter.initial > 1 else None
    try:
        return run.all_phases(pool, should_stop, before_phase)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)


class _Run:
    """One apply_plan call: its result, the numbers that failed, and the files in flight."""

    def __init__(
        self,
        plan: Plan,
        client: Executor,
        limiter: Concurrency,
        on_batch: Callable[[BatchOutcome], None] | None,
        on_sending: Callable[[int, int, Sequence[OperationRow]], None] | None,
        on_throttled: Callable[[Throttled], None] | None,
    ) -> None:
        self.plan, self.client, self.limiter = plan, client, limiter
        self.on_batch, self.on_sending, self.on_throttled = on_batch, on_sending, on_throttled
        self.total_rows = sum(len(p.rows) for p in plan.phases)
        self.result = ApplyResult(concurrency=limiter.limit, planned=self.total_rows)
        self.failed_numbers: set[str] = set()
        self.unknown_rows = 0  # rows of files sent whose outcome is unknown: sent, though neither applied nor failed
        self.in_flight: dict[Future[BatchOutcome], tuple[int, int]] = {}
        self.halt = _Halt()

    def all_phases(
        self,
        pool: ThreadPoolExecutor | None,
        should_stop: Callable[[], str | None] | None,
        before_phase: Callable[[int], str | None] | None,
    ) -> ApplyResult:
        result = self.result
        for p, phase in enumerate(self.plan.phases, start=1):
            refusal = before_phase(p) if before_phase and p > 1 and phase.batches else None
            if refusal:
                result.interrupted = f"{refusal}. {self.total_rows - self._done()} row(s) were not sent."
                result.stopped = True
                return self._finish()
            for b, batch in enumerate(phase.batches, start=1):
                if not self._room(
                    p, b, should_stop if any(r.number not in self.failed_numbers for r in batch.rows) else None
                ):
                    break
                self._start(p, b, batch.rows, pool)
            while self.in_flight:  # phase k is answered in full before phase k + 1
                self._collect()
            if self.halt.error is not None:
                raise self.halt.error
            left = self.total_rows - self._done()
            if self.halt.stop is not None:
                sp, sb = self.halt.stop_at
                return self._stopped(
                    f"stopped before phase {sp} batch {sb}: {self.halt.stop}. {left} row(s) were not sent; every file "
                    "sent before finished. Run plan again: it starts from the live state.",
                    stopped=True,
                )
            if (first := self.halt.refused_all) is not None:
                return self._stopped(
                    f"stopped after phase {first.phase} batch {first.batch}: {first.error}. OCP would refuse every "
                    f"later file for the same reason, so {left} later row(s) were not sent; fix it, then run plan again.",
                    stopped=True,
                )
            if (first := self.halt.ambiguous) is not None:
                return self._stopped(
                    f"stopped after phase {first.phase} batch {first.batch}: {first.error}. The outcome of that file is "
                    f"unknown; {left} later row(s) were not sent yet. What is left is planned from live state read "
                    "again (numsync apply does that itself).",
                    stopped=False,  # not stopped for good: the caller settles live and plans the rest
                )
        return self._finish()

    def _stopped(self, why: str, *, stopped: bool) -> ApplyResult:
        self.result.interrupted, self.result.stopped = why, stopped
        return self._finish()

    def _done(self) -> int:
        """Rows sent or settled: applied, failed, skipped, or sent in a file whose outcome is unknown."""
        return self.result.applied + len(self.result.failures) + len(self.result.skipped) + self.unknown_rows

    def _finish(self) -> ApplyResult:
        self._report_throttles()
        self.result.concurrency = self.limiter.limit
        return self.result

    def _room(self, p: int, b: int, should_stop: Callable[[], str | None] | None) -> bool:
        """Wait until batch ``b`` may leave: room under the limit and no Retry-After running. False: send no more."""
        if self.in_flight:  # answers already in first: one that stops the run must stop it before this file
            self._collect(timeout=0)
        while not self._halted():
            hold = self.limiter.hold_off()
            if len(self.in_flight) < self.limiter.limit and hold <= 0:
                break
            if self.in_flight:
                self._collect(timeout=hold if len(self.in_flight) < self.limiter.limit else None)
            else:
                time.sleep(hold)
        if self._halted():
            return False
        stop = should_stop() if should_stop else None
        if stop:
            self.halt.stop, self.halt.stop_at = stop, (p, b)
            return False
        return True

    def _halted(self) -> bool:
        halt = self.halt
        return any(x is not None for x in (halt.ambiguous, halt.refused_all, halt.stop, halt.error))

    def _start(self, p: int, b: int, batch_rows: Sequence[OperationRow], pool: ThreadPoolExecutor | None) -> None:
        # earlier phases' failures only: the files of this phase touch other numbers (check_disjoint)
        rows = [r for r in batch_rows if r.number not in self.failed_numbers]
        skipped = tuple(r for r in batch_rows if r.number in self.failed_numbers)
        self.result.skipped.extend(skipped)
        if not rows:
            self._record(BatchOutcome(p, b, 0, None, skipped=skipped))
            return
        if self.on_sending:
            self.on_sending(p, b, rows)
        self.result.requests += 1
        if pool is None:
            try:
                outcome = _upload(p, b, rows, skipped, self.client, self.limiter)
            except BaseException as exc:
                self.halt.error = exc
                return
            self._record(outcome)
            return
        self.in_flight[pool.submit(_upload, p, b, rows, skipped, self.client, self.limiter)] = (p, b)

    def _collect(self, timeout: float | None = None) -> None:
        """Record the answers that are in (waiting up to ``timeout`` seconds for the first)."""
        done, _ = wait(list(self.in_flight), timeout=timeout, return_when=FIRST_COMPLETED)
        for future in sorted(done, key=lambda f: self.in_flight[f]):
            del self.in_flight[future]
            try:
                outcome = future.result()
            except BaseException as exc:  # no token, or a bug: raised once the rest is recorded
                self.halt.error = self.halt.error or exc
                continue
            self._record(outcome)

    def _record(self, outcome: BatchOutcome) -> None:
        self._report_throttles()
        result = self.result
        if outcome.rows:
            result.failures.extend(outcome.failures)
            self.failed_numbers.update(f.row.number for f in outcome.failures)
            if not outcome.ambiguous:
                result.applied += outcome.rows - len(outcome.failures)
            else:
                self.unknown_rows += outcome.rows - len(outcome.failures)
            if outcome.status == 429:  # refused after the client's own retries: slower still
                self.limiter.throttled()
                self._report_throttles()
        if self.on_batch:
            self.on_batch(outcome)
        if outcome.ambiguous and self.halt.ambiguous is None:
            self.halt.ambiguous = outcome
        if outcome.refuses_all and self.halt.refused_all is None:
            self.halt.refused_all = outcome

    def _report_throttles(self) -> None:
        for event in self.limiter.take_events():
            self.result.throttled += 1
            if self.on_throttled:
                self.on_throttled(event)


def _upload(
    phase: int,
    batch: int,
    rows: list[OperationRow],
    skipped: tuple[OperationRow, ...],
    client: Executor,
    limiter: Concurrency | None = None,
) -> BatchOutcome:
    started = time.monotonic()
    if limiter is None:
        outcome = _send(phase, batch, rows, skipped, client)
    else:
        with limiter.sending():
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
