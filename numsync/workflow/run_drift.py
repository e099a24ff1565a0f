"""``numsync drift`` as a library call: how live differs from desired in each environment (read-only)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from numsync.config import Config
from numsync.core import drift as drift_mod
from numsync.errors import InputError, PlanFileError
from numsync.ocp import Credentials
from numsync.workflow import policy
from numsync.workflow.events import Observer, retry_callback
from numsync.workflow.pipeline import (
    check_token_lifetime,
    connect_readonly,
    desired_at_commit,
    export_live,
    load_environment_desired,
    verify,
)
from numsync.workflow.plan import load_plan


@dataclass(frozen=True, slots=True)
class DriftRequest:
    """``env_name``: one environment, or None / ``"all"`` for every one; ``previous``: an earlier JSON report;
    ``last_applied``: the plan file last applied, or its git commit; ``environ``: for the credentials;
    ``previous_report``: an earlier JSON report already read (GitLab's artifact), used when ``previous`` is None."""

    config: Config
    env_name: str | None = None
    previous: Path | None = None
    last_applied: str | None = None
    environ: Mapping[str, str] = field(default_factory=dict)
    previous_report: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DriftOutcome:
    """The report, and the exit code: 2 when anything drifted (suppressed items aside), else 0."""

    report: drift_mod.DriftReport

    @property
    def exit_code(self) -> int:
        return 2 if self.report.drifted else 0


def read_previous(path: Path) -> dict[str, Any]:
    """The earlier JSON report at ``path`` (``--previous``); InputError, naming the file and the spot, when it is not one."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except RecursionError:  # "[[[[…": nested deeper than Python's stack
        reason: str | None = "its JSON is nested too deeply to read"
    except ValueError as exc:  # not JSON, or not UTF-8
        reason = str(exc)
    else:
        reason = drift_mod.previous_report_problem(data)
    if reason is not None:
        raise InputError(
            f"{path} is not a numsync drift report: {reason}; give --previous the drift.json an earlier "
            "`numsync drift --format json` wrote"
        )
    report: dict[str, Any] = data
    return report


def run_drift(request: DriftRequest, observer: Observer | None = None) -> DriftOutcome:
    """Export each environment read-only and classify, attribute, age and suppress its drift."""
    observer = observer or Observer()
    config = request.config
    name = request.env_name
    names = list(config.environments) if name in (None, "all") else [config.environment(name).name]
    earlier = read_previous(request.previous) if request.previous else request.previous_report
    seen = drift_mod.previous_first_seen(earlier) if earlier else {}
    now = drift_mod.now_utc()
    report = drift_mod.DriftReport(now, [])
    for env_name in names:
        env = config.environment(env_name)
        env.require_endpoints()  # a ${VAR} without a value: named before credentials are read
        desired = load_environment_desired(env)
        credentials = Credentials.from_env(request.environ, env.credentials)
        check_token_lifetime(credentials, policy.needed_seconds(), observer.warned)
        with connect_readonly(
            env, credentials, on_retry=retry_callback(observer), on_otp_wait=observer.waiting_for_code
        ) as reader:
            live = export_live(reader, observer)
        env_drift = drift_mod.classify(env, verify(env, desired.records, live), live, desired.records)
        if request.last_applied:
            applied = desired_at_commit(env, commit_of(request.last_applied))
            drift_mod.attribute(env_drift, desired.records, applied.records)
        drift_mod.age(env_drift, seen, now)
        today = datetime.datetime.fromisoformat(now).date()
        drift_mod.suppress(env_drift, env.suppressions, today, warn_days=env.drift.warn_days)
        report.environments.append(env_drift)
    return DriftOutcome(report)


def commit_of(last_applied: str) -> str:
    """The git commit ``--last-applied`` names: a saved plan's (without ``-dirty``), or the text itself."""
    path = Path(last_applied)
    if path.is_file():
        commit = load_plan(path).git_commit
        if not commit:
            raise PlanFileError(f"{path} records no git commit (it was made outside git); pass the commit instead")
        return commit.removesuffix("-dirty")
    return last_applied
