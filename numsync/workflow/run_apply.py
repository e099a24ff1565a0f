"""``numsync apply`` as a library call: every rule that decides whether writing to OCP may start.

In order: in CI, a pipeline whose commit is no longer the default branch's tip stops
(superseded); the tenant's lease is taken (one writer per tenant on this machine); a saved
plan must be fresh and equal in every reviewed part to planning its state again (else a
fresh plan is made); then conflicts, safety (always judged on the fresh plan), the change
freeze and confirmation can each refuse. Only then is anything written. The journal is
written ahead (``sending`` before each PUT, then its outcome) and always ends with
``apply-end``; an error after the first PUT says what had been sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from numsync.config import Environment
from numsync.core import safety
from numsync.core.diff import Diff
from numsync.core.freeze import check_clocks
from numsync.errors import AuthError, NumsyncError, StalePlanError
from numsync.ocp import Credentials
from numsync.ocp.rows import OperationRow
from numsync.reports.plandiff import render_text
from numsync.workflow import policy
from numsync.workflow.apply import ApplyResult, BatchOutcome
from numsync.workflow.events import ApplyObserver, retry_callback
from numsync.workflow.journal import Journal
from numsync.workflow.lease import TenantLease
from numsync.workflow.pipeline import (
    apply_with_recovery,
    check_fresh,
    connect,
    export_live,
    load_environment_desired,
    plan_environment,
    verify_settled,
)
from numsync.workflow.plan import Plan, load_plan_with_data
from numsync.workflow.plandiff import compare_plans
from numsync.workflow.settle import Settled
from numsync.workflow.supersede import Supersession, check_superseded


@dataclass(frozen=True, slots=True)
class ApplyRequest:
    """What ``apply`` was asked for.

    ``plan_file``: a saved plan to apply exactly (None: plan afresh, then confirm);
    ``override_freeze``: the reason given to apply in a freeze (None: not given);
    ``journal``: the --journal path (None: the CI default, if any); ``interactive``: whether
    there is a terminal to confirm on; ``environ``: the process environment (credentials, ``CI``).
    """

    env: Environment
    plan_file: Path | None = None
    overrides: safety.Overrides = field(default_factory=safety.Overrides)
    override_freeze: str | None = None
    auto_approve: bool = False
    journal: Path | None = None
    interactive: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)
    ignore_superseded: bool = False
    should_stop: Callable[[], str | None] | None = None


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What was applied: ``result`` and ``remaining`` are None when the plan was empty (nothing to do);
    ``plan`` is None when the pipeline was ``superseded`` (nothing was planned or written)."""

    plan: Plan | None
    result: ApplyResult | None = None
    remaining: Diff | None = None
    superseded: Supersession | None = None

    @property
    def exit_code(self) -> int:
        """0 when everything applied and converged (or nothing was to do), else 1."""
        return policy.apply_exit_code(self.result, self.remaining)


def _never(question: str) -> bool:
    return False


