"""``numsync gitlab comment`` and ``numsync gitlab report-apply`` as library calls.

The plan note: one per environment on the merge request, kept up to date (numsync.gitlab).
The apply report: after every apply on the default branch, a note on the merge request(s)
the commit belongs to, saying what happened — applied and verified, refused (with the flag
that lifts it), failed (with what had been sent), superseded — and linking the job.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from numsync import gitlab
from numsync.config import load_config
from numsync.core import safety
from numsync.errors import ConfigError, InputError, NumsyncError, ReviewRefusal, SafetyRefusal
from numsync.reports import markdown
from numsync.reports.escaping import code
from numsync.workflow import policy
from numsync.workflow.events import ApplyObserver
from numsync.workflow.plan import load_plan
from numsync.workflow.results import check_distinct, check_writable
from numsync.workflow.run_apply import ApplyOutcome, ApplyRequest, run_apply


class NotInMergeRequest(InputError):
    """GitLab's coordinates (API URL, project, merge request) are missing."""

    def explain_unwritten(self) -> str:
        return str(self)


def _missing(**values: str | None) -> list[str]:
    return [name for name, value in values.items() if not value]


def token_help(variable: str, what: str) -> str:
    """Why nothing was posted, and how to enable it."""
    return (
        f"{variable} is not set, so the {what} was not posted to the merge request (it is in the job's artifacts). "
        "To enable notes: create a project access token with the api scope and the Reporter role, and add it under "
        f"Settings > CI/CD > Variables as {variable} (masked, not protected, so merge-request pipelines can read it)."
    )


@dataclass(frozen=True, slots=True)
class CommentRequest:
    """Where and what to post; ``token`` None: say how to enable notes instead (not an error)."""

    plan_file: Path
    api_url: str | None = None
    project: str | None = None
    mr_iid: str | None = None
    commit: str | None = None
    artifacts_url: str | None = None
    token: str | None = None
    token_variable: str = gitlab.TOKEN_VARIABLE
    max_chars: int = gitlab.DEFAULT_MAX_CHARS
    dry_run: bool = False
    config_path: Path | None = None
    source: str | None = None
    target: str | None = None


@dataclass(frozen=True, slots=True)
class CommentOutcome:
    """The note's body, and what happened to it: ``action`` (created, updated, unchanged), or ``skipped`` (why not posted)."""

    body: str
    action: str | None = None
    note_id: object = None
    skipped: str | None = None


def run_comment(request: CommentRequest) -> CommentOutcome:
    """Build the plan note (with the safety checks of numsync.yaml when there is one) and post or update it."""
    the_plan = load_plan(request.plan_file)
    violations = the_plan.violations()  # as recorded when it was made; numsync.yaml, when here, judges again
    if request.config_path is not None:
        with contextlib.suppress(ConfigError):  # no numsync.yaml here: the note shows the plan without its checks
            env = load_config(request.config_path).environment(the_plan.environment)
            violations = safety.check(the_plan, env, the_plan.lifted())  # what the plan's record lifts stays lifted
    hint = gitlab.override_hint(violations).removeprefix("In GitLab CI: ")
    footer = [hint[:1].upper() + hint[1:]] if violations else []
    body = gitlab.note_body(
        the_plan.environment,
        # the flag is no way out in a pipeline: the footer names the label that lifts each check
        markdown.render_plan(the_plan, violations=[v.message for v in violations]),
        # a plan of the merge result records the merge commit it was made at; name that one
        commit=(the_plan.git_commit if request.source and request.target and the_plan.git_commit else None)
        or request.commit,
        artifacts_url=request.artifacts_url,
        max_chars=request.max_chars,
        footer=footer,
        source=request.source,
        target=request.target,
    )
    if request.dry_run:
        return CommentOutcome(body)
    if not request.token:
        return CommentOutcome(body, skipped=token_help(request.token_variable, "plan"))
    missing = _missing(
        **{
            "--api-url (CI_API_V4_URL)": request.api_url,
            "--project (CI_MERGE_REQUEST_PROJECT_ID or CI_PROJECT_ID)": request.project,
            "--merge-request (CI_MERGE_REQUEST_IID)": request.mr_iid,
        }
    )
    if missing:
        raise NotInMergeRequest(f"not in a merge-request pipeline: pass {', '.join(missing)}")
    assert request.api_url and request.project and request.mr_iid
    mr = gitlab.MergeRequest(request.api_url, request.project, request.mr_iid)
    with gitlab.GitLabNotes(mr, request.token) as notes:
        action, note = notes.upsert(gitlab.marker(the_plan.environment), body)
    return CommentOutcome(body, action, note.get("id", "?"))


