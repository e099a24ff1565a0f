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
from numsync.core.freeze import check_clocks
from numsync.errors import RehearsalFailed
from numsync.ocp import Credentials
from numsync.ocp.csvcodec import parse_export
from numsync.workflow import policy
from numsync.workflow import rehearse as rehearsal
from numsync.workflow.emit import write_upload_files
from numsync.workflow.events import PlanObserver, retry_callback
from numsync.workflow.pipeline import connect, load_environment_desired, plan_environment
from numsync.workflow.plan import Plan


@dataclass(frozen=True, slots=True)
class PlanRequest:
    """What ``plan`` was asked for.

    ``save_to``: where to save the plan artifact; ``emit_csv``: a folder for the upload files;
    ``detailed_exitcode``: exit 2 when there are changes; ``environ``: the process environment
    (credentials, ``GITLAB_CI``).
    """

    env: Environment
    overrides: safety.Overrides = field(default_factory=safety.Overrides)
    save_to: Path | None = None
    emit_csv: Path | None = None
    rehearse: bool = False
    detailed_exitcode: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlanOutcome:
    """The plan made, and the exit code the command ends with."""

    plan: Plan
    exit_code: int


def run_plan(request: PlanRequest, observer: PlanObserver | None = None) -> PlanOutcome:
    """Plan ``request.env``; raises RehearsalFailed or SafetyRefusal after the reports when it must refuse."""
    observer = observer or PlanObserver()
    env = request.env
    desired = load_environment_desired(env)
    credentials = Credentials.from_env(request.environ)
    with connect(env, credentials, on_retry=retry_callback(observer)) as client:
        live_csv = client.export()
    live = parse_export(live_csv)
    the_plan = plan_environment(env, desired, live).plan
    violations = safety.check(the_plan, env, request.overrides)
    clocks = check_clocks(env.freeze, dt.datetime.now(dt.UTC), client.server_time())
    if clocks.skew_warning:
        observer.clock_skewed(clocks.skew_warning)
    frozen = clocks.active
    # plan still runs in a freeze (review goes on); apply is the one that refuses
    notices = [policy.freeze_notice(frozen)] if frozen and not the_plan.empty else []
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
