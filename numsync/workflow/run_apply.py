"""``numsync apply`` as a library call: every rule that decides whether writing to OCP may start.

In order: in CI, a pipeline whose commit is no longer the default branch's tip stops
(superseded); the plan reviewed in the merged merge request is fetched, when asked for; the
tenant's lease is taken (one writer per tenant on this machine); a saved plan must be fresh
and equal in every reviewed part to planning its state again (else a fresh plan is made); a
reviewed plan runs exactly when fresh, as planned now when only its inputs' fingerprints
moved, and never when a plan made now differs (reviewed.py); a saved or reviewed plan runs
with the overrides it records, and no others; then conflicts, safety (always judged on the fresh plan), the change
freeze and confirmation can each refuse. Only then is anything written. The journal is
written ahead (``sending`` before each PUT, then its outcome) and always ends with
``apply-end``; an error after the first PUT says what had been sent.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from numsync.config import Environment
from numsync.core import safety
from numsync.core.diff import Diff, Scope
from numsync.core.freeze import check_clocks
from numsync.core.policy import StaleReview
from numsync.errors import AuthError, NumsyncError, ReviewRefusal, StalePlanError
from numsync.ocp import Credentials
from numsync.ocp.rows import OperationRow
from numsync.redaction import SECRETS
from numsync.reports import results as result_files
from numsync.reports.plandiff import render_text
from numsync.workflow import policy
from numsync.workflow.apply import ApplyResult, BatchOutcome, Concurrency, Throttled
from numsync.workflow.events import ApplyObserver, retry_callback
from numsync.workflow.journal import Journal
from numsync.workflow.lease import TenantLease
from numsync.workflow.pipeline import (
    apply_with_recovery,
    check_fresh,
    check_scope,
    check_token_lifetime,
    connect,
    export_live,
    load_desired_observed,
    plan_environment,
    verify_settled,
)
from numsync.workflow.plan import Plan, load_plan_with_data
from numsync.workflow.plandiff import compare_plans, edited_parts
from numsync.workflow.results import (
    ResultFormat,
    Results,
    ResultsRecorder,
    check_distinct,
    check_writable,
    read_results,
    retry_scope,
    write_atomically,
)
from numsync.workflow.reviewed import (
    Review,
    ReviewedPlan,
    ReviewedPlanRequest,
    fetch_reviewed_plan,
    judge_review,
    repost_for_approval,
)
from numsync.workflow.settle import Settled
from numsync.workflow.supersede import Supersession, check_superseded


@dataclass(frozen=True, slots=True)
class ApplyRequest:
    """What ``apply`` was asked for.

    ``plan_file``: a saved plan to apply exactly (None: plan afresh, then confirm);
    ``override_freeze``: the reason given to apply in a freeze (None: not given);
    ``journal``: the --journal path (None: the CI default, if any); ``interactive``: whether
    there is a terminal to confirm on; ``environ``: the process environment (credentials, ``CI``).
    ``scope``: a partial run (``--group``/``--number``); ``retry_failed``: a results file whose numbers
    not applied are the scope; ``results`` / ``junit``: where to write the per-row results
    (CSV or JSON by extension) and the JUnit report, whatever ends the run; ``review``: apply the
    plan reviewed in the merged merge request, fetched from GitLab.
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
    scope: Scope | None = None
    retry_failed: Path | None = None
    results: Path | None = None
    junit: Path | None = None
    review: ReviewedPlanRequest | None = None


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What was applied: ``result`` and ``remaining`` are None when the plan was empty (nothing to do);
    ``plan`` is None when the pipeline was ``superseded`` (nothing was planned or written)."""

    plan: Plan | None
    result: ApplyResult | None = None
    remaining: Diff | None = None
    superseded: Supersession | None = None
    results: Results | None = None

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
    ConfirmationRefusal before anything is written. Once a plan is known, the results file and
    JUnit report (``request.results``, ``request.junit``) are written whatever ends the run.
    """
    observer = observer or ApplyObserver()
    results_format = ResultFormat.of(request.results) if request.results else None  # a bad extension stops first
    for path, option in ((request.results, "--results"), (request.junit, "--junit")):
        if path is not None:
            check_writable(path, option)
    journal = policy.journal_path(request.journal, request.environ)
    check_distinct((("--journal", journal), ("--results", request.results), ("--junit", request.junit)))
    recording: list[ResultsRecorder] = []  # set once the plan to apply is known
    try:
        return _run_apply(request, observer, confirm, recording)
    except BaseException as exc:
        if recording:
            recording[0].finish(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    finally:
        if recording:
            _write_results(request, results_format, recording[0].finish(None), observer)


def _write_results(request: ApplyRequest, kind: ResultFormat | None, results: Results, observer: ApplyObserver) -> None:
    """The results file and JUnit report (secrets masked, as in the journal), each written atomically."""
    if request.results is not None and kind is not None:
        write_atomically(request.results, SECRETS.redact(result_files.render(results, kind)))
        observer.results_written(request.results)
    if request.junit is not None:
        write_atomically(request.junit, SECRETS.redact(result_files.render_junit(results)))
        observer.results_written(request.junit)


def _run_apply(
    request: ApplyRequest,
    observer: ApplyObserver,
    confirm: Callable[[str], bool],
    recording: list[ResultsRecorder],
) -> ApplyOutcome:
    env = request.env
    env.require_endpoints()  # before the lease and the journal, which are named by the endpoint
    if not request.ignore_superseded:
        supersession = check_superseded(request.environ, env.desired)
        if supersession is not None and supersession.superseded:
            observer.superseded(supersession.message())
            return ApplyOutcome(None, superseded=supersession)
    scope = request.scope
    if request.retry_failed is not None:
        scope = retry_scope(read_results(request.retry_failed), env.name, request.retry_failed)
    desired = load_desired_observed(env, observer)
    reviewed = fetch_reviewed_plan(request.review) if request.review is not None else None
    credentials = Credentials.from_env(request.environ, env.credentials)
    warned = check_token_lifetime(credentials, policy.needed_seconds(), observer.warned)  # before the export
    journal_path = policy.journal_path(request.journal, request.environ)
    concurrency = Concurrency(env.apply_concurrency)  # the client's 429s lower it (apply.py)
    with (
        TenantLease(env.base_url, env.name),
        Journal(journal_path, credentials.secrets()) as journal,
        connect(
            env,
            credentials,
            on_retry=retry_callback(observer, journal),
            on_otp_wait=observer.waiting_for_code,
            on_throttle=concurrency.throttled,
        ) as client,
    ):
        live = export_live(client, observer)
        saved = load_plan_with_data(request.plan_file) if request.plan_file else None
        if saved is not None:
            scope = saved[0].scope  # a saved plan is planned again within the scope it was reviewed with
        elif reviewed is not None:
            scope = reviewed.plan.scope  # so is a reviewed one
        elif scope is not None and request.retry_failed is None:
            check_scope(scope, env, desired.records, live)  # (a retried number that is gone is simply done)
        fresh = plan_environment(env, desired, live, scope).plan
        if not warned:  # now that the files to send are known
            check_token_lifetime(credentials, policy.needed_seconds(fresh), observer.warned)
        if request.plan_file and saved is not None:
            the_plan, as_saved = saved
            overrides = policy.saved_plan_overrides(the_plan.lifted(), request.overrides)
            try:
                check_fresh(the_plan, env, fresh)
            except StalePlanError as stale:  # say what changed between what was reviewed and now
                lines = render_text(compare_plans(the_plan, fresh)).splitlines()
                raise StalePlanError(str(stale), [f"  {line}" for line in lines]) from None
            policy.check_untampered(the_plan, fresh, request.plan_file, as_saved)
        elif reviewed is not None:
            assert request.review is not None
            overrides = policy.saved_plan_overrides(reviewed.plan.lifted(), request.overrides)
            the_plan = _reviewed_or_refuse(request.review, reviewed, fresh, env, observer)
            journal.write("reviewed", source=reviewed.source.where(), plan=the_plan.summary_line())
        else:
            overrides = request.overrides
            the_plan = fresh
            the_plan.overrides = policy.record_overrides(overrides, None, request.environ, saving=False)
        observer.planned(the_plan)
        recorder = ResultsRecorder(the_plan, desired)
        recording.append(recorder)
        if the_plan.overrides and not fresh.empty:  # the record of who lifted which check and why
            journal.write("overrides", overrides=[o.to_json() for o in the_plan.overrides])
        policy.refuse_conflicts(fresh)
        if fresh.empty:
            recorder.results.complete = True
            return ApplyOutcome(the_plan, results=recorder.results)
        # a saved plan lifts only the checks it records: the way out is to make it again, not a flag to apply
        context = safety.LiftContext.SAVED_PLAN if request.plan_file else safety.LiftContext.PLAN
        refusal = policy.safety_refusal(safety.check(fresh, env, overrides), request.environ, context)
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
        reviewed_already = request.plan_file is not None or reviewed is not None  # its changes were reviewed
        if policy.confirmation_needed(saved_plan=reviewed_already, auto_approve=request.auto_approve):
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
            concurrency=concurrency.limit,
        )
        sent = Sent()

        def on_sending(phase: int, batch: int, rows: Sequence[OperationRow]) -> None:
            sent.requests += 1
            sent.rows += len(rows)
            sent.pending[(phase, batch)] = len(rows)
            recorder.sending(phase, batch, rows)
            journal.write("sending", phase=phase, batch=batch, rows=[f"{r.operation.value} {r.number}" for r in rows])

        files = Files(total=the_plan.request_count())

        def on_batch(outcome: BatchOutcome) -> None:
            files.answered += 1
            sent.pending.pop((outcome.phase, outcome.batch), None)
            if outcome.rows:
                sent.applied += outcome.rows - len(outcome.failures) if not outcome.ambiguous else 0
            journal.write("request", **outcome.to_json())
            recorder.batch_done(outcome)
            observer.batch_done(outcome)
            observer.files_progress(files.answered, files.total)

        def on_throttled(event: Throttled) -> None:
            journal.write("throttled", concurrency=event.concurrency, retry_after=event.retry_after)
            observer.throttled(event.concurrency, event.retry_after)

        def on_replan(remaining_plan: Plan, why: str) -> None:
            files.total = files.answered + remaining_plan.request_count()
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
                concurrency=concurrency,
                on_throttled=on_throttled,
                before_phase=freeze_began,
            )
            observer.applied(result, desired)
            remaining = verify_settled(
                env, desired.records, client, result, on_settled=on_settled, scope=the_plan.scope
            )
            recorder.verified(remaining, result.interrupted)
        except NumsyncError as exc:
            if sent.pending and isinstance(exc, AuthError):  # no token: the files still unanswered never left
                for (phase, batch), rows in sorted(sent.pending.items()):
                    sent.requests, sent.rows = sent.requests - 1, sent.rows - rows
                    journal.write("not-sent", phase=phase, batch=batch, reason=str(exc))
                sent.pending.clear()
                recorder.not_sent(str(exc))
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
            throttled=result.throttled,
            concurrency=result.concurrency,
            **sent.to_json(),
        )
    observer.verified(remaining)
    return ApplyOutcome(the_plan, result, remaining, results=recorder.results)


