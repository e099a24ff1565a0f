"""The scheduled drift job's GitLab side: what it reads before the report, and the issue it keeps after.

Before: :func:`fetch_drift_context` finds the previous scheduled run's ``drift.json`` (the
newest earlier schedule pipeline of the default branch whose drift job for this environment
kept one, so persisting drift keeps its ``first_seen``) and the last applied commit (the
environment's newest successful deployment whose job's ``apply-report.json`` says it applied,
or that there was nothing to do — a superseded apply wrote nothing). Either may be missing;
the run then goes on without it and says so.

After: with ``drift: {gitlab_issue: true}``, :func:`sync_drift_issue` keeps one issue per
environment, found by its label ``numsync-drift::ENV``: opened when there is drift, its
description replaced by the latest report on every run, closed (with a last word) when the
drift is gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from numsync import gitlab
from numsync.config import Config
from numsync.core.drift import DriftReport, EnvironmentDrift, previous_report_problem
from numsync.errors import GitLabError
from numsync.reports import drift as drift_reports

#: The drift job's name in the pipeline, ``{env}`` replaced by the environment.
DEFAULT_DRIFT_JOB = "drift: [{env}]"
#: How many earlier schedule pipelines are looked at for the previous report.
PIPELINES_LOOKED_AT = 20
#: Apply outcomes after which live is what desired said at the deployment's commit.
APPLIED_OUTCOMES = ("applied", "nothing")


def issue_label(environment: str) -> str:
    """The label of an environment's drift issue (a scoped label: one value per environment)."""
    return f"numsync-drift::{environment}"


@dataclass(frozen=True, slots=True)
class DriftContextRequest:
    """Where to look: GitLab's API, the project, the environment, the default branch, this pipeline (skipped)."""

    environment: str
    api_url: str | None = None
    project: str | None = None
    token: str | None = None
    token_variable: str = gitlab.TOKEN_VARIABLE
    branch: str | None = None
    pipeline_id: str | None = None
    drift_job: str = DEFAULT_DRIFT_JOB


@dataclass(frozen=True, slots=True)
class DriftContext:
    """``previous``: the previous JSON report; ``last_applied``: a commit; ``notes``: what was found or not, and why."""

    previous: dict[str, Any] | None = None
    last_applied: str | None = None
    notes: list[str] = field(default_factory=list)


def _unset(api_url: str | None, project: str | None, token_variable: str, token: str | None) -> list[str]:
    """The names of the CI variables (and the token's) that GitLab calls need and that have no value."""
    given = (("CI_API_V4_URL", api_url), ("CI_PROJECT_ID", project), (token_variable, token))
    return [name for name, value in given if not value]


def fetch_drift_context(request: DriftContextRequest) -> DriftContext:
    """The previous report and the last applied commit for ``request.environment``; missing ones are notes, not errors."""
    missing = _unset(request.api_url, request.project, request.token_variable, request.token)
    if missing:
        return DriftContext(notes=[f"{', '.join(missing)} not set: drift runs without --previous and --last-applied"])
    assert request.api_url and request.project and request.token
    notes: list[str] = []
    previous = last_applied = None
    with gitlab.GitLabProject(request.api_url, request.project, request.token) as api:
        try:
            previous = _previous_report(api, request, notes)
        except GitLabError as exc:
            notes.append(f"the previous drift report could not be read, so every item counts as new: {exc}")
        try:
            last_applied = _last_applied(api, request.environment, notes)
        except GitLabError as exc:
            notes.append(f"the last applied commit could not be read, so drift causes are not told apart: {exc}")
    return DriftContext(previous, last_applied, notes)


def _previous_report(
    api: gitlab.GitLabProject, request: DriftContextRequest, notes: list[str]
) -> dict[str, Any] | None:
    job_name = request.drift_job.replace("{env}", request.environment)
    filters = {"source": "schedule", **({"ref": request.branch} if request.branch else {})}
    for pipeline in api.pipelines(**filters)[:PIPELINES_LOOKED_AT]:
        if str(pipeline.get("id")) == str(request.pipeline_id):
            continue  # this run
        # a drift job that found drift fails (exit 2): its report counts as much as a clean one's
        jobs = [j for j in api.pipeline_jobs(pipeline["id"], ("success", "failed")) if j.get("name") == job_name]
        for job in sorted(jobs, key=lambda j: int(j.get("id", 0)), reverse=True):
            content = api.job_artifact(job["id"], "drift.json")
            if content is None:
                continue
            try:
                report = json.loads(content)
            except ValueError:
                report = None
            if not isinstance(report, dict):
                notes.append(f"job #{job['id']} kept a drift.json that is not a JSON report; skipped")
                continue
            problem = previous_report_problem(report)
            if problem is not None:  # an artifact is input like any file: its ages feed the report
                notes.append(f"job #{job['id']} kept a drift.json that is not a drift report ({problem}); skipped")
                continue
            notes.append(f"previous drift report: job #{job['id']} of schedule pipeline #{pipeline['id']}")
            return report
    notes.append(f"no earlier scheduled {job_name!r} kept drift.json: every item counts as new")
    return None


