"""``numsync apply`` as a library call: every rule that decides whether writing to OCP may start.

In order: a saved plan must be fresh and untampered (else a fresh plan is made), then
conflicts, safety, the change freeze and confirmation can each refuse. Only then is anything
written; every request and its outcome goes to the journal, then live is verified.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from numsync.config import Environment
from numsync.core import safety
from numsync.core.diff import Diff
from numsync.ocp import Credentials
from numsync.workflow import policy
from numsync.workflow.apply import ApplyResult, BatchOutcome
from numsync.workflow.events import ApplyObserver, retry_callback
from numsync.workflow.journal import Journal
from numsync.workflow.pipeline import (
    apply_with_recovery,
    check_fresh,
    connect,
    export_live,
    load_environment_desired,
    plan_environment,
    verify,
)
from numsync.workflow.plan import Plan, load_plan


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


@dataclass(frozen=True, slots=True)
class ApplyOutcome:
    """What was applied: ``result`` and ``remaining`` are None when the plan was empty (nothing to do)."""

    plan: Plan
    result: ApplyResult | None = None
    remaining: Diff | None = None

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
    desired = load_environment_desired(env)
    credentials = Credentials.from_env(request.environ)
    journal_path = policy.journal_path(request.journal, request.environ)
    with (
        Journal(journal_path, credentials.secrets()) as journal,
        connect(env, credentials, on_retry=retry_callback(observer, journal)) as client,
    ):
        live = export_live(client)
        if request.plan_file:
            the_plan = load_plan(request.plan_file)
            check_fresh(the_plan, env, desired.records, live)
            policy.check_untampered(the_plan, plan_environment(env, desired, live).plan, request.plan_file)
        else:
            the_plan = plan_environment(env, desired, live).plan
        observer.planned(the_plan)
        policy.refuse_conflicts(the_plan)
        if the_plan.empty:
            return ApplyOutcome(the_plan)
        refusal = policy.safety_refusal(safety.check(the_plan, env, request.overrides), request.environ)
        if refusal:
            raise refusal
        frozen = env.freeze.active()
        if policy.freeze_decision(frozen, request.override_freeze):
            assert frozen and request.override_freeze  # freeze_decision says so
            journal.write("freeze-override", freeze=frozen, reason=request.override_freeze)
            observer.freeze_overridden(frozen, request.override_freeze)
        if policy.confirmation_needed(saved_plan=request.plan_file is not None, auto_approve=request.auto_approve):
            policy.confirm(f"Apply these changes to {env.name}?", interactive=request.interactive, ask=confirm)
        observer.applying(env.name, env.base_url)
        journal.write(
            "apply-start",
            environment=env.name,
            summary=the_plan.summary_line(),
            requests=the_plan.request_count(),
            git_commit=the_plan.git_commit,
        )

        def on_batch(outcome: BatchOutcome) -> None:
            journal.write("request", **outcome.to_json())
            observer.batch_done(outcome)

        def on_replan(remaining_plan: Plan, why: str) -> None:
            journal.write("replan", reason=why, summary=remaining_plan.summary_line())
            observer.replanned(remaining_plan, why)

        result = apply_with_recovery(env, desired.records, client, the_plan, on_batch=on_batch, on_replan=on_replan)
        observer.applied(result, desired)
        remaining = verify(env, desired.records, export_live(client))
        journal.write(
            "apply-end",
            applied=result.applied,
            failed=len(result.failures),
            skipped=len(result.skipped),
            interrupted=result.interrupted,
            converged=remaining.empty,
        )
    observer.verified(remaining)
    return ApplyOutcome(the_plan, result, remaining)
