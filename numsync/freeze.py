"""Change freezes: windows during which ``apply`` refuses to write.

Configured per environment in numsync.yaml::

    freeze:
      timezone: Europe/Berlin
      dates:                     # inclusive, in that time zone
        - {from: "2026-12-20", to: "2027-01-03", reason: "holiday freeze"}
      weekly:                    # every week, local time; "to" is exclusive
        - {days: [fri, sat, sun], from: "16:00", to: "24:00", reason: "no weekend changes"}

``apply --override-freeze "REASON"`` applies anyway; the reason goes to the journal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class DateWindow:
    """Every day from ``start`` to ``end`` (inclusive)."""

    start: dt.date
    end: dt.date
    reason: str


@dataclass(frozen=True, slots=True)
class WeeklyWindow:
    """On ``days`` (0 = Monday), from ``start`` minutes after midnight to ``end`` (exclusive; 1440 = midnight)."""

    days: frozenset[int]
    start: int
    end: int
    reason: str


@dataclass(frozen=True, slots=True)
class Freeze:
    """The freeze calendar of one environment, read in ``timezone``."""

    timezone: str = "UTC"
    dates: tuple[DateWindow, ...] = ()
    weekly: tuple[WeeklyWindow, ...] = ()

    def active(self, now: dt.datetime | None = None) -> str | None:
        """The reason of the window in force at ``now`` (default: the current time), or None."""
        instant = now or dt.datetime.now(dt.timezone.utc)
        local = instant.astimezone(ZoneInfo(self.timezone))
        for w in self.dates:
            if w.start <= local.date() <= w.end:
                return f"{w.reason} ({w.start.isoformat()} to {w.end.isoformat()}, {self.timezone})"
        minute = local.hour * 60 + local.minute
        for w in self.weekly:
            if local.weekday() in w.days and w.start <= minute < w.end:
                days = ",".join(DAYS[d] for d in sorted(w.days))
                return f"{w.reason} ({days} {w.start // 60:02d}:{w.start % 60:02d}-{w.end // 60:02d}:{w.end % 60:02d}, {self.timezone})"
        return None


def minutes(text: str) -> int:
    """``"HH:MM"`` → minutes after midnight (``"24:00"`` → 1440). Raises ValueError."""
    hours, _, mins = text.partition(":")
    value = int(hours) * 60 + int(mins)
    if not 0 <= value <= 1440 or not 0 <= int(mins) < 60:
        raise ValueError(f"{text!r} is not a time of day HH:MM")
    return value


def parse_freeze(data: dict) -> Freeze:
    """Build a Freeze from the checked config section. Raises ValueError (unknown zone, bad dates or times)."""
    zone = data.get("timezone", "UTC")
    try:
        ZoneInfo(zone)
    except Exception:
        raise ValueError(f"unknown time zone {zone!r}; use an IANA name like Europe/Berlin") from None
    dates = tuple(DateWindow(dt.date.fromisoformat(w["from"]), dt.date.fromisoformat(w["to"]), w["reason"]) for w in data.get("dates") or [])
    weekly = tuple(WeeklyWindow(frozenset(DAYS.index(d) for d in w["days"]), minutes(w["from"]), minutes(w["to"]), w["reason"]) for w in data.get("weekly") or [])
    return Freeze(zone, dates, weekly)
