"""The plan's formats (``numsync plan --format``): text for people, Markdown for merge requests, JSON for apply."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from numsync.reports import markdown, plan_json, text
from numsync.reports.registry import Format, Registry
from numsync.workflow.plan import Plan


@dataclass(frozen=True, slots=True)
class PlanReport:
    """What every plan format renders: the plan and the safety checks it fails (sentences)."""

    plan: Plan
    violations: Sequence[str] = ()
    notices: Sequence[str] = ()


def _text(report: PlanReport) -> str:
    notices = "".join(f"Note: {notice}\n" for notice in report.notices)
    return text.render_plan(report.plan) + "\n" + notices


def _markdown(report: PlanReport) -> str:
    return markdown.render_plan(report.plan, violations=report.violations, notices=report.notices)


def _json(report: PlanReport) -> str:
    return plan_json.render_json(report.plan)


FORMATS: Registry[PlanReport] = Registry(
    "plan",
    (
        Format("text", "for people (the default)", _text),
        Format("markdown", "for merge-request notes, with the safety checks that would refuse it", _markdown),
        Format("json", "the plan as saved by --out", _json),
    ),
)
