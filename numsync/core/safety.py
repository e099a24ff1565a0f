"""Safety checks on a plan: what must stop an apply even though the plan is valid.

Every check works on the Plan alone (plus the environment's policy), so a saved plan is
judged the same way at plan time and at apply time. A violation names the counts, the
limit and the flag that overrides it; protected numbers have no flag on purpose — the
list in numsync.yaml must change first, in a reviewed merge request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from numsync.core.diff import ChangeKind, ChangeSummary
from numsync.core.policy import GroupPolicy, Safety


class PlanFacts(Protocol):
    """What the checks read of a plan (``numsync.workflow.plan.Plan`` has it all)."""

    @property
    def changes(self) -> Sequence[ChangeSummary]: ...
    @property
    def conflicts(self) -> Sequence[str]: ...
    @property
    def live_counts(self) -> Mapping[str, int]: ...
    @property
    def desired_counts(self) -> Mapping[str, int]: ...
    @property
    def desired_count(self) -> int: ...
    @property
    def empty(self) -> bool: ...


class SafetyPolicy(Protocol):
    """The policy the checks apply (``numsync.config.Environment`` has it all)."""

    @property
    def groups(self) -> Mapping[str, GroupPolicy]: ...
    @property
    def safety(self) -> Safety: ...
    @property
    def protected(self) -> frozenset[str]: ...


REPLACE_FLAG = "--allow-replace"
THRESHOLD_FLAG = "--override-thresholds"
SMALL_EXPORT_FLAG = "--allow-small-export"


#: Every flag that lifts a check, in the order the checks are listed.
OVERRIDE_FLAGS = (SMALL_EXPORT_FLAG, REPLACE_FLAG, THRESHOLD_FLAG)


@dataclass(frozen=True, slots=True)
class Overrides:
    """Flags the operator gave after reviewing the plan."""

    allow_replace: bool = False
    override_thresholds: bool = False
    allow_small_export: bool = False

    def flags(self) -> list[str]:
        """The flags given, as the command line spells them (in :data:`OVERRIDE_FLAGS` order)."""
        given = {
            SMALL_EXPORT_FLAG: self.allow_small_export,
            REPLACE_FLAG: self.allow_replace,
            THRESHOLD_FLAG: self.override_thresholds,
        }
        return [flag for flag in OVERRIDE_FLAGS if given[flag]]

    @classmethod
    def of_flags(cls, flags: Iterable[str]) -> Overrides:
        """The overrides ``flags`` name (raises ValueError for a flag that lifts no check)."""
        chosen = set(flags)
        unknown = chosen - set(OVERRIDE_FLAGS)
        if unknown:
            raise ValueError(f"{', '.join(sorted(unknown))} lifts no safety check (known: {', '.join(OVERRIDE_FLAGS)})")
        return cls(REPLACE_FLAG in chosen, THRESHOLD_FLAG in chosen, SMALL_EXPORT_FLAG in chosen)


@dataclass(frozen=True, slots=True)
class RecordedOverride:
    """A check lifted when a plan was made: ``flag``, ``by`` whom (a login) and ``reason`` (why), as the plan records it."""

    flag: str
    by: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"flag": self.flag, "by": self.by, "reason": self.reason}

    def __str__(self) -> str:
        return f"{self.flag} by {self.by}: {self.reason}"


class LiftContext(Enum):
    """Where a violation is shown: the way to lift it differs (the merge-request note words its label itself)."""

    PLAN = "plan"  # numsync plan: make the plan with the flag and a reason
    SAVED_PLAN = "saved-plan"  # apply or show of a saved plan: it lifts only what it records, so plan again


@dataclass(frozen=True, slots=True)
class Violation:
    """Why the plan must not be applied as is; ``flag`` overrides it (None: no override)."""

    message: str
    flag: str | None

    def worded(self, context: LiftContext) -> str:
        """The message and, when a flag lifts it, how to in ``context``."""
        if self.flag is None:
            return self.message
        make = f'numsync plan {self.flag} --reason "<why>" --out plan.json'
        if context is LiftContext.SAVED_PLAN:
            # apply of a saved plan honours only the overrides the plan records
            how = f" To apply anyway after review, make the plan again with {self.flag} and a reason ({make}), then apply that plan."
        else:
            how = f" To apply anyway after review, make the plan with {self.flag} and a reason: {make}."
        return self.message + how

    def __str__(self) -> str:
        return self.worded(LiftContext.PLAN)


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def check(plan: PlanFacts, env: SafetyPolicy, overrides: Overrides = Overrides()) -> list[Violation]:
    """Every safety violation of ``plan`` under ``env``'s policy that ``overrides`` do not lift."""
    found: list[Violation] = []
    safety = env.safety
    live_total = sum(plan.live_counts.values())

    shrink_floor = plan.desired_count * (1 - safety.max_shrink_percent / 100)
    if not overrides.allow_small_export and plan.desired_count and live_total < shrink_floor and not plan.empty:
        found.append(
            Violation(
                f"the live export holds {live_total} number(s) in the managed groups but desired lists {plan.desired_count} "
                f"(more than {safety.max_shrink_percent:g}% fewer): an empty or cut-off export must never drive creates or deletes. "
                "If the tenant really is this empty (a first rollout), check it by hand.",
                SMALL_EXPORT_FLAG,
            )
        )

    for group_id, want in plan.desired_counts.items():
        have = plan.live_counts.get(group_id, 0)
        if not overrides.allow_small_export and want and have < want * (1 - safety.max_shrink_percent / 100):
            found.append(
                Violation(
                    f"group {group_id!r}: the export holds {have} number(s) but desired lists {want}: the credentials may lack "
                    "permission on this group, or the export was cut off. If the group really is new or this empty, check it by hand.",
                    SMALL_EXPORT_FLAG,
                )
            )
        if (
            not overrides.override_thresholds
            and not want
            and have
            and env.groups.get(group_id)
            and env.groups[group_id].prune
        ):
            found.append(
                Violation(
                    f"group {group_id!r} prunes and its desired file lists no numbers: the plan deletes all {have} of them. "
                    "If that is really intended, review it.",
                    THRESHOLD_FLAG,
                )
            )

    if plan.conflicts:
        found.append(
            Violation(
                f"{len(plan.conflicts)} conflict(s) listed above need a person: numsync will not resolve them.", None
            )
        )

    guarded = {c.number for c in plan.changes if c.detaches_or_deletes} & env.protected
    if guarded:
        found.append(
            Violation(
                f"the plan would detach or delete protected number(s) {', '.join(sorted(guarded))}; "
                "remove them from protected in numsync.yaml first (in a reviewed change) or change the desired files.",
                None,
            )
        )

    replaced = [c.number for c in plan.changes if c.kind is ChangeKind.REPLACE]
    if replaced and not overrides.allow_replace:
        found.append(
            Violation(
                f"{len(replaced)} number(s) change group and would be DELETED and created again (GROUP_ID cannot be updated): "
                f"{', '.join(replaced[:10])}{' …' if len(replaced) > 10 else ''}.",
                REPLACE_FLAG,
            )
        )

    if not overrides.override_thresholds:
        found += _thresholds(plan, env, live_total)
    return found