def _last_applied(api: gitlab.GitLabProject, environment: str, notes: list[str]) -> str | None:
    for deployment in api.deployments(environment):
        job = (deployment.get("deployable") or {}).get("id")
        sha = deployment.get("sha")
        if not job or not sha:
            continue
        content = api.job_artifact(job, "apply-report.json")
        try:
            outcome = json.loads(content).get("outcome") if content else None
        except (ValueError, AttributeError):
            outcome = None
        if outcome in APPLIED_OUTCOMES:
            notes.append(f"last applied: commit {str(sha)[:12]} (deployment #{deployment.get('id')}, job #{job})")
            return str(sha)
    notes.append(f"no deployment of {environment!r} applied anything yet: drift causes are not told apart")
    return None


@dataclass(frozen=True, slots=True)
class DriftIssueRequest:
    """The project and token; ``job_url``: this run, linked from the issue."""

    api_url: str | None = None
    project: str | None = None
    token: str | None = None
    token_variable: str = gitlab.TOKEN_VARIABLE
    job_url: str | None = None


@dataclass(frozen=True, slots=True)
class DriftIssueOutcome:
    """``action``: opened, updated, closed or none (no drift, no open issue); ``url``: the issue, when there is one."""

    environment: str
    action: str
    url: str | None = None


def with_issues(config: Config, report: DriftReport) -> DriftReport | None:
    """The part of ``report`` whose environments keep a GitLab issue (``drift: {gitlab_issue: true}``), or None."""
    kept = [e for e in report.environments if config.environment(e.environment).drift.gitlab_issue]
    return DriftReport(report.generated_at, kept) if kept else None


def issue_body(report: DriftReport, env: EnvironmentDrift, *, job_url: str | None) -> str:
    """The issue's description: this environment's drift report in Markdown, and the run it is from."""
    text = drift_reports.render_markdown(DriftReport(report.generated_at, [env]))
    tail = f"\n\nFrom [the scheduled drift job]({job_url}); updated on every run." if job_url else ""
    pointer = "**The report is too long for an issue and was cut here.** The full report is in the job's artifacts.\n"
    return gitlab.truncate(text, gitlab.DEFAULT_MAX_CHARS, pointer).rstrip("\n") + tail + "\n"


def sync_drift_issue(request: DriftIssueRequest, report: DriftReport) -> list[DriftIssueOutcome]:
    """Keep each reported environment's drift issue up to date (raises GitLabError when GitLab refuses)."""
    missing = _unset(request.api_url, request.project, request.token_variable, request.token)
    if missing:
        raise GitLabError(f"drift.gitlab_issue is on, but {', '.join(missing)} not set: no issue could be kept")
    assert request.api_url and request.project and request.token
    outcomes = []
    with gitlab.GitLabProject(request.api_url, request.project, request.token) as api:
        for env in report.environments:
            label = issue_label(env.environment)
            open_issues = sorted(api.issues(label), key=lambda i: int(i.get("iid", 0)))
            body = issue_body(report, env, job_url=request.job_url)
            if env.active:
                if open_issues:
                    issue = api.update_issue(open_issues[0]["iid"], description=body)
                    action = "updated"
                else:
                    issue = api.create_issue(f"numsync: drift in {env.environment}", body, [label])
                    action = "opened"
                outcomes.append(DriftIssueOutcome(env.environment, action, issue.get("web_url")))
            elif open_issues:
                for issue in open_issues:  # one is kept; a second (opened by hand with the label) closes too
                    closed = api.update_issue(
                        issue["iid"],
                        description=body.rstrip("\n")
                        + f"\n\nNo drift as of {report.generated_at}: closed by numsync.\n",
                        state_event="close",
                    )
                outcomes.append(DriftIssueOutcome(env.environment, "closed", closed.get("web_url")))
            else:
                outcomes.append(DriftIssueOutcome(env.environment, "none"))
    return outcomes