# --- apply reports ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplyReport:
    """What one apply did, as the apply job records it (``--report FILE``) for the merge request note.

    ``outcome``: ``applied`` (and verified), ``nothing`` (no changes), ``failed``, ``refused``
    (nothing written; ``flags`` lift it), ``superseded`` (a newer merge applies),
    ``awaiting-approval`` (the reviewed plan was stale; the difference was posted for re-approval).
    """

    environment: str
    outcome: str
    message: str = ""
    applied: int = 0
    failed: int = 0
    not_sent: int = 0
    flags: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "outcome": self.outcome,
            "message": self.message,
            "applied": self.applied,
            "failed": self.failed,
            "not_sent": self.not_sent,
            "flags": self.flags,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ApplyReport:
        try:
            return cls(
                str(data["environment"]),
                str(data["outcome"]),
                str(data.get("message", "")),
                int(data.get("applied", 0)),
                int(data.get("failed", 0)),
                int(data.get("not_sent", 0)),
                [str(f) for f in data.get("flags", [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"not a numsync apply report: {exc!r}") from None


def report_of_outcome(environment: str, outcome: ApplyOutcome) -> ApplyReport:
    """The report of an apply that ran to its end (or stopped as planned)."""
    if outcome.superseded is not None:
        return ApplyReport(environment, "superseded", outcome.superseded.message())
    if outcome.result is None:
        return ApplyReport(environment, "nothing", "no changes: live matched desired")
    result, remaining = outcome.result, outcome.remaining
    converged = remaining is not None and remaining.empty
    verdict = "applied" if result.ok and converged else "failed"
    message = result.interrupted or (
        "applied and verified" if verdict == "applied" else "live still differs after apply"
    )
    return ApplyReport(environment, verdict, message, result.applied, len(result.failures), len(result.skipped))


def report_of_error(environment: str, error: NumsyncError) -> ApplyReport:
    """The report of an apply that an error or a refusal ended."""
    if isinstance(error, ReviewRefusal) and error.posted:
        return ApplyReport(environment, "awaiting-approval", error.explain())
    if isinstance(error, SafetyRefusal):
        flags = sorted({str(flag) for v in error.violations if (flag := getattr(v, "flag", None))})
        return ApplyReport(environment, "refused", "\n".join(error.details) or str(error), flags=flags)
    return ApplyReport(environment, "failed" if error.wrote else "refused", error.explain())


def write_report(path: Path, report: ApplyReport) -> None:
    path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", "utf-8")


def apply_and_report(
    request: ApplyRequest,
    observer: ApplyObserver | None = None,
    confirm: Callable[[str], bool] | None = None,
    *,
    report: Path | None = None,
) -> ApplyOutcome:
    """:func:`run_apply`, recording what happened in ``report`` (when given) whatever the ending."""
    if report is not None:  # before anything is sent: else the changes are made and their report is lost
        check_writable(report, "--report")
        journal = policy.journal_path(request.journal, request.environ)
        outputs = (("--journal", journal), ("--results", request.results), ("--junit", request.junit))
        check_distinct((*outputs, ("--report", report)))
    try:
        outcome = run_apply(request, observer, confirm) if confirm else run_apply(request, observer)
    except NumsyncError as exc:
        if report is not None:
            write_report(report, report_of_error(request.env.name, exc))
        raise
    if report is not None:
        write_report(report, report_of_outcome(request.env.name, outcome))
    return outcome


_HEADLINE = {
    "applied": "✅ applied and verified",
    "nothing": "✅ nothing to apply",
    "failed": "❌ failed",
    "refused": "⛔ refused: nothing was written",
    "superseded": "⏭️ superseded: a newer merge applies",
    "awaiting-approval": "⏸️ the reviewed plan is stale: nothing was written, re-approval needed",
}


def apply_note_body(report: ApplyReport, *, commit: str, job_url: str | None) -> str:
    """The note: a hidden marker (environment, commit), the verdict, the counts, the message, the job."""
    lines = [
        f"<!-- numsync-apply:{report.environment}:{commit} -->",
        f"#### numsync apply on {code(report.environment)}: {_HEADLINE.get(report.outcome, code(report.outcome))}",
        "",
        f"Commit {code(commit[:12])}: {report.applied} row(s) applied, {report.failed} failed, "
        f"{report.not_sent} not sent.",
    ]
    if report.message:
        lines += ["", *(f"- {code(line)}" for line in report.message.splitlines() if line.strip())]  # names data
    if report.flags:
        # a note on the merge request: the flag is no way out there, the label on a merge request is
        labels = ", ".join(code(gitlab.override_label(f)) for f in report.flags)
        lines += [
            "",
            f"To apply anyway after reviewing the plan, add the label(s) {labels} to a merge request and run its pipeline again.",
        ]
    if job_url:
        lines += ["", f"[The apply job]({job_url})"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class ReportRequest:
    report_file: Path
    api_url: str | None = None
    project: str | None = None
    commit: str | None = None
    job_url: str | None = None
    token: str | None = None
    token_variable: str = gitlab.TOKEN_VARIABLE


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    body: str
    merge_requests: list[str] = field(default_factory=list)
    skipped: str | None = None


def run_report_apply(request: ReportRequest) -> ReportOutcome:
    """Post the apply report on every merge request that ``commit`` belongs to (once per environment and commit)."""
    try:
        report = ApplyReport.from_json(json.loads(request.report_file.read_text("utf-8")))
    except ValueError as exc:
        raise InputError(f"{request.report_file} is not a numsync apply report: {exc}") from None
    commit = request.commit or ""
    body = apply_note_body(report, commit=commit or "unknown", job_url=request.job_url)
    if not request.token:
        return ReportOutcome(body, skipped=token_help(request.token_variable, "apply report"))
    missing = _missing(
        **{
            "--api-url (CI_API_V4_URL)": request.api_url,
            "--project (CI_PROJECT_ID)": request.project,
            "--commit (CI_COMMIT_SHA)": commit,
        }
    )
    if missing:
        raise NotInMergeRequest(f"cannot find the merge requests of this apply: pass {', '.join(missing)}")
    assert request.api_url and request.project
    posted = []
    for iid in gitlab.merge_requests_of(request.api_url, request.project, commit, request.token):
        mr = gitlab.MergeRequest(request.api_url, request.project, iid)
        with gitlab.GitLabNotes(mr, request.token) as notes:
            mark = body.splitlines()[0]
            if notes.find(mark) is None:  # a retried job does not post its report twice
                notes.create(body, mark=mark)
        posted.append(iid)
    return ReportOutcome(body, posted)
