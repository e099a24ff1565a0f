"""What a workflow tells its caller while it runs: one observer class per command, every method a no-op.

The workflows never print; the CLI subclasses these and shows each event. A test (or
another front end) overrides only the events it cares about.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from numsync.core.desired import DesiredState
from numsync.core.diff import Diff
from numsync.core.fmt import FileResult
from numsync.core.safety import Violation
from numsync.workflow.apply import ApplyResult, BatchOutcome
from numsync.workflow.journal import Journal
from numsync.workflow.plan import Plan
from numsync.workflow.rehearse import Rehearsal


class Observer:
    """Events every command that talks to OCP has."""

    def retrying(self, method: str, path: str, reason: str, delay: float) -> None:
        """A request failed transiently and is sent again after ``delay`` seconds (which may be minutes)."""

    def waiting_for_code(self, seconds: float) -> None:
        """numsync waits ``seconds`` for the next two-factor time step: OCP accepts each code once, and the
        current one was used (by an earlier process, or by a login whose answer was lost)."""

    def warned(self, message: str) -> None:
        """Something was accepted but may not be what the user meant (an odd export, a token about to expire)."""

    def export_progress(self, received: int, total: int | None) -> None:
        """``received`` bytes of the live export are in (``total``: its length, when OCP sent one); told per chunk."""

    def exported(self, numbers: int, size: int, seconds: float) -> None:
        """The live export was read: ``numbers`` records from ``size`` bytes in ``seconds``."""

    def loading_desired(self) -> None:
        """Loading and validating the desired files starts."""

    def desired_loaded(self, numbers: int, files: int, seconds: float) -> None:
        """The desired files were loaded: ``numbers`` numbers from ``files`` files in ``seconds``."""

    def clock_skewed(self, warning: str) -> None:
        """This machine's clock and OCP's (its Date header) differ by more than five minutes; ``warning`` says how."""


class PlanObserver(Observer):
    """Events of ``plan``, in the order they happen."""

    def planned(self, plan: Plan, violations: Sequence[Violation], notices: Sequence[str] = ()) -> None:
        """The plan is made; ``violations`` are the safety checks it fails (the run is refused after the
        reports); ``notices`` what every format must also say (a change freeze in force)."""

    def freeze_noted(self, notice: str) -> None:
        """A change freeze is in force, so applying this plan will need a reason (``notice`` says so)."""

    def saved(self, path: Path, *, refused: bool = False) -> None:
        """The plan artifact was written to ``path``; ``refused``: a safety check refuses it."""

    def wrote_upload_file(self, path: Path) -> None:
        """An upload file (or review.csv) was written."""

    def rehearsing(self) -> None:
        """The rehearsal on a local emulator starts (it takes seconds)."""

    def rehearsed(self, rehearsal: Rehearsal, desired: DesiredState) -> None:
        """The rehearsal is over; a run that did not converge is refused next."""


class FmtObserver:
    """Events of ``fmt``, one per file that is not already canonical."""

    def refused(self, result: FileResult) -> None:
        """``result.problems`` keep the file from being formatted; it was not touched."""

    def reformatted(self, result: FileResult, *, written: bool) -> None:
        """The file is not canonical: rewritten when ``written``, else only reported (``--check``)."""


class ImportObserver(Observer):
    """Events of ``import``."""

    def wrote(self, path: Path) -> None:
        """A desired file was written."""

    def adopted(self, path: Path, numbers: Sequence[str], created: bool) -> None:
        """``numbers`` were adopted into ``path`` (a new file when ``created``)."""

    def left_retiring(self, numbers: Sequence[str]) -> None:
        """``numbers``, in no desired file, carry their group's retire mark: adoption leaves them alone."""


class ApplyObserver(Observer):
    """Events of ``apply``, in the order they happen."""

    def superseded(self, message: str) -> None:
        """A newer merge than this pipeline's commit is on the default branch: nothing is written."""

    def planned(self, plan: Plan) -> None:
        """The plan that will be applied (saved and checked, or fresh), before any refusal."""

    def reviewed(self, message: str) -> None:
        """Which reviewed plan runs, and why that one."""

    def freeze_overridden(self, freeze: str, reason: str) -> None:
        """A change freeze is in force and ``reason`` overrides it (recorded in the journal)."""

    def applying(self, environment: str, base_url: str) -> None:
        """Writing to OCP starts now."""

    def batch_done(self, outcome: BatchOutcome) -> None:
        """One upload file was sent (or skipped). With apply_concurrency > 1 the files of a phase answer in any order."""

    def files_progress(self, answered: int, total: int) -> None:
        """After each answered file: ``answered`` of the ``total`` files planned so far (a re-plan changes ``total``)."""

    def throttled(self, concurrency: int, retry_after: float | None) -> None:
        """OCP answered 429: at most ``concurrency`` files in flight from now on, none new for ``retry_after`` s."""

    def settled(self, exports: int, seconds: float) -> None:
        """Live was exported until two exports agreed (after an unknown outcome, or before trusting a verify)."""

    def replanned(self, plan: Plan, why: str) -> None:
        """An outcome was unknown; live was read again and the rest planned anew."""

    def applied(self, result: ApplyResult, desired: DesiredState) -> None:
        """Every batch is done (or the run stopped)."""

    def verified(self, remaining: Diff) -> None:
        """Live was exported again: ``remaining`` is what still differs from desired."""

    def results_written(self, path: Path) -> None:
        """The per-row results (``--results``) or the JUnit report (``--junit``) were written to ``path``."""


def retry_callback(observer: Observer, journal: Journal | None = None) -> Callable[[httpx.Request, str, float], None]:
    """The client's ``on_retry``: journals the retry (when there is a journal) and tells ``observer``."""

    def on_retry(request: httpx.Request, reason: str, delay: float) -> None:
        if journal is not None:
            journal.write("retry", method=request.method, url=str(request.url), reason=reason, delay=round(delay, 3))
        observer.retrying(request.method, request.url.path, reason, delay)

    return on_retry
