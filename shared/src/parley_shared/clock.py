"""Time as a dependency: production reads the system clock, the demo and tests a simulated one."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class SimulatedClock:
    """Starts at ``start`` and runs ``speed`` times faster than real time.

    Lets a demo pick a moment at which some debtors are outside their lawful window,
    whenever it is actually run.
    """

    start: datetime
    speed: float = 1.0
    _origin: float = field(default_factory=time.monotonic, init=False)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            raise ValueError("the simulated start must carry a time zone")
        if self.speed <= 0:
            raise ValueError("the simulated clock's speed must be positive")

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._origin) * self.speed
        return (self.start + timedelta(seconds=elapsed)).astimezone(UTC)


def clock_for(simulated_start: datetime | None, speed: float = 1.0) -> Clock:
    if simulated_start is None:
        return SystemClock()
    return SimulatedClock(simulated_start, speed)
