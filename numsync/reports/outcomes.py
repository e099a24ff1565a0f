"""``--format json`` of the commands that report an outcome: apply, import, init and export's summary.

Each is one JSON object on stdout, with ``command`` naming its shape; the shapes are published as
``numsync/schema/<command>.schema.json`` and described in docs/output.md. (validate, plan,
drift, plan diff and environments have JSON formats of their own; ``show --format json`` is the plan.)
Paths are shown as the command was given them; no credential or token is ever part of a value.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from numsync.core.diff import Diff
from numsync.core.model import NumberRecord
from numsync.workflow.apply import BatchOutcome
from numsync.workflow.plan import Plan
from numsync.workflow.run_gitlab import ApplyReport

#: Raised when a shape changes incompatibly (a field removed or its meaning changed); new fields keep it.
FORMAT_VERSION = 1


def _dump(data: Mapping[str, Any]) -> str:
    return json.dumps({"format_version": FORMAT_VERSION, **data}, indent=2, ensure_ascii=False) + "\n"


def render_apply(
    report: ApplyReport, plan: Plan | None, batches: Sequence[BatchOutcome], remaining: Diff | None
) -> str:
    """What one apply did: the verdict and counts of ``report`` (as ``apply --report`` writes it), the plan's
    summary, every file sent, and how many numbers still differed from desired when it verified."""
    return _dump(
        {
            "command": "apply",
            **report.to_json(),
            "plan": None if plan is None else {"summary": plan.summary_line(), "requests": plan.request_count()},
            "batches": [batch.to_json() for batch in batches],
            "remaining": None if remaining is None else len(remaining.changes),
        }
    )


def render_import(environment: str, written: Sequence[Path], numbers: int, adopted: int | None) -> str:
    """The files ``import`` wrote, the numbers they hold (``--unmanaged``: the numbers it adopted; else null)."""
    return _dump(
        {
            "command": "import",
            "environment": environment,
            "written": [str(path) for path in written],
            "numbers": numbers,
            "adopted": adopted,
        }
    )


def render_init(path: Path, environment: str, groups: Mapping[str, int | None], discovered_from: str | None) -> str:
    """The numsync.yaml ``init`` wrote: its environment, its groups with their live counts (null: not looked up,
    ``--group``), and the API the groups were discovered from (null with ``--group``)."""
    return _dump(
        {
            "command": "init",
            "path": str(path),
            "environment": environment,
            "groups": dict(groups),
            "discovered_from": discovered_from,
        }
    )


def render_export(environment: str, path: Path, size: int, live: Sequence[NumberRecord]) -> str:
    """The summary of an export written to ``path``: its size in bytes, its numbers, and each group's count."""
    return _dump(
        {
            "command": "export",
            "environment": environment,
            "path": str(path),
            "bytes": size,
            "numbers": len(live),
            "groups": dict(sorted(Counter(r.group_id for r in live).items())),
        }
    )
