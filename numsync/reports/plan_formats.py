"""The plan's formats (``numsync plan --format``): text for people, Markdown for merge requests, JSON for apply."""

from __future__ import annotations

from dataclasses import dataclass

from numsync.core.safety import LiftContext
from numsync.reports import markdown, plan_json, text
from numsync.reports.escaping import visible
from numsync.reports.registry import Format, Registry
from numsync.workflow.plan import Plan


@dataclass(frozen=True, slots=True)
class PlanReport:
    """What every plan format renders: the plan (its notices included) and where it is shown (``context``:
    how a failed safety check is lifted differs between a plan being made and a saved one)."""

    plan: Plan
    context: LiftContext = LiftContext.PLAN


def _text(report: PlanReport) -> str:
    notes = "".join(f"Note: {notice}\n" for notice in report.plan.notes())
    violations = report.plan.violations()
    refused = (
        "Apply would be refused by these safety checks:\n"
        + "".join(f"  - {visible(v.worded(report.context))}\n" for v in violations)
        if violations
        else ""
    )
    return text.render_plan(report.plan) + "\n" + notes + refused


def _markdown(report: PlanReport) -> str:
    return markdown.render_plan(report.plan, violations=[v.worded(report.context) for v in report.plan.violations()])


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
