"""``numsync plan`` as a library call: export, plan, save, rehearse, then judge the plan.

The reports are shown (through the observer) before any refusal, so a reviewer sees what a
refused plan would have done; the refusals come last, rehearsal before safety.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from numsync.config import Environment
from numsync.core import safety
from numsync.core.diff import Scope
from numsync.core.freeze import check_clocks
from numsync.errors import RehearsalFailed
from numsync.ocp import Credentials
from numsync.ocp.csvcodec import read_export
from numsync.workflow import policy
from numsync.workflow import rehearse as rehearsal
from numsync.workflow.emit import write_upload_files
from numsync.workflow.events import PlanObserver, retry_callback
from numsync.workflow.pipeline import (
    check_scope,
    check_token_lifetime,
    connect,
    export_live,
    load_desired_observed,
    plan_environment,
)
from numsync.workflow.plan import Notice, NoticeKind, Plan


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """What ``plan`` was asked for.

    ``save_to``: where to save the plan artifact; ``emit_csv``: a folder for the upload files;
    ``detailed_exitcode``: exit 2 when there are changes; ``environ``: the process environment
    (credentials, ``GITLAB_CI``, and who makes the plan); ``scope``: a partial run (``--group``,
    ``--number``), None for all; ``reason``: why ``overrides`` lift their checks, recorded in the
    plan with who gave them (apply honours the plan's record).
    """

    env: Environment
    overrides: safety.Overrides = field(default_factory=safety.Overrides)
    save_to: Path | None = None
    emit_csv: Path | None = None
    rehearse: bool = False
    detailed_exitcode: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)
    scope: Scope | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class PlanOutcome:
    """The plan made, and the exit code the command ends with."""

    plan: Plan
    exit_code: int


def run_plan(request: PlanRequest, observer: PlanObserver | None = None) -> PlanOutcome:
    """Plan ``request.env``; raises RehearsalFailed or SafetyRefusal after the reports when it must refuse."""
    observer = observer or PlanObserver()
    env = request.env
    env.require_endpoints()  # a ${VAR} without a value: named before credentials are read
    recorded = policy.record_overrides(request.overrides, request.reason, request.environ, saving=bool(request.save_to))
    desired = load_desired_observed(env, observer)
    credentials = Credentials.from_env(request.environ, env.credentials)
    check_token_lifetime(credentials, policy.needed_seconds(), observer.warned)
    live_csv = b""
    with connect(env, credentials, on_retry=retry_callback(observer), on_otp_wait=observer.waiting_for_code) as client:
        if request.rehearse:  # the rehearsal seeds an emulator with the export as sent
            live_csv = client.export()
            read = read_export(live_csv)
            for warning in read.warnings:
                observer.warned(warning)
            live = read.records
        else:
            live = export_live(client, observer)
    if request.scope is not None:
        check_scope(request.scope, env, desired.records, live)
    the_plan = plan_environment(env, desired, live, request.scope).plan
    the_plan.overrides = recorded
    violations = safety.check(the_plan, env, request.overrides)
    clocks = check_clocks(env.freeze, dt.datetime.now(dt.UTC), client.server_time())
    if clocks.skew_warning:
        observer.clock_skewed(clocks.skew_warning)
    frozen = clocks.active
    # plan still runs in a freeze (review goes on); apply is the one that refuses
    notices = [policy.freeze_notice(frozen)] if frozen and not the_plan.empty else []
    # part of the plan, so the saved file, --format json and show say them too (clock skew is judged
    # again at apply time, against the server then, so a saved one would only mislead)
    the_plan.notices = [Notice(NoticeKind.FREEZE, n) for n in notices] + [Notice.of_violation(v) for v in violations]
    observer.planned(the_plan, violations, notices)
    if notices:
        observer.freeze_noted(notices[0])
    if request.save_to:
        request.save_to.write_text(json.dumps(the_plan.to_json(), indent=2, ensure_ascii=False) + "\n", "utf-8")
        observer.saved(request.save_to, refused=bool(violations))
    if request.emit_csv:
        for path in write_upload_files(the_plan, request.emit_csv):
            observer.wrote_upload_file(path)
    if request.rehearse and not the_plan.empty:
        observer.rehearsing()
        outcome = rehearsal.rehearse(the_plan, env, live_csv, desired.records)
        observer.rehearsed(outcome, desired)
        if not outcome.ok:
            raise RehearsalFailed(
                "the rehearsal did not converge (above); fix the desired files before applying. Nothing was written to OCP"
            )
    refusal = policy.safety_refusal(violations, request.environ)
    if refusal:
        raise refusal
    return PlanOutcome(the_plan, policy.plan_exit_code(the_plan, detailed=request.detailed_exitcode))
