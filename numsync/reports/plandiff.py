"""Renderings of a plan difference (``numsync plan diff``): text for people, JSON for tools."""

from __future__ import annotations

import json
from typing import Any

from numsync.reports.escaping import code
from numsync.reports.text import show
from numsync.workflow.plandiff import PlanDifference


def _value(value: Any) -> str:
    if value is None or isinstance(value, str):
        return show(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def render_text(difference: PlanDifference) -> str:
    """The difference as a reviewer reads it: numbers, then their attributes, then rows."""
    if difference.empty:
        return "The plans are the same: the same numbers, changes and rows.\n"
    out: list[str] = []
    if difference.only_old:
        out.append(f"Only in the old plan ({len(difference.only_old)} number(s)):")
        out += [f"  - {n}" for n in difference.only_old]
    if difference.only_new:
        out.append(f"Only in the new plan ({len(difference.only_new)} number(s)):")
        out += [f"  + {n}" for n in difference.only_new]
    if difference.changed:
        out.append(f"Changed in both ({len({c.number for c in difference.changed})} number(s)):")
        out += [f"  ~ {c.number}  {c.what}: {_value(c.old)} → {_value(c.new)}" for c in difference.changed]
    if difference.rows_only_old or difference.rows_only_new:
        out.append("Rows:")
        out += [f"  - {r}" for r in difference.rows_only_old]
        out += [f"  + {r}" for r in difference.rows_only_new]
    out += difference.other
    return "\n".join(out) + "\n"


def render_json(difference: PlanDifference) -> str:
    return json.dumps(difference.to_json(), indent=2, ensure_ascii=False) + "\n"


def render_markdown(difference: PlanDifference) -> str:
    """The text rendering as a Markdown list, each line a code span (the lines name numbers and values: data)."""
    lines = render_text(difference).rstrip("\n").splitlines()
    return (
        "\n".join(f"- {code(line.strip())}" if line.startswith("  ") else f"- **{code(line)}**" for line in lines)
        + "\n"
    )
