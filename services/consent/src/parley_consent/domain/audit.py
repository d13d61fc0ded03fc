"""What the audit keeps about a decision besides the event itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from parley_shared.events import ContactDecision


@dataclass(frozen=True)
class StoredDecision:
    decision: ContactDecision
    trace_id: str | None
    recorded_at: datetime
