"""Time as sets of UTC intervals: lawful local hours per zone, and the operations that
combine them with holds and caps.

Windows are computed on each zone's wall clock through zoneinfo and only then turned
into UTC instants, so daylight-saving changes move them correctly (never fixed offsets).
Every list of intervals here is sorted, disjoint and half-open: [start, end).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

Interval = tuple[datetime, datetime]

# Stand-ins for "no start" and "no end" that still compare with aware datetimes.
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
FOREVER = datetime(9999, 1, 1, tzinfo=UTC)


# Memoised: a pure function whose few distinct arguments (days near now, a handful of
# window edges and zones) recur in nearly every decision.
@functools.lru_cache(maxsize=1 << 16)
def local_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    # fold=0: a wall-clock time that does not exist (a spring-forward gap) maps to the
    # later instant and one that occurs twice to the first; both keep windows narrow.
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)


@functools.lru_cache(maxsize=1 << 14)
def daily_windows(
    zone: ZoneInfo,
    first_day: date,
    last_day: date,
    opens: time,
    closes: time,
    weekdays: frozenset[int],
) -> tuple[Interval, ...]:
    """[opens, closes) local time on each allowed ISO weekday from first_day to last_day."""
    windows: list[Interval] = []
    day = first_day
    one_day = timedelta(days=1)
    while day <= last_day:
        if day.isoweekday() in weekdays:
            windows.append((local_instant(day, opens, zone), local_instant(day, closes, zone)))
        day += one_day
    return tuple(windows)


def local_days(zone: ZoneInfo, days: Iterable[date]) -> list[Interval]:
    """Whole local calendar days as UTC intervals, merged where they touch."""
    return union(
        (local_instant(day, time(0), zone), local_instant(day + timedelta(days=1), time(0), zone))
        for day in days
    )


def intersect(left: list[Interval], right: list[Interval]) -> list[Interval]:
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


def union(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def subtract(intervals: list[Interval], blocked: list[Interval]) -> list[Interval]:
    """``intervals`` without any instant in ``blocked`` (which must already be a union)."""
    if not blocked:
        return intervals
    remaining: list[Interval] = []
    for start, end in intervals:
        cursor = start
        for block_start, block_end in blocked:
            if block_end <= cursor:
                continue
            if block_start >= end:
                break
            if block_start > cursor:
                remaining.append((cursor, block_start))
            cursor = max(cursor, block_end)
            if cursor >= end:
                break
        if cursor < end:
            remaining.append((cursor, end))
    return remaining


def ceil_to_minute(instant: datetime) -> datetime:
    floored = instant.replace(second=0, microsecond=0)
    return floored if floored == instant else floored + timedelta(minutes=1)
