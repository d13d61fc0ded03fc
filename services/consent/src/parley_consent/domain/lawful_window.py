"""When contact is lawful: local hours that must hold in every candidate time zone at once.

Windows are computed on each zone's wall clock through zoneinfo and only then turned
into UTC instants, so daylight-saving changes move them correctly (never fixed offsets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from parley_consent.domain.rules import LocalWindow

# How far ahead to look for a moment lawful in every zone; a week covers any
# set of zones whose windows overlap at all.
_SEARCH_DAYS = 8

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class WithinWindow:
    """Lawful now; contact must not start at or after ``lawful_until``."""

    lawful_until: datetime


@dataclass(frozen=True)
class OutsideWindow:
    """Not lawful now; ``lawful_from`` is the earliest lawful minute."""

    lawful_from: datetime


@dataclass(frozen=True)
class NoCommonWindow:
    """The candidate zones never share a lawful hour."""


WindowCheck = WithinWindow | OutsideWindow | NoCommonWindow


def check_window(now: datetime, zones: Sequence[ZoneInfo], hours: LocalWindow) -> WindowCheck:
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    if not zones:
        raise ValueError("at least one candidate time zone is needed")
    now = now.astimezone(UTC)
    common = _daily_windows(zones[0], now, hours)
    for zone in zones[1:]:
        common = _intersect(common, _daily_windows(zone, now, hours))
    for start, end in common:
        if end <= now:
            continue
        if start <= now:
            return WithinWindow(lawful_until=end)
        return OutsideWindow(lawful_from=_ceil_to_minute(start))
    return NoCommonWindow()


def _daily_windows(zone: ZoneInfo, around: datetime, hours: LocalWindow) -> list[Interval]:
    """The zone's lawful hours as UTC intervals, from the local day before ``around`` onwards."""
    today = around.astimezone(zone).date()
    return [
        (_instant(day, hours, zone, opening=True), _instant(day, hours, zone, opening=False))
        for day in (today + timedelta(days=offset) for offset in range(-1, _SEARCH_DAYS))
    ]


def _instant(day: date, hours: LocalWindow, zone: ZoneInfo, *, opening: bool) -> datetime:
    # fold=0: a wall-clock time that does not exist (a spring-forward gap) maps to the
    # later instant and one that occurs twice to the first; both keep the window narrow.
    local = datetime.combine(day, hours.opens if opening else hours.closes, tzinfo=zone)
    return local.astimezone(UTC)


def _intersect(left: list[Interval], right: list[Interval]) -> list[Interval]:
    """Intersection of two sorted lists of disjoint half-open intervals."""
    common: list[Interval] = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if start < end:
            common.append((start, end))
        if left[i][1] <= right[j][1]:
            i += 1
        else:
            j += 1
    return common


def _ceil_to_minute(instant: datetime) -> datetime:
    floored = instant.replace(second=0, microsecond=0)
    return floored if floored == instant else floored + timedelta(minutes=1)