def run_apply(
    request: ApplyRequest, observer: ApplyObserver | None = None, confirm: Callable[[str], bool] = _never
) -> ApplyOutcome:
    """Apply to ``request.env``; ``confirm`` asks a person (only with a fresh plan, a terminal and no --auto-approve).

    Refusals raise StalePlanError, ConflictRefusal, SafetyRefusal, FreezeRefusal or
    ConfirmationRefusal before anything is written.
    """
    observer = observer or ApplyObserver()
    env = request.env
    if not request.ignore_superseded:
        supersession = check_superseded(request.environ, env.desired)
        if supersession is not None and supersession.superseded:
            observer.superseded(supersession.message())
            return ApplyOutcome(None, superseded=supersession)
    desired = load_environment_desired(env)
    credentials = Credentials.from_env(request.environ)
    journal_path = policy.journal_path(request.journal, request.environ)
    with (
        TenantLease(env.base_url, env.name),
        Journal(journal_path, credentials.secrets()) as journal,
        connect(env, credentials, on_retry=retry_callback(observer, journal)) as client,
    ):
        live = export_live(client)
        fresh = plan_environment(env, desired, live).plan
        if request.plan_file:
            the_plan, as_saved = load_plan_with_data(request.plan_file)
            try:
                check_fresh(the_plan, env, desired.records, live)
            except StalePlanError as stale:  # say what changed between what was reviewed and now
                lines = render_text(compare_plans(the_plan, fresh)).splitlines()
                raise StalePlanError(str(stale), [f"  {line}" for line in lines]) from None
            policy.check_untampered(the_plan, fresh, request.plan_file, as_saved)
        else:
            the_plan = fresh
        observer.planned(the_plan)
        policy.refuse_conflicts(fresh)
        if fresh.empty:
            return ApplyOutcome(the_plan)
        refusal = policy.safety_refusal(safety.check(fresh, env, request.overrides), request.environ)
        if refusal:
            raise refusal
        clocks = check_clocks(env.freeze, dt.datetime.now(dt.UTC), client.server_time())
        if clocks.skew_warning:
            journal.write("clock-skew", seconds=round(clocks.skew.total_seconds()) if clocks.skew else None)
            observer.clock_skewed(clocks.skew_warning)
        frozen = clocks.active
        overridden = policy.freeze_decision(frozen, request.override_freeze)
        if overridden:
            assert frozen and request.override_freeze  # freeze_decision says so
            journal.write("freeze-override", freeze=frozen, reason=request.override_freeze)
            observer.freeze_overridden(frozen, request.override_freeze)
        if policy.confirmation_needed(saved_plan=request.plan_file is not None, auto_approve=request.auto_approve):
            policy.confirm(f"Apply these changes to {env.name}?", interactive=request.interactive, ask=confirm)
            later = None if overridden else check_clocks(env.freeze, dt.datetime.now(dt.UTC), client.server_time())
            if later and policy.freeze_decision(later.active, request.override_freeze):  # a window opened meanwhile
                assert later.active and request.override_freeze
                overridden = True
                journal.write("freeze-override", freeze=later.active, reason=request.override_freeze)
                observer.freeze_overridden(later.active, request.override_freeze)
        observer.applying(env.name, env.base_url)
        journal.write(
            "apply-start",
            environment=env.name,
            summary=the_plan.summary_line(),
            requests=the_plan.request_count(),
            git_commit=the_plan.git_commit,
        )
        sent = Sent()

        def on_sending(phase: int, batch: int, rows: Sequence[OperationRow]) -> None:
            sent.requests += 1
            sent.rows += len(rows)
            sent.pending = (phase, batch, len(rows))
            journal.write("sending", phase=phase, batch=batch, rows=[f"{r.operation.value} {r.number}" for r in rows])

        def on_batch(outcome: BatchOutcome) -> None:
            sent.pending = None
            if outcome.rows:
                sent.applied += outcome.rows - len(outcome.failures) if not outcome.ambiguous else 0
            journal.write("request", **outcome.to_json())
            observer.batch_done(outcome)

        def on_replan(remaining_plan: Plan, why: str) -> None:
            journal.write("replan", reason=why, summary=remaining_plan.summary_line())
            observer.replanned(remaining_plan, why)

        def freeze_began(phase: int) -> str | None:
            """Before each phase after the first: a window that opened since (by either clock) stops the run."""
            nonlocal overridden
            now = check_clocks(env.freeze, dt.datetime.now(dt.UTC), client.server_time())
            if not now.active or overridden:
                return None
            if (request.override_freeze or "").strip():  # given for the run: it covers a window that opens during it
                overridden = True
                journal.write("freeze-override", freeze=now.active, reason=request.override_freeze, phase=phase)
                observer.freeze_overridden(now.active, request.override_freeze or "")
                return None
            return policy.freeze_began(phase, now.active)

        def on_settled(settled: Settled) -> None:
            journal.write("settled", exports=settled.exports, seconds=round(settled.seconds, 3))
            observer.settled(settled.exports, settled.seconds)

        try:
            result = apply_with_recovery(
                env,
                desired.records,
                client,
                the_plan,
                live=live,
                on_batch=on_batch,
                on_replan=on_replan,
                on_sending=on_sending,
                on_settled=on_settled,
                should_stop=request.should_stop,
                before_phase=freeze_began,
            )
            observer.applied(result, desired)
            remaining = verify_settled(env, desired.records, client, result, on_settled=on_settled)
        except NumsyncError as exc:
            if sent.pending and isinstance(exc, AuthError):  # no token: the file in hand never left
                phase, batch, rows = sent.pending
                sent.requests, sent.rows = sent.requests - 1, sent.rows - rows
                journal.write("not-sent", phase=phase, batch=batch, reason=str(exc))
            if sent.requests:
                exc.wrote, exc.progress = True, sent.progress()
            journal.write("apply-end", error=str(exc), **sent.to_json())
            raise
        except BaseException as exc:  # KeyboardInterrupt and the like: the journal still ends
            journal.write("apply-end", error=f"{type(exc).__name__}: {exc}", **sent.to_json())
            raise
        journal.write(
            "apply-end",
            applied=result.applied,
            failed=len(result.failures),
            skipped=len(result.skipped),
            interrupted=result.interrupted,
            converged=remaining.empty,
            **sent.to_json(),
        )
    observer.verified(remaining)
    return ApplyOutcome(the_plan, result, remaining)


@dataclass(slots=True)
class Sent:
    """What left for OCP so far: requests and rows sent, and rows OCP then reported applied."""

    requests: int = 0
    rows: int = 0
    applied: int = 0
    pending: tuple[int, int, int] | None = None  # (phase, batch, rows) announced, its answer not yet in

    def progress(self) -> str:
        return (
            f"Before this, {self.requests} file(s) with {self.rows} row(s) had been sent and {self.applied} row(s) "
            "were applied: run plan to see what is left."
        )

    def to_json(self) -> dict[str, int]:
        return {"requests_sent": self.requests, "rows_sent": self.rows}
