"""Per-row results of an apply (``apply --results FILE``), and the numbers ``apply --retry-failed`` retries.

The rows are built here, from the plan and the apply's own events (rows announced before each
PUT, each file's :class:`BatchOutcome`, the verify at the end), never by re-reading the
journal; :mod:`numsync.reports.results` renders them (CSV, JSON, JUnit). Every planned row is
one result, in upload order; a row that a re-plan after an unknown outcome sent again keeps
its first place and takes the later outcome. The file is written whatever ends the run, and
atomically (a temporary file in the same folder, then a rename), so a CI artifact is never a
half-written file.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from numsync.core.desired import DesiredState
from numsync.core.diff import Diff, Scope
from numsync.core.model import normalize_number
from numsync.errors import NumberFormatError, ResultsFileError
from numsync.ocp.rows import OperationRow
from numsync.ocp.vocabulary import Operation
from numsync.workflow.apply import BatchOutcome
from numsync.workflow.plan import Plan

#: The name and version a JSON results file carries (checked when --retry-failed reads one back).
RESULTS_FORMAT = "numsync-results"
RESULTS_VERSION = 1

#: The columns of a CSV results file (and the keys of each JSON row), in order.
COLUMNS = ("environment", "number", "operation", "phase", "batch", "outcome", "message", "desired_at")


class Outcome(str, enum.Enum):
    """How one planned row ended."""

    APPLIED = "applied"  # OCP reported it applied (or the verify after an unknown outcome shows it done)
    FAILED = "failed"  # OCP refused it (the row, or the whole file before processing)
    UNKNOWN = "unknown"  # sent, but whether OCP applied it is not known
    NOT_SENT = "not_sent"  # never left: the run stopped, or an earlier row of the number failed


class ResultFormat(str, enum.Enum):
    """The file types a results file may have, chosen by its extension."""

    CSV = "csv"
    JSON = "json"

    @classmethod
    def of(cls, path: Path) -> ResultFormat:
        """The format ``path``'s extension names; raises ResultsFileError for any other."""
        try:
            return cls(path.suffix.lower().removeprefix("."))
        except ValueError:
            raise ResultsFileError(
                f"{path}: a results file ends in .csv or .json (the extension chooses the format), not {path.suffix or 'nothing'!r}"
            ) from None


@dataclass(slots=True)
class ResultRow:
    """One planned row and how it ended; ``desired_at`` is ``file:line`` of the number in the desired
    YAML, empty for a removal (the live number is in no file)."""

    number: str
    operation: Operation
    phase: int
    batch: int
    outcome: Outcome = Outcome.NOT_SENT
    message: str = ""
    desired_at: str = ""

    def to_json(self, environment: str) -> dict[str, Any]:
        return {
            "environment": environment,
            "number": self.number,
            "operation": self.operation.value,
            "phase": self.phase,
            "batch": self.batch,
            "outcome": self.outcome.value,
            "message": self.message,
            "desired_at": self.desired_at,
        }


@dataclass(slots=True)
class Results:
    """The results of one apply: every planned row, and whether the run got to its verify (``complete``)."""

    environment: str
    rows: list[ResultRow] = field(default_factory=list)
    complete: bool = False

    def not_applied(self) -> list[str]:
        """The NUMBERs with a row that did not end as applied, sorted (what ``--retry-failed`` retries)."""
        return sorted({r.number for r in self.rows if r.outcome is not Outcome.APPLIED})

    def failed_numbers(self) -> dict[str, list[ResultRow]]:
        """NUMBER → its rows, for the numbers with a row not applied (one JUnit failure each)."""
        found: dict[str, list[ResultRow]] = {}
        for r in self.rows:
            if r.outcome is not Outcome.APPLIED:
                found.setdefault(r.number, [])
        for r in self.rows:
            if r.number in found:
                found[r.number].append(r)
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "format": RESULTS_FORMAT,
            "version": RESULTS_VERSION,
            "environment": self.environment,
            "complete": self.complete,
            "rows": [r.to_json(self.environment) for r in self.rows],
        }


