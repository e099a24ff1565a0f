"""On merge, the plan that was reviewed is what runs (as Atlantis users expect).

The merge-request pipeline's plan job saves ``plan.json`` for the merge result. After the
merge, the apply job fetches that artifact from GitLab (:func:`fetch_reviewed_plan`: the
merged merge request of the commit, its latest successful pipeline, the environment's plan
job there) and :func:`judge_review` compares it with what planning now gives:

- **fresh** (same desired content, same live fingerprint): apply runs the reviewed plan exactly;
- **same** (stale, but a plan made now changes the same numbers, fields and rows): nothing a
  reviewer read differs, so the plan made now runs;
- **differs**: apply refuses — or, with ``on_stale_review: repost``, also posts the difference
  and the new plan to the merge request (:func:`repost_for_approval`) for re-approval — instead of
  applying something nobody saw.

Override flags come from the reviewed plan's own record (who lifted which check and why).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numsync import gitlab
from numsync.errors import NoReviewedPlan, PlanFileError
from numsync.reports import markdown
from numsync.reports.escaping import code
from numsync.reports.plandiff import render_markdown
from numsync.workflow.plan import Plan
from numsync.workflow.plandiff import PlanDifference, compare_plans

#: The plan job's name in the pipeline, ``{env}`` replaced by the environment (GitLab names matrix jobs so).
DEFAULT_PLAN_JOB = "plan: [{env}]"
#: The artifact file the plan job saves.
DEFAULT_ARTIFACT = "plan.json"


@dataclass(frozen=True, slots=True)
class ReviewedPlanRequest:
    """Where to find the reviewed plan: GitLab's API, the project, the merged ``commit``, the environment.

    ``plan_job``: the plan job's name (``{env}`` is replaced); ``save_to``: where to keep the fetched
    plan (an artifact of the apply job); ``replan_to``: where to save a plan made now that differs
    from it (what a re-approval would apply); ``pipeline_url``: this pipeline, linked in a repost.
    """

    environment: str
    api_url: str | None = None
    project: str | None = None
    commit: str | None = None
    token: str | None = None
    token_variable: str = gitlab.TOKEN_VARIABLE
    plan_job: str = DEFAULT_PLAN_JOB
    artifact: str = DEFAULT_ARTIFACT
    save_to: Path | None = None
    replan_to: Path | None = None
    pipeline_url: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewedPlan:
    """The reviewed plan, the JSON as GitLab kept it (for the tamper check) and where it came from."""

    plan: Plan
    data: dict[str, Any]
    source: gitlab.ReviewedArtifact


def fetch_reviewed_plan(request: ReviewedPlanRequest) -> ReviewedPlan:
    """The plan reviewed for ``request.commit`` (raises NoReviewedPlan, saying what is missing, or GitLabError)."""
    missing = [
        name
        for name, value in (
            ("--api-url (CI_API_V4_URL)", request.api_url),
            ("--project (CI_PROJECT_ID)", request.project),
            ("--commit (CI_COMMIT_SHA)", request.commit),
            (request.token_variable, request.token),
        )
        if not value
    ]
    if missing:
        raise NoReviewedPlan(
            f"cannot fetch the plan reviewed in the merge request: {', '.join(missing)} not set "
            "(the token needs the api scope and at least the Reporter role)"
        )
    assert request.api_url and request.project and request.commit and request.token
    job = request.plan_job.replace("{env}", request.environment)
    with gitlab.GitLabProject(request.api_url, request.project, request.token) as api:
        found = gitlab.find_reviewed_artifact(api, request.commit, job, request.artifact)
    try:
        data = json.loads(found.content.decode("utf-8"))
        the_plan = Plan.from_json(data)
    except (PlanFileError, ValueError) as exc:
        said = str(exc).removeprefix("not a numsync plan: ")
        raise PlanFileError(f"{request.artifact} of {found.where()} is not a numsync plan: {said}") from None
    if the_plan.environment != request.environment:
        raise NoReviewedPlan(
            f"{request.artifact} of {found.where()} is a plan for environment {the_plan.environment!r}, "
            f"not {request.environment!r}"
        )
    # The artifact comes from the merge request's own pipeline, which its author's branch defines; an override it
    # records counts only when the merge request shows it too, as the label reviewers saw (and GitLab logged).
    unlabelled = [o.flag for o in the_plan.overrides if gitlab.override_label(o.flag) not in found.labels]
    if unlabelled:
        labels = ", ".join(gitlab.override_label(flag) for flag in unlabelled)
        raise NoReviewedPlan(
            f"{request.artifact} of {found.where()} records {' '.join(unlabelled)}, but the merge request does not "
            f"carry the label(s) {labels}: an override must be visible on the merge request it was reviewed in"
        )
    if request.save_to is not None:
        request.save_to.write_bytes(found.content)
    return ReviewedPlan(the_plan, data, found)


class Review(enum.Enum):
    """How the reviewed plan stands against planning now."""

    FRESH = "fresh"  # same desired, same live: run it exactly
    SAME = "same"  # stale inputs, the same numbers, fields and rows: run the plan made now
    DIFFERS = "differs"  # a plan made now does something else: never applied without re-approval


def same_effect(difference: PlanDifference) -> bool:
    """Whether two plans change the same numbers, fields and rows (only the inputs' fingerprints may differ)."""
    return not (
        difference.only_old
        or difference.only_new
        or difference.changed
        or difference.rows_only_old
        or difference.rows_only_new
    )


def judge_review(
    reviewed: Plan, fresh: Plan, *, inputs_fresh: bool, edited: Sequence[str] = ()
) -> tuple[Review, PlanDifference]:
    """The verdict on ``reviewed`` against ``fresh`` (planned now). ``inputs_fresh``: the fingerprints agree;
    ``edited``: the reviewed parts in which the artifact differs from planning its own recorded state again
    (numsync.yaml changed since, e.g. its limits or groups, or the file was edited). Fresh means both hold."""
    difference = compare_plans(reviewed, fresh)
    if inputs_fresh and not edited:
        return Review.FRESH, difference
    return (Review.SAME if same_effect(difference) else Review.DIFFERS), difference


def repost_marker(environment: str, commit: str) -> str:
    """The hidden comment of a re-approval note (one per environment and merged commit)."""
    return f"<!-- numsync-reapprove:{environment}:{commit} -->"


def reapproval_body(
    environment: str, commit: str, difference: PlanDifference, fresh: Plan, *, pipeline_url: str | None
) -> str:
    """The note asking for re-approval: what differs from the reviewed plan, the new plan, and how to approve it."""
    where = f"[this pipeline]({pipeline_url})" if pipeline_url else "the merge commit's pipeline"
    lines = [
        repost_marker(environment, commit),
        f"#### numsync apply on {code(environment)}: ⏸️ the reviewed plan is stale, re-approval needed",
        "",
        f"Since this merge request's plan was reviewed, the desired files or the live numbers changed, and a plan made "
        f"now for commit {code(commit[:12])} differs from it. **Nothing was written.**",
        "",
        "Between the reviewed plan (old) and the plan made now (new):",
        "",
        render_markdown(difference).rstrip("\n"),
        "",
        markdown.render_plan(fresh, heading="#####").rstrip("\n"),
        "",
        f"To apply the new plan after reviewing it, a maintainer runs the manual job {code(f'approve: [{environment}]')} "
        f"of {where}: it applies exactly the plan shown here, if live has not moved again.",
    ]
    return "\n".join(lines) + "\n"


def repost_for_approval(
    request: ReviewedPlanRequest, reviewed: ReviewedPlan, difference: PlanDifference, fresh: Plan
) -> str:
    """Post (or update) the re-approval note on the reviewed merge request; returns ``!IID``."""
    assert request.api_url and request.project and request.token and request.commit  # fetch_reviewed_plan checked
    mr = gitlab.MergeRequest(request.api_url, request.project, reviewed.source.merge_request)
    body = reapproval_body(request.environment, request.commit, difference, fresh, pipeline_url=request.pipeline_url)
    with gitlab.GitLabNotes(mr, request.token) as notes:
        notes.upsert(repost_marker(request.environment, request.commit), body)
    return f"!{mr.iid}"


__all__ = [
    "Review",
    "ReviewedPlan",
    "ReviewedPlanRequest",
    "fetch_reviewed_plan",
    "judge_review",
    "reapproval_body",
    "repost_for_approval",
]
