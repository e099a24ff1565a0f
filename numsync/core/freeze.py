"""Change freezes: windows during which ``apply`` refuses to write.

Configured per environment in numsync.yaml::

    freeze:
      timezone: Europe/Berlin
      dates:                     # inclusive, in that time zone
        - {from: "2026-12-20", to: "2027-01-03", reason: "holiday freeze"}
      weekly:                    # every week, local time; "to" is exclusive
        - {days: [fri, sat, sun], from: "16:00", to: "24:00", reason: "no weekend changes"}
        - {days: [mon], from: "22:00", to: "06:00", reason: "overnight: Monday 22:00 to Tuesday 06:00"}

A weekly window whose ``to`` is earlier than its ``from`` runs overnight into the next day.
``apply --override-freeze "REASON"`` applies anyway; the reason goes to the journal.

:func:`check_clocks` asks both this machine's clock and OCP's (its ``Date`` header, read by
the vendor package): inside a window by either clock is frozen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from numsync.errors import FreezeError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class DateWindow:
    """Every day from ``start`` to ``end`` (inclusive)."""

    start: dt.date
    end: dt.date
    reason: str


@dataclass(frozen=True, slots=True)
class WeeklyWindow:
    """On ``days`` (0 = Monday), from ``start`` minutes after midnight to ``end`` (exclusive; 1440 = midnight).

    ``end < start`` is an overnight window: from ``start`` on each of ``days`` to ``end`` the next day.
    """

    days: frozenset[int]
    start: int
    end: int
    reason: str

    def covers(self, weekday: int, minute: int) -> bool:
        """Whether local ``weekday`` (0 = Monday) at ``minute`` after midnight falls in the window."""
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        return (weekday in self.days and minute >= self.start) or ((weekday - 1) % 7 in self.days and minute < self.end)


@dataclass(frozen=True, slots=True)
class Freeze:
    """The freeze calendar of one environment, read in ``timezone``."""

    timezone: str = "UTC"
    dates: tuple[DateWindow, ...] = ()
    weekly: tuple[WeeklyWindow, ...] = ()

    def active(self, now: dt.datetime | None = None) -> str | None:
        """The reason of the window in force at ``now`` (default: the current time), or None."""
        instant = now or dt.datetime.now(dt.UTC)
        local = instant.astimezone(ZoneInfo(self.timezone))
        for w in self.dates:
            if w.start <= local.date() <= w.end:
                return f"{w.reason} ({w.start.isoformat()} to {w.end.isoformat()}, {self.timezone})"
        minute = local.hour * 60 + local.minute
        for wk in self.weekly:
            if wk.covers(local.weekday(), minute):
                days = ",".join(DAYS[d] for d in sorted(wk.days))
                return f"{wk.reason} ({days} {wk.start // 60:02d}:{wk.start % 60:02d}-{wk.end // 60:02d}:{wk.end % 60:02d}, {self.timezone})"
        return None


#: How far this machine's clock and OCP's may differ before numsync says so.
SKEW_WARNING = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class FreezeCheck:
    """A freeze checked by two clocks: ``active`` is the window in force by either (the stricter answer);
    ``skew`` is OCP's clock minus this machine's (None when OCP's answers carried no ``Date``)."""

    active: str | None
    skew: dt.timedelta | None = None
    local: dt.datetime | None = None
    server: dt.datetime | None = None

    @property
    def skew_warning(self) -> str | None:
        """What to tell the user when the clocks differ by more than :data:`SKEW_WARNING`, else None."""
        if self.skew is None or abs(self.skew) <= SKEW_WARNING or self.local is None or self.server is None:
            return None
        direction = "behind" if self.skew > dt.timedelta(0) else "ahead of"
        return (
            f"this machine's clock is {duration(abs(self.skew))} {direction} OCP's (here {_utc(self.local)}, "
            f"OCP's Date header {_utc(self.server)}): change freezes are checked by both clocks and the stricter "
            "answer wins; set this machine's clock right (two-factor codes depend on it too)"
        )


def check_clocks(freeze: Freeze, local: dt.datetime, server: dt.datetime | None) -> FreezeCheck:
    """``freeze`` at this machine's time ``local`` and at OCP's time ``server`` (None: not known).

    Frozen by either clock is frozen: a wrong local clock (a VM restored from a snapshot, a
    runner 30 days off) must not let apply run inside a window, and a wrong server clock
    cannot open one either.
    """
    by_local = freeze.active(local)
    by_server = freeze.active(server) if server is not None else None
    skew = server - local if server is not None else None
    if by_local or not by_server:
        return FreezeCheck(by_local, skew, local, server)
    assert server is not None  # by_server says so
    active = f"{by_server}, by OCP's clock ({_utc(server)}; this machine's clock says {_utc(local)})"
    return FreezeCheck(active, skew, local, server)


def duration(span: dt.timedelta) -> str:
    """``span`` for a person: ``30 days 2 h``, ``3 h 5 min``, ``6 min 40 s``."""
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    mins, secs = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''} {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min {secs} s"


def _utc(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def minutes(text: str) -> int:
    """``"HH:MM"`` → minutes after midnight (``"24:00"`` → 1440). Raises ValueError."""
    hours, _, mins = text.partition(":")
    value = int(hours) * 60 + int(mins)
    if not 0 <= value <= 1440 or not 0 <= int(mins) < 60:
        raise ValueError(f"{text!r} is not a time of day HH:MM")
    return value


def parse_freeze(data: dict[str, Any]) -> Freeze:
    """Build a Freeze from the schema-checked ``freeze`` section of an environment in numsync.yaml.

    Raises FreezeError naming every unknown zone, impossible date or time, date range ending
    before it starts, and weekly window that starts and ends at the same minute.
    """
    problems: list[tuple[tuple[str | int, ...], str]] = []
    zone = data.get("timezone", "UTC")
    # Only the IANA names (tzdata): "localtime" or a file path would mean a different zone on each runner.
    if zone not in available_timezones() or zone in ("localtime", "posixrules", "Factory"):
        problems.append((("timezone",), f"unknown time zone {zone!r}; use an IANA name like Europe/Berlin"))
    dates: list[DateWindow] = []
    for i, w in enumerate(data.get("dates") or []):
        bounds: list[dt.date] = []
        for key in ("from", "to"):
            try:
                bounds.append(dt.date.fromisoformat(w[key]))
            except ValueError as exc:
                problems.append(
                    (("dates", i, key), f"dates[{i}].{key}: {w[key]!r} is not a date ({exc}); write YYYY-MM-DD")
                )
        if len(bounds) == 2 and bounds[1] < bounds[0]:
            problems.append(
                (
                    ("dates", i, "to"),
                    f"dates[{i}]: to {w['to']} is before from {w['from']}; the range is inclusive, swap them",
                )
            )
        elif len(bounds) == 2:
            dates.append(DateWindow(bounds[0], bounds[1], w["reason"]))
    weekly: list[WeeklyWindow] = []
    for i, w in enumerate(data.get("weekly") or []):
        times: list[int] = []
        for key in ("from", "to"):
            try:
                times.append(minutes(w[key]))
            except ValueError as exc:
                problems.append((("weekly", i, key), f"weekly[{i}].{key}: {exc}"))
        if len(times) == 2 and times[0] == 1440:
            problems.append(
                (
                    ("weekly", i, "from"),
                    f"weekly[{i}]: a window cannot start at 24:00 (the end of the day); start at 00:00 and list the next day",
                )
            )
        elif len(times) == 2 and times[0] == times[1]:
            problems.append(
                (
                    ("weekly", i, "to"),
                    f"weekly[{i}]: from {w['from']} to {w['to']} is an empty window; for a whole day write 00:00 to 24:00",
                )
            )
        elif len(times) == 2:
            weekly.append(WeeklyWindow(frozenset(DAYS.index(d) for d in w["days"]), times[0], times[1], w["reason"]))
    if problems:
        raise FreezeError(problems)
    return Freeze(zone, tuple(dates), tuple(weekly))
