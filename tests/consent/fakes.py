"""An in-memory stand-in for the consent store, for unit tests of handlers and wiring."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from parley_consent.domain import ConsentState, address_key
from parley_consent.domain.audit import StoredDecision
from parley_shared.events import ConsentChanged, ContactDecision


@dataclass
class FixedClock:
    instant: datetime

    def now(self) -> datetime:
        return self.instant


@dataclass
class InMemoryConsentStore:
    decisions: dict[uuid.UUID, StoredDecision] = field(default_factory=dict)
    changes: dict[uuid.UUID, ConsentChanged] = field(default_factory=dict)
    saves: int = 0

    async def find_decision(self, proposal_id: uuid.UUID) -> ContactDecision | None:
        stored = self.decisions.get(proposal_id)
        return None if stored is None else stored.decision

    async def find_decision_record(self, proposal_id: uuid.UUID) -> StoredDecision | None:
        return self.decisions.get(proposal_id)

    async def save_decision(
        self, decision: ContactDecision, *, trace_id: str | None
    ) -> ContactDecision:
        self.saves += 1
        stored = self.decisions.setdefault(
            decision.proposal_id, StoredDecision(decision, trace_id, datetime.now(UTC))
        )
        return stored.decision

    async def load_consent_state(self, debtor_id: str, address: str) -> ConsentState:
        return ConsentState.from_events(
            change
            for change in self.changes.values()
            if change.debtor_id == debtor_id
            or (change.address is not None and address_key(change.address) == address_key(address))
        )

    async def record_consent_change(self, event: ConsentChanged) -> tuple[ConsentChanged, bool]:
        if event.event_id in self.changes:
            return self.changes[event.event_id], False
        self.changes[event.event_id] = event
        return event, True
