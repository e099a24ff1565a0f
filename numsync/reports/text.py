"""Plain-text renderings of plans and apply results, for terminals and CI logs."""

from __future__ import annotations

import json
from collections import Counter

from numsync.core.desired import DesiredState
from numsync.core.diff import ChangeKind, ChangeSummary, Diff, Retiring
from numsync.core.model import FIELDS, Field
from numsync.core.yamlsrc import Location
from numsync.ocp.vocabulary import desired_keys_named
from numsync.reports.escaping import visible
from numsync.workflow.apply import ApplyResult, BatchOutcome, RowFailure
from numsync.workflow.plan import Plan

_SIGILS = {
    ChangeKind.CREATE: "+",
    ChangeKind.UPDATE: "~",
    ChangeKind.REPLACE: "-/+",
    ChangeKind.DELETE: "-",
    ChangeKind.RETIRE: "~-",
}


def show(value: str | None) -> str:
    """A value as shown to people: JSON-quoted, invisible and layout-changing characters as escapes, or (empty)."""
    return "(empty)" if value is None else visible(json.dumps(value, ensure_ascii=False))


def ordered_fields(c: ChangeSummary) -> list[tuple[Field, tuple[str | None, str | None]]]:
    """A change's fields in the one order every format shows them (:data:`numsync.core.model.FIELDS`)."""
    return [(f, c.fields[f]) for f in FIELDS if f in c.fields]


def _change_lines(c: ChangeSummary, retired: Retiring | None = None) -> list[str]:
    group = visible(c.group_id)
    if c.kind is ChangeKind.REPLACE and c.live_group_id:
        group = f"{visible(c.live_group_id)} → {group}"
    head = f"  {_SIGILS[c.kind]:>3} {visible(c.number)}  ({group})  {c.kind.value}"
    if c.kind is ChangeKind.REPLACE:
        head += "  DESTRUCTIVE: GROUP_ID cannot be updated, the number is deleted and created again"
    if c.kind is ChangeKind.DELETE and retired is not None:
        head += f"  (retired: marked {retired.marked_on}, its grace period ended on {retired.delete_on})"
    elif c.kind is ChangeKind.DELETE:
        head += "  (prune)"
    if c.kind is ChangeKind.RETIRE:
        head += f"  retiring, deleted on or after {c.delete_on}: detached and marked now, kept until then"
    lines = [head]
    for f, (live, desired) in ordered_fields(c):
        if c.kind is ChangeKind.DELETE:
            lines.append(f"        {f.yaml_key}: {show(live)} (deleted with the number)")
        else:
            lines.append(f"        {f.yaml_key}: {show(live)} → {show(desired)}")
    return lines


def numbers_line(plan: Plan) -> str:
    """How many numbers the plan changes, by kind (the summary line counts rows)."""
    counts = Counter(c.kind for c in plan.changes)
    # retire is listed only when a plan has one: most groups never retire
    kinds = ", ".join(f"{counts[k]} to {k.value}" for k in ChangeKind if k is not ChangeKind.RETIRE or counts[k])
    return f"{len(plan.changes)} number(s): {kinds}"


def render_plan(plan: Plan) -> str:
    """The plan as a reviewer reads it: changes per number, then the operations per phase, then the summary line."""
    out = [f'numsync plan for environment "{plan.environment}"', ""]
    if plan.scope is not None:
        out += [f"Warning: {visible(plan.scope.warning())}", ""]
    if plan.overrides:
        out.append("Safety checks lifted when this plan was made (apply honours these):")
        out += [f"  {o.flag} by {visible(o.by)}: {visible(o.reason)}" for o in plan.overrides]
        out.append("")
    if plan.conflicts:
        out.append("Conflicts (numsync will not resolve these):")
        out += [f"  ! {visible(c)}" for c in plan.conflicts]  # they name live values: data
        out.append("")
    retired = {r.number: r for r in plan.retiring}
    if plan.changes:
        out.append("Changes:")
        for c in plan.changes:
            out += _change_lines(c, retired.get(c.number))
        out.append("")
    if plan.unmanaged:
        out.append(
            f"Unmanaged: {len(plan.unmanaged)} live number(s) in managed groups are in no desired file; left alone (set prune: true on the group to delete them):"
        )
        out += [f"  ? {n}" for n in plan.unmanaged[:50]]
        if len(plan.unmanaged) > 50:
            out.append(f"  … and {len(plan.unmanaged) - 50} more")
        out.append("")
    waiting = [r for r in plan.retiring if r.number not in {c.number for c in plan.changes}]
    if waiting:
        out.append(f"Retiring: {len(waiting)} number(s) detached and marked, in their grace period; left alone:")
        out += [
            f"  … {visible(r.number)}  ({visible(r.group_id)})  marked {r.marked_on}: retiring, deleted on or after {r.delete_on}"
            for r in waiting[:50]
        ]
        if len(waiting) > 50:
            out.append(f"  … and {len(waiting) - 50} more")
        out.append("")
    if plan.phases:
        out.append(f"Operations, in order ({plan.request_count()} request(s)):")
        for p, phase in enumerate(plan.phases, start=1):
            out.append(f"  Phase {p} of {len(plan.phases)}: {len(phase.rows)} row(s) in {len(phase.batches)} file(s)")
            for row in phase.rows:
                cells = "  ".join(f"{k}={show(v)}" for k, v in row.values.items())
                sent_as = f"NUMBER={show(row.listed_as)}  " if row.listed_as else ""  # the form OCP listed it in
                out.append(f"    {row.operation.value:<7} {row.number:<16} {sent_as}{cells}".rstrip())
        out.append("")
    if plan.empty and plan.conflicts:
        out.append(f"No operations, but {len(plan.conflicts)} conflict(s) above need a person.")
    elif plan.empty and plan.scope is not None:  # never "live matches desired" for what a partial run did not look at
        out.append(f"No changes in scope ({plan.in_sync} number(s) in scope in sync).")
    elif plan.empty:
        out.append(
            f"No changes. Live matches desired ({plan.in_sync} number(s) in sync, {plan.out_of_scope} out of scope)."
        )
    else:
        out.append(f"Plan: {plan.summary_line()}.")
        out.append(f"Numbers: {numbers_line(plan)}.")
    return "\n".join(out)