class ResultsRecorder:
    """Builds :class:`Results` from a plan and the apply's events (see the module doc)."""

    def __init__(self, plan: Plan, desired: DesiredState) -> None:
        self.results = Results(plan.environment)
        self._index: dict[tuple[Operation, str], ResultRow] = {}
        self._desired = desired
        # files announced and not yet answered, by (phase, batch): several may be in flight at once
        self._pending: dict[tuple[int, int], list[ResultRow]] = {}
        self._lock = threading.Lock()  # apply may report files from several threads
        self._reason: str | None = None
        for p, phase in enumerate(plan.phases, start=1):
            for b, batch in enumerate(phase.batches, start=1):
                for row in batch.rows:
                    self._row(row, p, b)

    def _row(self, row: OperationRow, phase: int, batch: int) -> ResultRow:
        key = (row.operation, row.number)
        found = self._index.get(key)
        if found is None:
            where = self._desired.locations.get(row.number)
            found = ResultRow(
                row.number, row.operation, phase, batch, desired_at=f"{where.path}:{where.line}" if where else ""
            )
            self._index[key] = found
            self.results.rows.append(found)
        return found

    def sending(self, phase: int, batch: int, rows: Sequence[OperationRow]) -> None:
        """Rows about to leave: unknown until their answer is in (a re-plan's rows find their first place)."""
        with self._lock:
            self._sending(phase, batch, rows)

    def _sending(self, phase: int, batch: int, rows: Sequence[OperationRow]) -> None:
        pending = self._pending[(phase, batch)] = [self._row(r, phase, batch) for r in rows]
        for r in pending:
            r.outcome, r.message = Outcome.UNKNOWN, "sent; no answer was recorded"

    def not_sent(self, reason: str) -> None:
        """The files announced and not answered never left (no token): their rows are not sent."""
        with self._lock:
            self._not_sent(reason)

    def _not_sent(self, reason: str) -> None:
        for pending in self._pending.values():
            for r in pending:
                r.outcome, r.message = Outcome.NOT_SENT, f"not sent: {reason}"
        self._pending.clear()

    def batch_done(self, outcome: BatchOutcome) -> None:
        """A file's answer (or a file skipped because its numbers' earlier rows failed)."""
        with self._lock:
            self._batch_done(outcome)

    def _batch_done(self, outcome: BatchOutcome) -> None:
        self._pending.pop((outcome.phase, outcome.batch), None)
        failed = {(f.row.operation, f.row.number): f.message for f in outcome.failures}
        for row in outcome.rows_sent:
            r = self._row(row, outcome.phase, outcome.batch)
            message = failed.get((row.operation, row.number))
            if message is not None:
                r.outcome, r.message = Outcome.FAILED, message
            elif outcome.ambiguous:
                r.outcome, r.message = Outcome.UNKNOWN, outcome.error or "the outcome of the file is unknown"
            else:
                r.outcome, r.message = Outcome.APPLIED, ""
        for row in outcome.skipped:
            r = self._row(row, outcome.phase, outcome.batch)
            r.outcome, r.message = Outcome.NOT_SENT, "not sent: an earlier row of this number failed"

    def verified(self, remaining: Diff, interrupted: str | None = None) -> None:
        """The verify at the end: a row whose outcome was unknown is applied when its number no longer differs.
        ``interrupted``: why the apply stopped early, if it did (it explains the rows never sent)."""
        self.results.complete = True
        self._reason = interrupted.splitlines()[0] if interrupted else None
        differing = {c.number for c in remaining.changes}
        for r in self.results.rows:
            if r.outcome is Outcome.UNKNOWN and r.number not in differing:
                r.outcome = Outcome.APPLIED
                r.message = f"outcome unknown when sent ({r.message}); the export after it shows the number as desired"

    def finish(self, reason: str | None) -> Results:
        """The results as they stand; ``reason`` (why the run ended early) explains rows never sent."""
        reason = reason or self._reason
        for r in self.results.rows:
            if r.outcome is Outcome.NOT_SENT and not r.message:
                r.message = f"not sent: {reason}" if reason else "not sent"
            elif r.outcome is Outcome.UNKNOWN and reason and r.message == "sent; no answer was recorded":
                r.message = f"sent; no answer was recorded: {reason}"
        return self.results


