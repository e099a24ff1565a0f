"""Markdown rendering of a plan, for merge-request notes and the plan.md CI artifact.

Values from OCP or the desired files are shown JSON-quoted (as in the text plan) inside code
spans, so Markdown, HTML and GitLab references (``@user``, ``#12``, ``!3``) in them are never
interpreted; free text outside code spans is escaped. Tables are built as rows of cells
first and formatted last, where every cell's pipes are escaped for GFM tables.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from numsync.core.diff import ChangeKind, ChangeSummary
from numsync.ocp.vocabulary import NUMBER
from numsync.reports.escaping import code
from numsync.reports.text import numbers_line, ordered_fields, show
from numsync.workflow.plan import Plan

_SIGILS = {
    ChangeKind.CREATE: "➕",
    ChangeKind.UPDATE: "✏️",
    ChangeKind.REPLACE: "♻️",
    ChangeKind.DELETE: "➖",
    ChangeKind.RETIRE: "⏳",
}
_KINDS = {
    ChangeKind.CREATE: "create",
    ChangeKind.UPDATE: "update",
    ChangeKind.REPLACE: "**replace**: deleted and created again (GROUP_ID cannot be updated)",
    ChangeKind.DELETE: "delete (prune)",
    ChangeKind.RETIRE: "retire: detached and marked",
}
#: Shown in full up to this many; past it, a count.
UNMANAGED_SHOWN = 50

_ESCAPED = re.compile(r"([\\`*_\[\]|~$&])")


def escape(text: str) -> str:
    """Free text as literal Markdown on one line: inline-significant punctuation backslash-escaped, ``<`` as an entity."""
    text = _ESCAPED.sub(r"\\\1", text)
    return text.replace("<", "&lt;").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def value(v: str | None) -> str:
    """A field value: JSON-quoted in a code span, or *(empty)*."""
    return "*(empty)*" if v is None else code(show(v))


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GFM table; cells are inline Markdown, their pipes escaped here (also inside code spans, as GFM wants)."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(_cell(c) for c in cells) + " |"

    return [line(header), "|" + "|".join("---" for _ in header) + "|", *(line(r) for r in rows)]


def _cell(text: str) -> str:
    # GFM splits rows on unescaped pipes and then turns every \| back into |, so this one
    # rule is right for plain text and code spans alike; a cell is one line.
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ") or " "


def change_rows(changes: Sequence[ChangeSummary]) -> list[list[str]]:
    """One row per changed field; the first row of a number names it, the kind and the group."""
    rows: list[list[str]] = []
    for c in changes:
        group = code(c.group_id)
        if c.kind is ChangeKind.REPLACE and c.live_group_id:
            group = f"{code(c.live_group_id)} → {group}"
        kind = _KINDS[c.kind] + (f"; retiring, deleted on or after {c.delete_on}" if c.delete_on else "")
        head = [_SIGILS[c.kind], code(c.number), group, kind]
        fields = ordered_fields(c)
        if not fields:
            rows.append(head + ["", "", ""])
            continue
        for i, (name, (live, desired)) in enumerate(fields):
            rows.append((head if i == 0 else ["", "", "", ""]) + [code(name.yaml_key), value(live), value(desired)])
    return rows


def operation_rows(plan: Plan) -> list[list[str]]:
    """One row per uploaded operation row, in upload order."""
    rows = []
    for p, phase in enumerate(plan.phases, start=1):
        for b, batch in enumerate(phase.batches, start=1):
            for row in batch.rows:
                # the form OCP listed it in, when not E.164
                values = ({NUMBER: row.listed_as} if row.listed_as else {}) | row.values
                cells = ", ".join(code(f"{k}={show(v)}") for k, v in values.items())
                rows.append([str(p), str(b), row.operation.value, code(row.number), cells])
    return rows


def render_plan(
    plan: Plan, *, violations: Sequence[str] | None = None, heading: str = "###", notices: Sequence[str] | None = None
) -> str:
    """The plan for a merge request: summary, notices, safety refusals, conflicts, changes, operations.

    ``violations`` are the safety checks the plan fails (sentences, shown as a warning; None: those
    the plan's notices record, worded for a plan being made); ``notices`` what else a reviewer must
    know (None: the plan's, such as a change freeze in force).
    """
    if violations is None:
        violations = [str(v) for v in plan.violations()]
    if notices is None:
        notices = plan.notes()
    out = [f"{heading} numsync plan for {code(plan.environment)}", ""]
    if plan.empty and plan.scope is not None:
        out.append(f"**No changes in scope** ({plan.in_sync} number(s) in scope in sync).")
    elif plan.empty:
        out.append(
            f"**No changes.** Live matches desired ({plan.in_sync} number(s) in sync, {plan.out_of_scope} out of scope)."
        )
    else:
        out.append(
            f"**Plan: {plan.summary_line()}**, in {plan.request_count()} request(s). Numbers: {numbers_line(plan)}."
        )
    if plan.git_commit:
        out[-1] += f" Desired files at commit {code(plan.git_commit[:12])}."
    out.append("")
    if plan.scope is not None:
        # the lead once, in bold; the groups and numbers (data) in code spans, numsync's own words as text
        out += [f":warning: **Partial run** (as Terraform's `-target`): {plan.scope.warning_detail(code)}", ""]
    for notice in notices:
        out += [f":information_source: {code(notice)}", ""]
    if plan.overrides:
        out.append(":unlock: **Safety checks lifted** when this plan was made (apply honours these):")
        out += [f"- {code(o.flag)} by {code(o.by)}: {code(o.reason)}" for o in plan.overrides]  # names and words: data
        out.append("")
    if violations:
        out.append(":warning: **Apply would be refused** by these safety checks:")
        out += [f"- {code(v)}" for v in violations]  # they name numbers and groups: data
        out.append("")
    if plan.conflicts:
        out.append(":no_entry: **Conflicts** (numsync will not resolve these; apply is refused until they are fixed):")
        out += [f"- {code(c)}" for c in plan.conflicts]  # they name live groups: data
        out.append("")
    if plan.changes:
        out.append(f"**Changes** ({len(plan.changes)} number(s)):")
        out.append("")
        out += table(["", "Number", "Group", "Change", "Field", "Live", "Desired"], change_rows(plan.changes))
        out.append("")
    if plan.unmanaged:
        shown = ", ".join(code(n) for n in plan.unmanaged[:UNMANAGED_SHOWN])
        more = f" and {len(plan.unmanaged) - UNMANAGED_SHOWN} more" if len(plan.unmanaged) > UNMANAGED_SHOWN else ""
        out.append(
            f"**Unmanaged:** {len(plan.unmanaged)} live number(s) in managed groups are in no desired file and are left alone "
            f"(set `prune: true` on the group to delete them): {shown}{more}."
        )
        out.append("")
    waiting = [r for r in plan.retiring if r.number not in {c.number for c in plan.changes}]
    if waiting:
        shown = ", ".join(
            f"{code(r.number)} (retiring, deleted on or after {r.delete_on})" for r in waiting[:UNMANAGED_SHOWN]
        )
        more = f" and {len(waiting) - UNMANAGED_SHOWN} more" if len(waiting) > UNMANAGED_SHOWN else ""
        out.append(f"**Retiring:** {len(waiting)} number(s) detached and marked, in their grace period: {shown}{more}.")
        out.append("")
    if plan.phases:
        rows = operation_rows(plan)
        out.append(
            f"<details><summary>Operations, in upload order: {len(rows)} row(s) in {plan.request_count()} file(s), {len(plan.phases)} phase(s)</summary>"
        )
        out.append("")
        out += table(["Phase", "File", "Operation", "Number", "Values"], rows)
        out.append("")
        out.append("</details>")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
