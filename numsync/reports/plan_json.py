"""Machine-readable renderings of a plan: the saved-plan JSON and GitLab's Terraform report.

GitLab's merge-request widget reads ``artifacts:reports:terraform`` files of the form
``{"create": N, "update": N, "delete": N}``. numsync counts operation rows, as the plan's
summary line does: Create rows are creates, Delete rows deletes, and Update, Attach and
Detach rows updates (a new number that is also attached counts once in each column).
"""

from __future__ import annotations

import json

from numsync.ocp.vocabulary import Operation
from numsync.workflow.plan import Plan

_TERRAFORM_KIND = {
    Operation.CREATE: "create",
    Operation.UPDATE: "update",
    Operation.ATTACH: "update",
    Operation.DETACH: "update",
    Operation.DELETE: "delete",
}


def render_json(plan: Plan) -> str:
    """The plan as saved by ``plan --out`` (and read back by ``apply PLAN``)."""
    return json.dumps(plan.to_json(), indent=2, ensure_ascii=False) + "\n"


def terraform_report(plan: Plan) -> dict[str, int]:
    """``{"create": N, "update": N, "delete": N}`` for ``artifacts:reports:terraform``."""
    report = {"create": 0, "update": 0, "delete": 0}
    for op, n in plan.operation_counts().items():
        report[_TERRAFORM_KIND[op]] += n
    return report


def render_terraform_report(plan: Plan) -> str:
    """:func:`terraform_report` as the JSON text GitLab reads."""
    return json.dumps(terraform_report(plan)) + "\n"