def _reviewed_or_refuse(
    request: ReviewedPlanRequest,
    reviewed: ReviewedPlan,
    fresh: Plan,
    env: Environment,
    observer: ApplyObserver,
) -> Plan:
    """The plan to apply for a reviewed plan (see reviewed.py), or ReviewRefusal when a plan made now differs."""
    where = reviewed.source.where()
    edited: list[str] = []
    try:
        check_fresh(reviewed.plan, env, fresh)
        inputs_fresh = True
        # the same inputs, yet not what planning them gives now: numsync.yaml changed since (or the file was edited)
        edited = edited_parts(reviewed.data, fresh)
        stale = f"its {', '.join(edited)} differ from planning the state it records now" if edited else None
    except StalePlanError as exc:
        inputs_fresh = False
        stale = str(exc).removeprefix("plan is stale: ").removesuffix("; run plan again")
    verdict, difference = judge_review(reviewed.plan, fresh, inputs_fresh=inputs_fresh, edited=edited)
    if verdict is Review.FRESH:
        policy.check_untampered(reviewed.plan, fresh, Path(f"the plan of {where}"), reviewed.data)
        observer.reviewed(f"Applying the plan reviewed in {where}: it is still fresh (same desired, same live).")
        return reviewed.plan
    fresh.overrides = list(reviewed.plan.overrides)  # the reviewed record of who lifted which check and why
    if verdict is Review.SAME:
        observer.reviewed(
            f"The plan reviewed in {where} is stale ({stale}), but a plan made now changes the same numbers, "
            "fields and rows: applying that."
        )
        return fresh
    lines = [f"  {line}" for line in render_text(difference).splitlines()]
    message = (
        f"the plan reviewed in {where} is stale ({stale}) and a plan made now differs from it (above): "
        "refused, so that nothing is applied that nobody reviewed"
    )
    if env.on_stale_review is not StaleReview.REPOST:
        raise ReviewRefusal(
            f"{message}. Nothing was written. Review the change in a new merge request, or set "
            "on_stale_review: repost in numsync.yaml to post the difference there for re-approval",
            lines,
        )
    if request.replan_to is not None:
        request.replan_to.write_text(json.dumps(fresh.to_json(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    posted = repost_for_approval(request, reviewed, difference, fresh)
    kept = f", saved as {request.replan_to}" if request.replan_to is not None else ""
    raise ReviewRefusal(
        f"{message}. Nothing was written. The difference and the plan made now were posted to {posted} for "
        f"re-approval{kept}: after review, a maintainer runs the manual job approve: [{env.name}] to apply exactly that",
        lines,
        [posted],
    )


@dataclass(slots=True)
class Files:
    """Upload files answered so far, of the ``total`` planned (a re-plan after an unknown outcome changes it)."""

    total: int
    answered: int = 0


@dataclass(slots=True)
class Sent:
    """What left for OCP so far: requests and rows sent, and rows OCP then reported applied."""

    requests: int = 0
    rows: int = 0
    applied: int = 0
    #: (phase, batch) → rows of the files announced whose answer is not yet in (several with apply_concurrency > 1)
    pending: dict[tuple[int, int], int] = field(default_factory=dict)

    def progress(self) -> str:
        return (
            f"Before this, {self.requests} file(s) with {self.rows} row(s) had been sent and {self.applied} row(s) "
            "were applied: run plan to see what is left."
        )

    def to_json(self) -> dict[str, int]:
        return {"requests_sent": self.requests, "rows_sent": self.rows}
