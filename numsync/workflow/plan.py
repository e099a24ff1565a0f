"""The Plan artifact: what will be uploaded, in which order, and what it was computed from.

A plan is plain data and round-trips through JSON (``numsync plan --out plan.json``), so
what a reviewer saw is exactly what ``apply`` uploads. ``live_fingerprint`` and
``desired_hash`` identify the inputs, so a stale plan can be refused.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

from numsync.config import Environment
from numsync.core.diff import ChangeKind, ChangeSummary, Diff, Retiring, Scope
from numsync.core.model import NumberRecord, records_fingerprint
from numsync.core.safety import Overrides, RecordedOverride, Violation
from numsync.errors import PlanFileError
from numsync.ocp.compile import minimum_requests, plan_phases
from numsync.ocp.rows import Batch, OperationRow, Phase
from numsync.ocp.vocabulary import COLUMN, FIELD_OF_COLUMN, Operation

PLAN_FORMAT_VERSION = 1


def fingerprint(records: Iterable[NumberRecord]) -> str:
    """SHA-256 over the normalized records (sorted by NUMBER): equal iff the states are equal.

    See :func:`numsync.core.model.records_fingerprint` (in the core, so the desired loader can
    keep the desired state's fingerprint with its cache).
    """
    return records_fingerprint(records)


class NoticeKind(enum.Enum):
    """What a plan notice is about (the ``kind`` in the plan file)."""

    FREEZE = "freeze"  # a change freeze was in force when the plan was made
    SAFETY = "safety"  # a safety check the plan fails: apply will refuse it


@dataclass(frozen=True, slots=True)
class Notice:
    """What a reviewer must know about a plan, as it stood when the plan was made; every format shows it.

    ``flag``: for a safety notice, the flag that lifts the check (None: no flag does).
    """

    kind: NoticeKind
    text: str
    flag: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"kind": self.kind.value, "text": self.text} | (
            {"flag": self.flag} if self.kind is NoticeKind.SAFETY else {}
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notice:
        flag = data.get("flag")
        return cls(NoticeKind(data["kind"]), str(data["text"]), None if flag is None else str(flag))

    @classmethod
    def of_violation(cls, violation: Violation) -> Notice:
        return cls(NoticeKind.SAFETY, violation.message, violation.flag)


@dataclass(slots=True)
class Plan:
    """Everything ``apply`` needs and a reviewer reads.

    ``phases``: ordered; each a list of batches; each batch the rows of one PUT.
    ``changes``: per-number summaries; ``unmanaged``: NUMBERs reported but left alone;
    ``conflicts``: sentences for what numsync refuses to resolve; ``scope``: the numbers a
    partial run considered (None: every managed number); ``retiring``: numbers marked for
    retirement earlier (those in their grace period are left alone; those past it are deleted);
    ``overrides``: the safety checks lifted when the plan was made, with who lifted each and why
    (apply honours these); ``notices``: what held when the plan was made (a freeze in force, the
    safety checks it fails), for every format to show; apply judges both afresh, so they are not
    part of what the tamper check compares.
    """

    environment: str
    phases: list[Phase]
    changes: list[ChangeSummary]
    unmanaged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    in_sync: int = 0
    out_of_scope: int = 0
    limits: dict[str, int] = field(default_factory=dict)
    live_fingerprint: str = ""
    desired_hash: str = ""
    live_counts: dict[str, int] = field(default_factory=dict)
    desired_count: int = 0
    desired_counts: dict[str, int] = field(default_factory=dict)
    git_commit: str | None = None
    overrides: list[RecordedOverride] = field(default_factory=list)
    version: int = PLAN_FORMAT_VERSION
    scope: Scope | None = None
    retiring: list[Retiring] = field(default_factory=list)
    planned_on: str | None = None  # the UTC day retirements were judged by (ISO), when a group retires
    notices: list[Notice] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when applying would upload nothing."""
        return not self.phases

    def operation_counts(self) -> dict[Operation, int]:
        """Rows per OPERATION over the whole plan."""
        counts = {op: 0 for op in Operation}
        for phase in self.phases:
            for row in phase.rows:
                counts[row.operation] += 1
        return counts

    def request_count(self) -> int:
        """Number of PUT requests the plan makes (one per batch)."""
        return sum(len(p.batches) for p in self.phases)

    def summary_line(self) -> str:
        """``N to create, N to update, N to attach, N to detach, N to delete``."""
        c = self.operation_counts()
        return (
            f"{c[Operation.CREATE]} to create, {c[Operation.UPDATE]} to update, {c[Operation.ATTACH]} to attach, "
            f"{c[Operation.DETACH]} to detach, {c[Operation.DELETE]} to delete"
        )

    def lifted(self) -> Overrides:
        """The safety checks this plan's record lifts."""
        return Overrides.of_flags(o.flag for o in self.overrides)

    def violations(self) -> list[Violation]:
        """The safety checks the plan failed when it was made, as its notices record them."""
        return [Violation(n.text, n.flag) for n in self.notices if n.kind is NoticeKind.SAFETY]

    def notes(self) -> list[str]:
        """The notices that are not safety checks (those have their own place in every format)."""
        return [n.text for n in self.notices if n.kind is not NoticeKind.SAFETY]

    def replacements(self) -> list[str]:
        """NUMBERs that change group: destroyed and created again."""
        return [c.number for c in self.changes if c.kind is ChangeKind.REPLACE]

    def to_json(self) -> dict[str, Any]:
        """The artifact as JSON-ready data (see docs/plan-format.md)."""
        return {
            "format_version": self.version,
            "environment": self.environment,
            "live_fingerprint": self.live_fingerprint,
            "desired_hash": self.desired_hash,
            "git_commit": self.git_commit,
            "overrides": [o.to_json() for o in self.overrides],
            "live_counts": self.live_counts,
            "desired_count": self.desired_count,
            "desired_counts": self.desired_counts,
            "summary": {op.value: n for op, n in self.operation_counts().items()} | {"requests": self.request_count()},
            "limits": self.limits,
            "in_sync": self.in_sync,
            "out_of_scope": self.out_of_scope,
            "unmanaged": self.unmanaged,
            "conflicts": self.conflicts,
            "scope": self.scope.to_json() if self.scope is not None else None,
            "retiring": [r.to_json() for r in self.retiring],
            "planned_on": self.planned_on,
            "notices": [n.to_json() for n in self.notices],
            "changes": [
                {
                    "number": c.number,
                    "kind": c.kind.value,
                    "group_id": c.group_id,
                    "live_group_id": c.live_group_id,
                    "fields": {COLUMN[f]: {"live": v[0], "desired": v[1]} for f, v in c.fields.items()},
                }
                | ({"delete_on": c.delete_on} if c.delete_on else {})
                for c in self.changes
            ],
            "phases": [[[row.to_json() for row in batch.rows] for batch in phase.batches] for phase in self.phases],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        """Inverse of :meth:`to_json`. Raises ValueError for another format version or a bad shape."""
        if not isinstance(data, Mapping):
            raise PlanFileError("not a numsync plan: the JSON is not an object")
        if "format_version" not in data:
            raise PlanFileError("not a numsync plan: it has no format_version; save one with numsync plan --out FILE")
        if data.get("format_version") != PLAN_FORMAT_VERSION:
            raise PlanFileError(
                f"plan format version {data.get('format_version')!r} is not {PLAN_FORMAT_VERSION}; make the plan again with this numsync"
            )
        where = "phases"  # the part being read, for a message that says where the file is wrong
        try:
            phases = []
            for p, phase in enumerate(data["phases"]):
                batches = []
                for b, batch in enumerate(phase):
                    rows = []
                    for r, row in enumerate(batch):
                        where = f"phases[{p}][{b}][{r}]"
                        rows.append(OperationRow.from_json(row))
                    batches.append(Batch(tuple(rows)))
                phases.append(Phase(tuple(batches)))
            where = "changes"
            changes = []
            for i, c in enumerate(data["changes"]):
                where = f"changes[{i}]"
                changes.append(
                    ChangeSummary(
                        c["number"],
                        ChangeKind(c["kind"]),
                        c["group_id"],
                        {FIELD_OF_COLUMN[k]: (v["live"], v["desired"]) for k, v in c["fields"].items()},
                        c.get("live_group_id"),
                        c.get("delete_on"),
                    )
                )
            where = "retiring"
            retiring = [
                Retiring(
                    r["number"],
                    r["group_id"],
                    dt.date.fromisoformat(r["marked_on"]),
                    dt.date.fromisoformat(r["delete_on"]),
                )
                for r in data.get("retiring", [])
            ]
            where = "overrides"
            overrides = [
                RecordedOverride(str(o["flag"]), str(o["by"]), str(o["reason"])) for o in data.get("overrides", [])
            ]
            Overrides.of_flags(o.flag for o in overrides)  # a flag that lifts no check: not a plan numsync made
            notices = []
            for i, n in enumerate(data.get("notices", [])):  # a plan saved before notices has none
                where = f"notices[{i}]"
                notices.append(Notice.from_json(n))
            where = "the top level"
            return cls(
                environment=data["environment"],
                phases=phases,
                changes=changes,
                unmanaged=list(data.get("unmanaged", [])),
                conflicts=list(data.get("conflicts", [])),
                in_sync=int(data.get("in_sync", 0)),
                out_of_scope=int(data.get("out_of_scope", 0)),
                limits=dict(data.get("limits", {})),
                live_fingerprint=data.get("live_fingerprint", ""),
                desired_hash=data.get("desired_hash", ""),
                git_commit=data.get("git_commit"),
                overrides=overrides,
                live_counts={str(k): int(v) for k, v in data.get("live_counts", {}).items()},
                desired_count=int(data.get("desired_count", 0)),
                desired_counts={str(k): int(v) for k, v in data.get("desired_counts", {}).items()},
                scope=Scope.from_json(data["scope"]) if data.get("scope") is not None else None,
                retiring=retiring,
                planned_on=data.get("planned_on"),
                notices=notices,
            )
        except KeyError as exc:
            raise PlanFileError(f"not a numsync plan: {where} lacks {exc}") from None
        except (TypeError, ValueError, AttributeError) as exc:
            # in words, not a Python repr: "'bogus' is not a valid ChangeKind", "string indices must be integers"
            raise PlanFileError(
                f"not a numsync plan: at {where}, a value has the wrong shape or kind ({exc})"
            ) from None


def load_plan(path: Path) -> Plan:
    """The plan saved at ``path`` (raises PlanFileError, naming the file, when it is not one; OSError when unreadable)."""
    return load_plan_with_data(path)[0]


def load_plan_with_data(path: Path) -> tuple[Plan, dict[str, Any]]:
    """The plan saved at ``path`` and the JSON as the file holds it (for checks of what a reviewer saw)."""
    try:
        data = json.loads(path.read_text("utf-8"))
        return Plan.from_json(data), data
    except PlanFileError as exc:
        said = str(exc).removeprefix("not a numsync plan: ")
        raise PlanFileError(f"{path} is not a numsync plan: {said}") from None
    except RecursionError:  # "[[[[…": JSON nested deeper than Python's stack; no plan is
        raise PlanFileError(f"{path} is not a numsync plan: its JSON is nested too deeply to read") from None
    except ValueError as exc:  # bad JSON or UTF-8
        raise PlanFileError(f"{path} is not a numsync plan: {exc}") from None


def make_plan(
    env: Environment,
    desired: Mapping[str, NumberRecord],
    live: Iterable[NumberRecord],
    result: Diff,
    *,
    git_commit: str | None = None,
    scope: Scope | None = None,
    desired_hash: str | None = None,
) -> Plan:
    """Turn a diff into a Plan for ``env`` (raises planner.PlanningError when a change cannot be planned).

    ``scope``: the partial run ``result`` was diffed for, recorded in the plan. ``desired_hash``:
    ``fingerprint(desired.values())`` when the caller already has it (a load keeps it with its cache,
    :attr:`~numsync.core.state.DesiredState.fingerprint`); computed here otherwise.
    """
    phases = plan_phases(result, env.limits)
    scoped = [r for r in live if r.group_id in env.groups]
    # Counter counts in C and keeps first-seen order, so the keys come out as the plain loops made them:
    # env's groups first, then any other desired group in the order the records name it
    by_group = attrgetter("group_id")
    live_counts = dict.fromkeys(env.groups, 0)
    live_counts.update(Counter(map(by_group, scoped)))
    desired_counts = dict.fromkeys(env.groups, 0)
    desired_counts.update(Counter(map(by_group, desired.values())))
    return Plan(
        environment=env.name,
        phases=phases,
        changes=[ChangeSummary.of(c) for c in result.changes],
        unmanaged=[r.number for r in result.unmanaged],
        conflicts=list(result.conflicts),
        in_sync=result.in_sync,
        out_of_scope=result.out_of_scope,
        limits={op.value: n for op, n in env.limits.items()},
        live_fingerprint=fingerprint(scoped),
        desired_hash=desired_hash if desired_hash is not None else fingerprint(desired.values()),
        live_counts=live_counts,
        desired_count=len(desired),
        desired_counts=desired_counts,
        git_commit=git_commit,
        scope=scope,
        retiring=list(result.retiring),
        planned_on=result.today.isoformat() if result.today else None,
    )


__all__ = ["ChangeSummary", "Plan", "fingerprint", "load_plan", "make_plan", "minimum_requests"]
