"""What differs between two plans: numbers, fields and rows, for ``numsync plan diff`` and stale-plan refusals.

The comparison runs deepdiff over the plans' structured changes (number → kind, groups and
field → live/desired), so every difference is found by one well-kept library; this module
only names each difference in the project's terms. Rows are compared as uploaded (OPERATION,
NUMBER and cells); a row that only moved to another file is not a difference in what is done.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deepdiff import DeepDiff

from numsync.core.diff import ChangeSummary
from numsync.workflow.plan import Plan


@dataclass(frozen=True, slots=True)
class FieldDifference:
    """One attribute of one number's change that differs: ``what`` is ``kind``, ``group_id``, or a desired key."""

    number: str
    what: str
    old: Any
    new: Any


@dataclass(slots=True)
class PlanDifference:
    """Numbers only in the old or the new plan, attributes that differ, rows only in one, and the rest."""

    only_old: list[str] = field(default_factory=list)
    only_new: list[str] = field(default_factory=list)
    changed: list[FieldDifference] = field(default_factory=list)
    rows_only_old: list[str] = field(default_factory=list)
    rows_only_new: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.only_old or self.only_new or self.changed or self.rows_only_old or self.rows_only_new or self.other
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "numbers_only_in_old": self.only_old,
            "numbers_only_in_new": self.only_new,
            "changed": [{"number": c.number, "what": c.what, "old": c.old, "new": c.new} for c in self.changed],
            "rows_only_in_old": self.rows_only_old,
            "rows_only_in_new": self.rows_only_new,
            "other": self.other,
        }


def _changes(changes: list[ChangeSummary]) -> dict[str, dict[str, Any]]:
    return {
        c.number: {
            "kind": c.kind.value,
            "group_id": c.group_id,
            "live_group_id": c.live_group_id,
            "delete_on": c.delete_on,
            "fields": {f.yaml_key: {"live": live, "desired": desired} for f, (live, desired) in c.fields.items()},
        }
        for c in changes
    }


def _rows(plan: Plan) -> Counter[str]:
    return Counter(
        " ".join(
            [row.operation.value, row.listed_as or row.number, *(f"{k}={v}" for k, v in sorted(row.values.items()))]
        )
        for phase in plan.phases
        for row in phase.rows
    )


def _describe(path: list[Any]) -> str:
    """A deepdiff path below one number (``['fields', 'note', 'desired']``) in desired-file words."""
    if path[:1] == ["fields"] and len(path) >= 2:
        return f"{path[1]} ({path[2]})" if len(path) >= 3 else str(path[1])
    return ".".join(map(str, path))


def compare_plans(old: Plan, new: Plan) -> PlanDifference:
    """Every difference between ``old`` and ``new`` that a reviewer would care about."""
    result = PlanDifference()
    before, after = _changes(old.changes), _changes(new.changes)
    # numbers in one plan only are told apart here; deepdiff compares the numbers both plans change
    # (over a whole side that is empty it reports the root itself, which names no number)
    result.only_old = sorted(before.keys() - after.keys())
    result.only_new = sorted(after.keys() - before.keys())
    common = sorted(before.keys() & after.keys())
    tree = DeepDiff({n: before[n] for n in common}, {n: after[n] for n in common}, view="tree", ignore_order=False)
    for kind in ("dictionary_item_added", "dictionary_item_removed", "values_changed", "type_changes"):
        for level in tree.get(kind, []):
            path = level.path(output_format="list")
            if len(path) < 2:
                continue
            number, rest = path[0], path[1:]
            old_value = None if kind == "dictionary_item_added" else level.t1
            new_value = None if kind == "dictionary_item_removed" else level.t2
            result.changed.append(FieldDifference(number, _describe(rest), old_value, new_value))
    result.changed.sort(key=lambda c: (c.number, c.what))
    rows_old, rows_new = _rows(old), _rows(new)
    result.rows_only_old = sorted((rows_old - rows_new).elements())
    result.rows_only_new = sorted((rows_new - rows_old).elements())
    if old.environment != new.environment:
        result.other.append(f"environment: {old.environment!r} → {new.environment!r}")
    if old.scope != new.scope:
        was, now = (s.describe() if s is not None else "every number" for s in (old.scope, new.scope))
        result.other.append(f"scope: {was} → {now}")
    if old.request_count() != new.request_count():
        result.other.append(f"requests: {old.request_count()} → {new.request_count()}")
    if old.live_fingerprint != new.live_fingerprint:
        result.other.append("the live state differs between the two plans")
    if old.desired_hash != new.desired_hash:
        result.other.append("the desired state differs between the two plans")
    return result


#: The parts of a saved plan a reviewer saw and safety judged; ``git_commit`` is provenance only.
REVIEWED_PARTS = (
    "environment",
    "live_fingerprint",
    "desired_hash",
    "live_counts",
    "desired_count",
    "desired_counts",
    "summary",
    "limits",
    "in_sync",
    "out_of_scope",
    "unmanaged",
    "conflicts",
    "scope",
    "retiring",
    "changes",
    "phases",
)


def edited_parts(saved: Plan | Mapping[str, Any], fresh: Plan) -> list[str]:
    """The reviewed parts in which ``saved`` (a plan, or the JSON of a plan file as it stands) differs
    from ``fresh`` (the same inputs planned again)."""
    old = saved.to_json() if isinstance(saved, Plan) else saved
    new = fresh.to_json()
    return [part for part in REVIEWED_PARTS if old.get(part) != new.get(part)]
