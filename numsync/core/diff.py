"""Desired vs live → per-number changes.

Both sides arrive normalized (E.164 NUMBER, canonical LOCALE, stripped values), so a
value that differs only in form is no change. Only numbers in the environment's
managed groups are considered; live numbers elsewhere are counted, never touched.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from numsync.core.model import FIELDS, Field, NumberRecord
from numsync.core.policy import GroupPolicy


class ChangeKind(str, enum.Enum):
    """What must happen to one number."""

    CREATE = "create"  # desired, not live
    UPDATE = "update"  # live in the desired group, some field differs
    REPLACE = "replace"  # live in another managed group: GROUP_ID cannot be updated → Delete + Create
    DELETE = "delete"  # live in a group with prune: true, not desired
    RETIRE = "retire"  # not desired in a group with retire_after: detached and marked now, deleted after the grace

    @property
    def is_destructive(self) -> bool:
        """Whether the number is deleted (and so may be lost to the carrier): a delete or a replacement."""
        return self in (ChangeKind.DELETE, ChangeKind.REPLACE)


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field whose live value differs from the desired one; None means empty."""

    field: Field
    live: str | None
    desired: str | None


@dataclass(frozen=True, slots=True)
class Change:
    """The change of one number: its kind, both sides (None where absent) and differing fields."""

    number: str
    kind: ChangeKind
    desired: NumberRecord | None
    live: NumberRecord | None
    fields: tuple[FieldChange, ...] = ()
    delete_on: dt.date | None = None  # a retirement: the first day an apply may delete the number

    @property
    def group_id(self) -> str:
        """The group the number ends up in (desired), or leaves (live) when deleted."""
        record = self.desired or self.live
        assert record is not None
        return record.group_id


@dataclass(frozen=True, slots=True)
class ChangeSummary:
    """One number's change as shown to reviewers and judged by safety: kind, group, field → (live, desired).

    ``live_group_id`` is the group the number is in now, when it is live; ``delete_on`` the day
    from which a retiring number may be deleted (ISO date), for a retirement.
    """

    number: str
    kind: ChangeKind
    group_id: str
    fields: dict[Field, tuple[str | None, str | None]]
    live_group_id: str | None = None
    delete_on: str | None = None

    @classmethod
    def of(cls, change: Change) -> ChangeSummary:
        live_group = change.live.group_id if change.live else None
        fields = {c.field: (c.live, c.desired) for c in change.fields}
        if change.kind is ChangeKind.REPLACE and change.live is not None and change.desired is not None:
            # the number is created afresh in its new group: show every value it had and will have
            have, want = change.live, change.desired
            fields = {f: (have.get(f), want.get(f)) for f in FIELDS if have.get(f) is not None or f in fields}
        delete_on = change.delete_on.isoformat() if change.delete_on else None
        return cls(change.number, change.kind, change.group_id, fields, live_group, delete_on)

    @property
    def home_group_id(self) -> str:
        """The group whose thresholds judge this change: the one a replacement leaves, else its own."""
        return self.live_group_id or self.group_id

    @property
    def detaches_or_deletes(self) -> bool:
        """Whether applying it detaches the number from its miniapp or deletes it (a retirement starts a deletion)."""
        if self.kind.is_destructive or self.kind is ChangeKind.RETIRE:
            return True
        live, desired = self.fields.get(Field.MINIAPP_ID, (None, None))
        return live is not None and desired is None


