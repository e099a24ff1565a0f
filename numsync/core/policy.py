"""What an environment's policy says about its numbers: groups, safety thresholds, suppressions."""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass, field
from functools import cache

from numsync.core.model import Field, NumberRecord

#: Where a retire mark's value holds the day the number was marked.
DATE_PLACEHOLDER = "{date}"


@cache
def _mark_pattern(template: str) -> re.Pattern[str]:
    before, _, after = template.partition(DATE_PLACEHOLDER)
    return re.compile(re.escape(before) + r"(\d{4}-\d{2}-\d{2})" + re.escape(after))


@dataclass(frozen=True, slots=True)
class RetireMark:
    """How a retiring number is marked: ``field`` set to ``template`` with :data:`DATE_PLACEHOLDER` as the day.

    The mark carries its date, so a later run (another machine, another day) knows from live
    alone when the grace period started.
    """

    field: Field = Field.APPLICATION_TAG
    template: str = "numsync:retiring-since:{date}"

    def value(self, on: dt.date) -> str:
        """The mark for a number marked ``on``."""
        return self.template.replace(DATE_PLACEHOLDER, on.isoformat())

    def marked_on(self, value: str | None) -> dt.date | None:
        """The day a live value records, or None when it is no mark of this template."""
        m = _mark_pattern(self.template).fullmatch(value or "")
        if not m:
            return None
        try:
            return dt.date.fromisoformat(m.group(1))
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class GroupPolicy:
    """Policy for one managed GROUP_ID.

    ``prune``: delete live numbers no desired file lists; ``ignore_fields``: fields neither
    diffed nor written (the environment's and the group's own); ``max_deletes`` and
    ``max_change_percent``: this group's thresholds, None to use the environment's;
    ``retire_after``: days of grace before a number removed from desired is deleted (None: at once),
    ``retire_mark``: how it is marked meanwhile;
    ``countries``: the ISO regions its numbers must belong to (empty: any).
    """

    group_id: str
    prune: bool = False
    ignore_fields: frozenset[Field] = frozenset()
    max_deletes: int | None = None
    max_change_percent: float | None = None
    retire_after: int | None = None
    retire_mark: RetireMark = field(default_factory=RetireMark)
    countries: frozenset[str] = frozenset()

    def retirement_mark(self, record: NumberRecord) -> dt.date | None:
        """The day ``record``'s retire mark records, when this group retires and the live value is one."""
        if not self.prune or self.retire_after is None:
            return None
        return self.retire_mark.marked_on(record.get(self.retire_mark.field))


class StaleReview(enum.Enum):
    """What apply does when the plan reviewed in the merge request is stale and a plan made now differs
    (``on_stale_review:`` in numsync.yaml): refuse, or also post the difference to the merge request
    for re-approval. Neither applies what nobody saw."""

    REFUSE = "refuse"
    REPOST = "repost"


@dataclass(frozen=True, slots=True)
class DriftPolicy:
    """The scheduled drift run's settings (``drift:`` in numsync.yaml).

    ``warn_days``: warn this many days before a suppression expires; ``gitlab_issue``: keep one
    GitLab issue per environment up to date (opened on drift, updated, closed when it is gone).
    """

    warn_days: int = 7
    gitlab_issue: bool = False


@dataclass(frozen=True, slots=True)
class Safety:
    """Thresholds that stop an apply; see the ``safety`` section of numsync.yaml.

    ``max_deletes``: numbers deleted per apply; ``max_change_percent``: percent of live
    numbers in scope changed or deleted, checked when at least ``min_size`` are in scope;
    ``max_shrink_percent``: how much smaller than desired the export may be before numsync
    distrusts it.
    """

    max_deletes: int = 25
    max_change_percent: float = 25.0
    min_size: int = 50
    max_shrink_percent: float = 50.0


@dataclass(frozen=True, slots=True)
class Suppression:
    """Drift of ``number`` (of ``kind``, or any kind when None) accepted for ``reason`` until the end of ``until`` (UTC)."""

    number: str
    reason: str
    until: dt.date
    kind: str | None = None

    def matches(self, number: str, kind: str) -> bool:
        """Whether this suppression covers drift ``kind`` of ``number``."""
        return number == self.number and (self.kind is None or self.kind == kind)

    def to_json(self) -> dict[str, str | None]:
        return {"number": self.number, "kind": self.kind, "reason": self.reason, "until": self.until.isoformat()}
