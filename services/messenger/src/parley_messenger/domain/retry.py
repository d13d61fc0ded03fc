"""When a refused send may be tried again: exponential backoff with full jitter, and
never so late that the next attempt could start after the lawful window closes."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from parley_messenger.domain.dispatch import MIN_REMAINING


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_delay: float = 0.5  # seconds before the second attempt, at most
    max_delay: float = 8.0

    def delay_before(
        self,
        attempt: int,
        *,
        now: datetime,
        lawful_until: datetime,
        retry_after: float | None = None,
        draw: Callable[[float, float], float] = random.uniform,
    ) -> float | None:
        """Seconds to wait before attempt number ``attempt`` (2 for the first retry), or
        None when there must be no such attempt. ``retry_after`` is the provider's own
        ask (Retry-After); it is a floor, never shortened by jitter."""
        if attempt > self.max_attempts:
            return None
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 2))
        delay = draw(0.0, ceiling)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if now + timedelta(seconds=delay) + MIN_REMAINING > lawful_until:
            return None
        return delay
