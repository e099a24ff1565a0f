"""Drift: how live differs from desired, classified for on-call staff and auditors.

Built from the same diff as a plan, but nothing here can write: the CLI gives it an
export taken through a read-only session (:class:`numsync.ocp.OCPReader`).

Kinds of drift, per number:

- ``missing``: desired, not live;
- ``unmanaged``: live in a managed group, in no desired file;
- ``changed``: a field differs (each field with its desired and live value);
- ``wrong_group``: live in another group than desired (managed or not).

Each item may also be ``protected`` (the number is in the environment's protected list),
``suppressed`` (a configured suppression with a reason hides it until its ``until``
date), and — given the desired state last applied — a ``cause``: ``out_of_band`` (desired
did not change since, so someone changed OCP) or ``pending_apply`` (desired changed in
git and was not applied yet).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from numsync.core.diff import ChangeKind, Diff
from numsync.core.model import NumberRecord
from numsync.core.policy import Suppression
from numsync.core.schema import schema_problems

DRIFT_FORMAT_VERSION = 1


class DriftKind(str, enum.Enum):
    """The kind of one drift item."""

    MISSING = "missing"
    UNMANAGED = "unmanaged"
    CHANGED = "changed"
    WRONG_GROUP = "wrong_group"


class DriftCause(str, enum.Enum):
    """Why a number drifted, when the desired state last applied is known."""

    OUT_OF_BAND = "out_of_band"  # desired did not change since: someone changed OCP
    PENDING_APPLY = "pending_apply"  # desired changed in git and was not applied yet


class DriftScope(Protocol):
    """What classification reads of an environment (``numsync.config.Environment`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def protected(self) -> frozenset[str]: ...
    @property
    def groups(self) -> Mapping[str, object]: ...


@dataclass(frozen=True, slots=True)
class FieldDrift:
    """One differing field: its desired-YAML name and both values (None: empty)."""

    field: str
    desired: str | None
    live: str | None


@dataclass(frozen=True, slots=True)
class DriftItem:
    """One drifted number in one environment.

    ``first_seen`` is an ISO-8601 UTC timestamp (from ``--previous`` when the same drift was
    reported before); ``cause`` is ``out_of_band``, ``pending_apply`` or None (unknown).
    """

    environment: str
    number: str
    kind: DriftKind
    group_id: str
    live_group_id: str | None = None
    fields: tuple[FieldDrift, ...] = ()
    protected: bool = False
    cause: DriftCause | None = None
    first_seen: str = ""
    suppressed_by: str | None = None

    @property
    def key(self) -> str:
        """Identity across reports: environment, number, kind and the drifted fields."""
        return "|".join([self.environment, self.number, self.kind.value, ",".join(f.field for f in self.fields)])

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        data["cause"] = self.cause.value if self.cause else None
        data["fields"] = [asdict(f) for f in self.fields]
        return data


@dataclass(slots=True)
class EnvironmentDrift:
    """Drift of one environment: ``items`` (suppressed ones included, marked), counts, and the suppressions to
    look at: ``expired`` (they hide nothing), ``expiring`` (within the warning days), ``unused`` (they match nothing)."""

    environment: str
    items: list[DriftItem] = field(default_factory=list)
    in_sync: int = 0
    out_of_scope: int = 0
    expired_suppressions: list[Suppression] = field(default_factory=list)
    expiring_suppressions: list[Suppression] = field(default_factory=list)
    unused_suppressions: list[Suppression] = field(default_factory=list)

    @property
    def active(self) -> list[DriftItem]:
        """Items not hidden by a suppression."""
        return [i for i in self.items if not i.suppressed_by]


@dataclass(slots=True)
class DriftReport:
    """Drift over one or more environments, taken at ``generated_at`` (ISO-8601 UTC)."""

    generated_at: str
    environments: list[EnvironmentDrift]

    @property
    def drifted(self) -> bool:
        """True when any environment has unsuppressed drift."""
        return any(e.active for e in self.environments)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data; shape in numsync/schema/drift.schema.json."""
        return {
            "format_version": DRIFT_FORMAT_VERSION,
            "generated_at": self.generated_at,
            "drifted": self.drifted,
            "environments": [
                {
                    "environment": e.environment,
                    "in_sync": e.in_sync,
                    "out_of_scope": e.out_of_scope,
                    "counts": counts(e.active),
                    "expired_suppressions": [s.to_json() for s in e.expired_suppressions],
                    "expiring_suppressions": [s.to_json() for s in e.expiring_suppressions],
                    "unused_suppressions": [s.to_json() for s in e.unused_suppressions],
                    "items": [i.to_json() for i in e.items],
                }
                for e in self.environments
            ],
        }


def counts(items: Iterable[DriftItem]) -> dict[str, int]:
    """Items per kind (every kind present, zero included)."""
    result = {k.value: 0 for k in DriftKind}
    for item in items:
        result[item.kind.value] += 1
    return result


def now_utc() -> str:
    """The current time as ISO-8601 UTC, seconds precision."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def classify(
    env: DriftScope, result: Diff, live: Iterable[NumberRecord], desired: Mapping[str, NumberRecord]
) -> EnvironmentDrift:
    """Turn a diff into drift items for ``env`` (no causes, no ages, no suppressions yet)."""
    drift = EnvironmentDrift(env.name, in_sync=result.in_sync, out_of_scope=result.out_of_scope)
    live_by_number = {r.number: r for r in live}
    retiring = {r.number for r in result.retiring}  # marked earlier: their deletion is expected, not drift
    for change in result.changes:
        if change.number in retiring:
            continue
        protected = change.number in env.protected
        fields = tuple(FieldDrift(c.field.yaml_key, c.desired, c.live) for c in change.fields)
        if change.kind is ChangeKind.CREATE:
            item = DriftItem(env.name, change.number, DriftKind.MISSING, change.group_id, protected=protected)
        elif change.kind in (ChangeKind.DELETE, ChangeKind.RETIRE):  # listed in no file (retired after review)
            item = DriftItem(
                env.name, change.number, DriftKind.UNMANAGED, change.group_id, change.group_id, protected=protected
            )
        elif change.kind is ChangeKind.REPLACE:
            assert change.live is not None
            item = DriftItem(
                env.name,
                change.number,
                DriftKind.WRONG_GROUP,
                change.group_id,
                change.live.group_id,
                protected=protected,
            )
        else:
            item = DriftItem(
                env.name, change.number, DriftKind.CHANGED, change.group_id, change.group_id, fields, protected
            )
        drift.items.append(item)
    for record in result.unmanaged:
        drift.items.append(
            DriftItem(
                env.name,
                record.number,
                DriftKind.UNMANAGED,
                record.group_id,
                record.group_id,
                protected=record.number in env.protected,
            )
        )
    for number, want in desired.items():
        have = live_by_number.get(number)
        if have is not None and have.group_id not in env.groups:
            drift.items.append(
                DriftItem(
                    env.name,
                    number,
                    DriftKind.WRONG_GROUP,
                    want.group_id,
                    have.group_id,
                    protected=number in env.protected,
                )
            )
    drift.items.sort(key=lambda i: (i.number, i.kind.value))
    return drift


def attribute(
    drift: EnvironmentDrift, desired_now: Mapping[str, NumberRecord], desired_applied: Mapping[str, NumberRecord]
) -> None:
    """Set each item's cause by comparing today's desired state with the one last applied."""
    drift.items = [
        replace(
            i,
            cause=DriftCause.PENDING_APPLY
            if desired_now.get(i.number) != desired_applied.get(i.number)
            else DriftCause.OUT_OF_BAND,
        )
        for i in drift.items
    ]


def age(drift: EnvironmentDrift, previous: Mapping[str, str], now: str) -> None:
    """Set ``first_seen``: from ``previous`` (item key → first_seen) when reported before, else ``now``."""
    drift.items = [replace(i, first_seen=previous.get(i.key, now)) for i in drift.items]


def suppress(
    drift: EnvironmentDrift, suppressions: Iterable[Suppression], today: dt.date, *, warn_days: int = 7
) -> None:
    """Hide items matched by an unexpired suppression; list the expired ones (they hide nothing), those that
    expire within ``warn_days`` days (``until`` at most that far from ``today``), and the unexpired ones that
    match no item (unused: the drift they were for is gone, or they name the wrong number or kind)."""
    live: list[Suppression] = []
    expired: list[Suppression] = []
    for s in suppressions:
        (expired if s.until < today else live).append(s)
    drift.expired_suppressions = expired
    drift.expiring_suppressions = [s for s in live if (s.until - today).days <= warn_days]
    used: set[int] = set()
    items = []
    for item in drift.items:
        at = next((i for i, s in enumerate(live) if s.matches(item.number, item.kind.value)), None)
        if at is None:
            items.append(item)
            continue
        used.add(at)
        match = live[at]
        items.append(replace(item, suppressed_by=f"{match.reason} (until {match.until.isoformat()})"))
    drift.items = items
    drift.unused_suppressions = [s for i, s in enumerate(live) if i not in used]


def previous_report_problem(data: Any) -> str | None:
    """Why ``data`` (an earlier JSON report, for ``--previous``) is not a drift report numsync wrote, or None.

    The report comes from a file or a CI artifact: its shape is checked against the drift schema,
    and every ``first_seen`` must be a timestamp with a zone, since the age column subtracts it.
    """
    problems = schema_problems("drift", data, "")
    if problems:
        return problems[0].message
    for e, env in enumerate(data["environments"]):
        for i, raw in enumerate(env["items"]):
            seen = raw["first_seen"]
            try:
                zoned = not seen or dt.datetime.fromisoformat(seen).tzinfo is not None
            except ValueError:
                zoned = False
            if not zoned:
                where = f"environments.{e}.items.{i}.first_seen"
                return f"{where}: {seen!r} is not an ISO-8601 timestamp with a time zone"
    return None


def previous_first_seen(data: Mapping[str, Any]) -> dict[str, str]:
    """Item key → first_seen from an earlier JSON drift report (``--previous``)."""
    seen = {}
    for env in data.get("environments", []):
        for raw in env.get("items", []):
            item = DriftItem(
                raw["environment"],
                raw["number"],
                DriftKind(raw["kind"]),
                raw["group_id"],
                fields=tuple(FieldDrift(f["field"], f.get("desired"), f.get("live")) for f in raw.get("fields", [])),
            )
            if raw.get("first_seen"):
                seen[item.key] = raw["first_seen"]
    return seen


def age_days(first_seen: str, now: str) -> float:
    """Days between two ISO-8601 timestamps."""
    return (dt.datetime.fromisoformat(now) - dt.datetime.fromisoformat(first_seen)).total_seconds() / 86400