@dataclass(frozen=True, slots=True)
class Scope:
    """The numbers a partial run (``--group``, ``--number``, ``--retry-failed``) considers, like Terraform's ``-target``.

    A number is in scope when it is one of ``numbers`` or its group (desired or live) is one of
    ``groups``. Numbers out of scope are neither diffed nor pruned: the run leaves them as they are.
    """

    groups: frozenset[str] = frozenset()
    numbers: frozenset[str] = frozenset()

    def includes(self, number: str, *group_ids: str) -> bool:
        """Whether ``number``, in (or moving between) ``group_ids``, is in scope."""
        return number in self.numbers or any(g in self.groups for g in group_ids)

    def describe(self, quote: Callable[[str], str] = str) -> str:
        """``group(s) a, b and number(s) +1…``: what is in scope, in words; ``quote`` renders each name (data)."""
        parts = []
        if self.groups:
            parts.append(f"group(s) {', '.join(quote(g) for g in sorted(self.groups))}")
        if self.numbers:
            shown = sorted(self.numbers)
            parts.append(f"number(s) {', '.join(quote(n) for n in shown[:10])}{' …' if len(shown) > 10 else ''}")
        return " and ".join(parts) or "no number"

    def warning(self, quote: Callable[[str], str] = str) -> str:
        """The sentence every rendering of a scoped plan shows (as Terraform warns of ``-target``): ``Partial run: …``."""
        return f"Partial run: {self.warning_detail(quote)}"

    def warning_detail(self, quote: Callable[[str], str] = str) -> str:
        """:meth:`warning` after its ``Partial run:`` lead, for a format that sets the lead apart (Markdown's
        bold); ``quote`` renders each group and number, which are data (Markdown: a code span)."""
        if not self.groups and not self.numbers:  # only --retry-failed makes one: its file has nothing left
            return (
                "nothing in scope, so no number is planned (a retry whose results file has no row left that did "
                "not end as applied). Run a full plan to compare everything."
            )
        return (
            f"only {self.describe(quote)} are planned. Every other number is neither diffed nor pruned, "
            "so live may still differ from the desired files elsewhere. Use this for emergencies and retries; "
            "run a full plan afterwards."
        )

    def to_json(self) -> dict[str, list[str]]:
        return {"groups": sorted(self.groups), "numbers": sorted(self.numbers)}

    @classmethod
    def from_json(cls, data: Mapping[str, Iterable[str]]) -> Scope:
        return cls(frozenset(data.get("groups", ())), frozenset(data.get("numbers", ())))


@dataclass(frozen=True, slots=True)
class Retiring:
    """A live number marked for retirement on ``marked_on``; an apply may delete it from ``delete_on`` on."""

    number: str
    group_id: str
    marked_on: dt.date
    delete_on: dt.date

    def to_json(self) -> dict[str, str]:
        return {
            "number": self.number,
            "group_id": self.group_id,
            "marked_on": self.marked_on.isoformat(),
            "delete_on": self.delete_on.isoformat(),
        }


@dataclass(slots=True)
class Diff:
    """The result of comparing desired with live.

    ``changes``: sorted by NUMBER; ``unmanaged``: live numbers in managed groups that no
    desired file lists and whose group does not prune (reported only); ``conflicts``:
    human sentences for differences numsync must not resolve (e.g. a number living in a
    group this environment does not manage); ``in_sync``: count of managed numbers with
    nothing to do; ``out_of_scope``: count of live numbers in groups not managed;
    ``retiring``: numbers already marked for retirement (expected: no drift), due or not.
    """

    changes: list[Change] = field(default_factory=list)
    unmanaged: list[NumberRecord] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    in_sync: int = 0
    out_of_scope: int = 0
    excluded: int = 0  # managed numbers a partial run (Scope) left out
    retiring: list[Retiring] = field(default_factory=list)
    today: dt.date | None = None  # the day retirements were judged by (None: no group retires)

    @property
    def empty(self) -> bool:
        """True when there is nothing to apply."""
        return not self.changes


def field_changes(
    desired: NumberRecord | None, live: NumberRecord | None, ignore: frozenset[Field] = frozenset()
) -> tuple[FieldChange, ...]:
    """The fields whose value differs between two records (a missing record has no values), except ``ignore``d ones."""
    changes = []
    for f in FIELDS:
        if f in ignore:
            continue
        want = desired.get(f) if desired else None
        have = live.get(f) if live else None
        if want != have:
            changes.append(FieldChange(f, have, want))
    return tuple(changes)


def retirement_day(groups: Mapping[str, GroupPolicy], today: dt.date | None = None) -> dt.date | None:
    """The UTC day retirements are judged by (``today``, else now), or None when no group retires."""
    if not any(p.retire_after is not None for p in groups.values()):
        return None
    return today or dt.datetime.now(dt.UTC).date()


