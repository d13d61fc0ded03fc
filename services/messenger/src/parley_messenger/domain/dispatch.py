"""The dispatch-time check: an approval is only good until its lawful window closes."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

# Twilio accepts ValidityPeriod from 1 to 36000 seconds.
MIN_VALIDITY_PERIOD = 1
MAX_VALIDITY_PERIOD = 36_000
# Less than this left and even the shortest ValidityPeriod could outlast the window.
MIN_REMAINING = timedelta(seconds=MIN_VALIDITY_PERIOD)


def why_not_dispatchable(now: datetime, lawful_until: datetime | None) -> str | None:
    """The reason an approved decision must not be sent now, or None when it may be.

    Checked again at dispatch, not only at approval: a decision can wait in Kafka, or be
    redelivered after a restart, until its window has passed.
    """
    if lawful_until is None:
        # Without a bound nothing proves the send is lawful; missing it beats sending late.
        return "approved without a lawful_until"
    if lawful_until - now < MIN_REMAINING:
        return "the lawful window closed before dispatch"
    return None


def validity_period_seconds(now: datetime, lawful_until: datetime) -> int:
    """Twilio ValidityPeriod: whole seconds left in the window (rounded down so the message
    cannot leave after it closes), clamped to what Twilio accepts."""
    remaining = math.floor((lawful_until - now).total_seconds())
    return max(MIN_VALIDITY_PERIOD, min(MAX_VALIDITY_PERIOD, remaining))