def render_batch(outcome: BatchOutcome) -> str:
    """One progress line per uploaded file."""
    if outcome.rows == 0:
        return f"  phase {outcome.phase} file {outcome.batch}: skipped ({len(outcome.skipped)} row(s) depend on failed rows)"
    status = f"HTTP {outcome.status}" if outcome.status else "no answer"
    line = f"  phase {outcome.phase} file {outcome.batch}: {outcome.rows} row(s) sent, {status}"
    if outcome.failures:
        line += f", {len(outcome.failures)} failed"
    if outcome.skipped:
        line += f", {len(outcome.skipped)} skipped"
    return line


def failure_location(failure: RowFailure, desired: DesiredState) -> Location | None:
    """Where in the desired YAML to fix a refused row: the value of the column OCP's message
    names (``MINIAPP_ID …`` → that number's ``miniapp_id``), else the number's key; None for a
    number no desired file lists (a prune's Detach or Delete)."""
    number = failure.row.number
    if number not in desired.locations:
        return None
    fields = desired.field_locations.get(number, {})
    for key in desired_keys_named(failure.message):
        if key in fields:
            return fields[key]
    return desired.locations[number]


def render_apply(result: ApplyResult, desired: DesiredState | None = None) -> str:
    """The outcome of an apply: counts, then a table of what failed and why.

    With ``desired``, each refused row is followed by the file:line:col of the YAML to fix.
    """
    total = max(result.planned, result.applied + len(result.failures) + len(result.skipped))
    unsent = f", {result.unsent} not sent or of unknown outcome" if result.unsent else ""
    out = [
        f"Applied {result.applied} of {total} operation(s) in {result.requests} request(s), "
        f"{len(result.failures)} failed, {len(result.skipped)} skipped{unsent}."
    ]
    if result.failures:
        out.append("Failed:")
        by_message: dict[str, list[RowFailure]] = {}
        for f in result.failures:
            by_message.setdefault(f.message, []).append(f)
        for said, failures in by_message.items():
            message = visible(said)  # OCP's words are remote text: no forged line, no reordering
            labels = [f"{f.row.operation.value} {f.row.number}" for f in failures]
            if len(failures) == 1:
                out.append(f"  {labels[0]:<24} {message}")
            else:  # one message for several rows (a whole file refused, or the same fault): say it once
                shown = ", ".join(labels[:5]) + (f" … and {len(labels) - 5} more" if len(labels) > 5 else "")
                out.append(f"  {len(labels)} rows ({shown}): {message}")
            if desired is not None:
                locations = list(
                    dict.fromkeys(loc for f in failures if (loc := failure_location(f, desired)) is not None)
                )
                out += [f"  {'':<24} at {loc}" for loc in locations[:5]]
                if len(locations) > 5:
                    out.append(f"  {'':<24} … and {len(locations) - 5} more place(s)")
    if result.skipped:
        out.append("Skipped (an earlier operation on the same number failed):")
        out += [f"  {r.operation.value:<7} {r.number}" for r in result.skipped]
    if result.interrupted:
        out.append(result.interrupted)
    return "\n".join(out)


def render_verify(remaining: Diff) -> str:
    """After apply: whether live now equals desired, and what differs if not."""
    if remaining.empty and not remaining.conflicts and remaining.excluded:  # a partial run verifies its scope only
        return f"Verified: live now matches desired for the numbers in scope ({remaining.excluded} left out of this partial run)."
    if remaining.empty and not remaining.conflicts:
        return "Verified: live now matches desired."
    lines = [f"NOT converged: {len(remaining.changes)} number(s) still differ from desired:"]
    for c in remaining.changes[:50]:
        fields = ", ".join(f"{fc.field.yaml_key} {show(fc.live)} (want {show(fc.desired)})" for fc in c.fields)
        lines.append(f"  {c.number} ({c.kind.value}) {fields}".rstrip())
    lines += [f"  ! {visible(c)}" for c in remaining.conflicts]
    return "\n".join(lines)