def diff(
    desired: Mapping[str, NumberRecord],
    live: Iterable[NumberRecord],
    groups: Mapping[str, GroupPolicy],
    scope: Scope | None = None,
    today: dt.date | None = None,
) -> Diff:
    """Compare desired numbers (by NUMBER) with live records within the managed ``groups``.

    With a ``scope``, numbers outside it are only counted (``excluded``): no change, no prune,
    no unmanaged report, no conflict. ``today`` (UTC; default: now) dates retirements.
    """
    result = Diff(today=retirement_day(groups, today))
    live = live if isinstance(live, list) else list(live)
    live_by_number = {record.number: record for record in live if record.group_id in groups}
    conflicted: set[str] = set()
    for record in live if len(live_by_number) < len(live) else ():  # the numbers of groups not managed here
        if record.group_id in groups:
            continue
        if record.number in desired:
            wanted = desired[record.number].group_id
            conflicted.add(record.number)  # it exists: never plan a Create for it
            if scope is not None and not scope.includes(record.number, wanted, record.group_id):
                continue
            result.conflicts.append(
                f"{record.number} is live in group {record.group_id!r}, which this environment does not manage, "
                f"but desired in {wanted!r}; move it by hand or add {record.group_id!r} to the environment's groups"
            )
        else:
            result.out_of_scope += 1
    numbers = desired.keys() | live_by_number.keys()
    if scope is None:
        # Most numbers are in sync (same group, equal fields): found in one tight pass and counted, so only
        # the others are sorted and go through the loop below (which would count them the same way).
        synced = {
            number
            for number, want in desired.items()
            if (have := live_by_number.get(number)) is not None
            and want.group_id == have.group_id
            and want.fields == have.fields
        }
        synced -= conflicted
        result.in_sync += len(synced)
        numbers -= synced
    for number in sorted(numbers):
        if number in conflicted:
            continue
        want, have = desired.get(number), live_by_number.get(number)
        if scope is not None and not scope.includes(number, *(r.group_id for r in (want, have) if r is not None)):
            result.excluded += 1
            continue
        if have is None:
            assert want is not None
            ignore = groups[want.group_id].ignore_fields if want.group_id in groups else frozenset()
            result.changes.append(Change(number, ChangeKind.CREATE, want, None, field_changes(want, None, ignore)))
        elif want is None:
            policy = groups[have.group_id]
            if policy.prune and policy.retire_after is not None and result.today is not None:
                _retire(result, have, policy, result.today)
            elif policy.prune:
                result.changes.append(Change(number, ChangeKind.DELETE, None, have, field_changes(None, have)))
            else:
                result.unmanaged.append(have)
        elif want.group_id != have.group_id:
            ignore = groups[want.group_id].ignore_fields if want.group_id in groups else frozenset()
            result.changes.append(Change(number, ChangeKind.REPLACE, want, have, field_changes(want, None, ignore)))
        else:
            # equal fields (most numbers, compared at C speed) differ in nothing, ignored or not
            changed = (
                () if want.fields == have.fields else field_changes(want, have, groups[have.group_id].ignore_fields)
            )
            if changed:
                result.changes.append(Change(number, ChangeKind.UPDATE, want, have, changed))
            else:
                result.in_sync += 1
    return result


def _retire(result: Diff, have: NumberRecord, policy: GroupPolicy, today: dt.date) -> None:
    """A live number no desired file lists, in a group that retires: mark it (detached), keep it through
    the grace period, then delete it. Its mark (with the date) is the only state: live says it all."""
    assert policy.retire_after is not None
    mark, grace = policy.retire_mark, dt.timedelta(days=policy.retire_after)
    marked_on = mark.marked_on(have.get(mark.field))
    if marked_on is not None and marked_on > today:
        marked_on = None  # no run marked it: a date to come would keep the number forever; mark it afresh
    miniapp = have.get(Field.MINIAPP_ID)
    if marked_on is not None and today >= marked_on + grace and miniapp:
        # due, but someone attached it again by hand: it is in use. A released number may be bought by
        # someone else, so never detach and delete it in one apply; a person decides (apply refuses conflicts).
        result.conflicts.append(
            f"{have.number} in group {have.group_id!r} was marked for retirement on {marked_on} and its grace "
            f"period ended on {marked_on + grace}, but it is attached to miniapp {miniapp!r} again, so someone "
            f"is using it; numsync will not detach and delete it. To keep it, put it back in a desired file; "
            f"to let it go, detach it by hand (the next apply deletes it) or clear its {mark.field.yaml_key} "
            f"mark (the next apply retires it afresh, with a new grace period)"
        )
        return
    if marked_on is not None and today >= marked_on + grace:
        result.retiring.append(Retiring(have.number, have.group_id, marked_on, marked_on + grace))
        result.changes.append(Change(have.number, ChangeKind.DELETE, None, have, field_changes(None, have)))
        return
    if marked_on is not None:
        result.retiring.append(Retiring(have.number, have.group_id, marked_on, marked_on + grace))
        if not miniapp:
            return  # detached and marked: nothing to do until the grace period ends
    keep = {f: v for f, v in have.fields.items() if f is not Field.MINIAPP_ID}
    target = NumberRecord(have.number, have.group_id, keep | {mark.field: mark.value(marked_on or today)})
    changed = field_changes(target, have)
    delete_on = (marked_on or today) + grace
    result.changes.append(Change(have.number, ChangeKind.RETIRE, target, have, changed, delete_on))