def _thresholds(plan: PlanFacts, env: SafetyPolicy, live_total: int) -> list[Violation]:
    """Delete-count and change-share limits. A group with its own limit is judged by it alone;
    the environment's limit covers the other groups together. A replacement counts in the
    group the number leaves (where it is deleted)."""
    found = []
    safety = env.safety
    deletes = [c for c in plan.changes if c.kind.is_destructive]
    changed = [c for c in plan.changes if c.kind is not ChangeKind.CREATE]

    own_deletes = {g for g, p in env.groups.items() if p.max_deletes is not None}
    own_share = {g for g, p in env.groups.items() if p.max_change_percent is not None}
    env_deletes = [c for c in deletes if c.home_group_id not in own_deletes]
    if len(env_deletes) > safety.max_deletes:
        found.append(
            Violation(
                f"the plan deletes {len(env_deletes)} number(s); safety.max_deletes is {safety.max_deletes}.",
                THRESHOLD_FLAG,
            )
        )
    env_changed = [c for c in changed if c.home_group_id not in own_share]
    env_live = sum(n for g, n in plan.live_counts.items() if g not in own_share)
    if env_live >= safety.min_size and _pct(len(env_changed), env_live) > safety.max_change_percent:
        found.append(
            Violation(
                f"the plan changes or deletes {len(env_changed)} of {env_live} live number(s) ({_pct(len(env_changed), env_live):.1f}%); "
                f"safety.max_change_percent is {safety.max_change_percent:g}%.",
                THRESHOLD_FLAG,
            )
        )
    for group_id, policy in env.groups.items():
        g_deletes = sum(1 for c in deletes if c.home_group_id == group_id)
        if policy.max_deletes is not None and g_deletes > policy.max_deletes:
            found.append(
                Violation(
                    f"the plan deletes {g_deletes} number(s) in group {group_id!r}; its max_deletes is {policy.max_deletes}.",
                    THRESHOLD_FLAG,
                )
            )
        g_live = plan.live_counts.get(group_id, 0)
        g_changed = sum(1 for c in changed if c.home_group_id == group_id)
        if (
            policy.max_change_percent is not None
            and g_live >= safety.min_size
            and _pct(g_changed, g_live) > policy.max_change_percent
        ):
            found.append(
                Violation(
                    f"the plan changes or deletes {g_changed} of {g_live} live number(s) in group {group_id!r} ({_pct(g_changed, g_live):.1f}%); "
                    f"its max_change_percent is {policy.max_change_percent:g}%.",
                    THRESHOLD_FLAG,
                )
            )
    return found