def check_writable(path: Path, option: str) -> None:
    """Raise ResultsFileError unless ``path``'s folder exists and may be written: checked before anything
    is sent, so an apply never ends with its changes made and no results file to show them."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ResultsFileError(f"{option} {path}: the folder {folder} does not exist; create it or choose another path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ResultsFileError(f"{option} {path}: the folder {folder} cannot be written; choose another path")


def check_distinct(outputs: Sequence[tuple[str, Path | None]]) -> None:
    """Raise ResultsFileError when two of apply's output files (option, path) are one file: the results
    file, written last, would replace the journal (or the JUnit report) it shares a path with."""
    seen: dict[Path, str] = {}
    for option, path in outputs:
        if path is None:
            continue
        key = path.resolve()
        if key in seen:
            raise ResultsFileError(f"{seen[key]} and {option} name the same file, {path}; give each its own")
        seen[key] = option


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_results(path: Path) -> Results:
    """A results file written by ``apply --results`` (CSV or JSON by extension); raises ResultsFileError
    naming the row and column (or JSON key) that is wrong, OSError when unreadable."""
    kind = ResultFormat.of(path)
    text = path.read_text("utf-8-sig")
    if kind is ResultFormat.JSON:
        return _read_json(path, text)
    return _read_csv(path, text)


def _read_json(path: Path, text: str) -> Results:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ResultsFileError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise ResultsFileError(f'{path}: not a numsync results file (no "format": "{RESULTS_FORMAT}")')
    if data.get("version") != RESULTS_VERSION:
        raise ResultsFileError(f"{path}: results version {data.get('version')!r} is not {RESULTS_VERSION}")
    rows = data.get("rows")
    if not isinstance(rows, list):
        raise ResultsFileError(f'{path}: "rows" must be a list')
    environment = data.get("environment")
    if not isinstance(environment, str) or not environment:
        # the environment check of retry_scope must not be skipped by a file that lost its environment
        raise ResultsFileError(f'{path}: "environment" must name the environment the results are of')
    results = Results(environment, complete=bool(data.get("complete")))
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ResultsFileError(f"{path}: rows[{i}] is not an object")

        def at(key: str, i: int = i) -> str:
            return f"{path}: rows[{i}].{key}"

        results.rows.append(_row_of(row, at))
    return results


def _read_csv(path: Path, text: str) -> Results:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None or tuple(header) != COLUMNS:
        raise ResultsFileError(f"{path}: row 1 must be the header {','.join(COLUMNS)}, as apply --results writes it")
    results = Results("", complete=True)
    environments = set()
    for line, cells in enumerate(reader, start=2):
        if len(cells) != len(COLUMNS):
            raise ResultsFileError(f"{path}: row {line} has {len(cells)} cells, not {len(COLUMNS)}")
        row = dict(zip(COLUMNS, cells))
        if row["environment"].startswith("'"):  # reports.results.environment_cell quoted it for spreadsheets
            row["environment"] = row["environment"][1:]
        if not row["environment"]:  # else retry_scope could not check it is this environment's file
            raise ResultsFileError(
                f"{path}: row {line}, column 1 (environment): empty; it names the environment applied to"
            )
        environments.add(row["environment"])

        def where(key: str, line: int = line) -> str:
            return f"{path}: row {line}, column {COLUMNS.index(key) + 1} ({key})"

        results.rows.append(_row_of(row, where))
    if len(environments) > 1:
        raise ResultsFileError(f"{path}: rows of several environments ({', '.join(sorted(environments))})")
    results.environment = environments.pop() if environments else ""
    return results


def _row_of(row: dict[str, Any], where: Callable[[str], str]) -> ResultRow:
    def text(key: str) -> str:
        value = row.get(key, "")
        if not isinstance(value, str):
            raise ResultsFileError(f"{where(key)}: must be text")
        return value

    def whole(key: str) -> int:
        value = row.get(key)
        try:
            return int(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ResultsFileError(f"{where(key)}: {value!r} is not a whole number") from None

    try:
        number = normalize_number(text("number"))
    except NumberFormatError as exc:
        raise ResultsFileError(f"{where('number')}: {exc}") from None
    try:
        operation = Operation(text("operation"))
    except ValueError:
        raise ResultsFileError(
            f"{where('operation')}: {row.get('operation')!r} is not one of {', '.join(o.value for o in Operation)}"
        ) from None
    try:
        outcome = Outcome(text("outcome"))
    except ValueError:
        raise ResultsFileError(
            f"{where('outcome')}: {row.get('outcome')!r} is not one of {', '.join(o.value for o in Outcome)}"
        ) from None
    return ResultRow(number, operation, whole("phase"), whole("batch"), outcome, text("message"), text("desired_at"))


def retry_scope(results: Results, environment: str, source: Path) -> Scope:
    """The partial run that retries what did not end as applied; raises ResultsFileError for another environment."""
    if results.environment and results.environment != environment:
        raise ResultsFileError(
            f"{source} holds the results of environment {results.environment!r}, not {environment!r}; choose it with --env"
        )
    return Scope(numbers=frozenset(results.not_applied()))
