"""An in-memory stand-in for the consent store, for unit tests of handlers and wiring."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from opentelemetry.context import Context
from parley_consent.adapters.database import COUNTED_STATUSES
from parley_consent.domain import DebtorState, PastContact, address_key
from parley_consent.domain.audit import StoredDecision
from parley_shared.events import ConsentChanged, ContactDecision, DeliveryReported
from parley_shared.kafka import EventPublisher


@dataclass
class FixedClock:
    instant: datetime

    def now(self) -> datetime:
        return self.instant


@dataclass
class BrokerDecisions:
    """Publishes decisions through FastStream, so ``TestKafkaBroker`` delivers them (the
    service's ``DecisionPublisher`` has a producer of its own, proved on the real broker)."""

    publisher: EventPublisher

    async def publish(
        self, decisions: Sequence[ContactDecision], contexts: Sequence[Context | None]
    ) -> None:
        for decision in decisions:
            await self.publisher.publish(decision)


@dataclass
class InMemoryConsentStore:
    decisions: dict[uuid.UUID, StoredDecision] = field(default_factory=dict)
    changes: dict[uuid.UUID, ConsentChanged] = field(default_factory=dict)
    contacts: dict[uuid.UUID, DeliveryReported] = field(default_factory=dict)
    saves: int = 0

    async def find_decisions(
        self, proposal_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ContactDecision]:
        return {
            proposal_id: self.decisions[proposal_id].decision
            for proposal_id in proposal_ids
            if proposal_id in self.decisions
        }

    async def find_decision_record(self, proposal_id: uuid.UUID) -> StoredDecision | None:
        return self.decisions.get(proposal_id)

    async def save_decisions(
        self, decisions: Sequence[ContactDecision], *, trace_ids: Mapping[uuid.UUID, str | None]
    ) -> dict[uuid.UUID, ContactDecision]:
        saved: dict[uuid.UUID, ContactDecision] = {}
        for decision in decisions:
            self.saves += 1
            stored = self.decisions.setdefault(
                decision.proposal_id,
                StoredDecision(decision, trace_ids.get(decision.proposal_id), datetime.now(UTC)),
            )
            saved[decision.proposal_id] = stored.decision
        return saved

    async def load_debtor_states(
        self, contacts: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], DebtorState]:
        return {
            (debtor_id, address): await self.load_debtor_state(debtor_id, address)
            for debtor_id, address in contacts
        }

    async def load_histories(
        self, debtor_ids: Sequence[str], now: datetime
    ) -> dict[str, list[PastContact]]:
        return {debtor_id: await self.load_history(debtor_id, now) for debtor_id in debtor_ids}

    async def load_debtor_state(self, debtor_id: str, address: str) -> DebtorState:
        return DebtorState.from_events(
            debtor_id,
            [
                change
                for change in self.changes.values()
                if change.debtor_id == debtor_id
                or (
                    change.address is not None
                    and address_key(change.address) == address_key(address)
                )
            ],
        )

    async def load_history(self, debtor_id: str, now: datetime) -> list[PastContact]:
        return [
            PastContact(report.proposal_id, report.channel, report.occurred_at)
            for report in self.contacts.values()
            if report.debtor_id == debtor_id
        ]

    async def record_deliveries(self, events: Sequence[DeliveryReported]) -> int:
        counted = 0
        for event in events:
            if event.status in COUNTED_STATUSES and event.proposal_id not in self.contacts:
                self.contacts[event.proposal_id] = event
                counted += 1
        return counted

    async def debtor_changes(self, debtor_id: str) -> list[ConsentChanged]:
        return sorted(
            (change for change in self.changes.values() if change.debtor_id == debtor_id),
            key=lambda change: change.occurred_at,
            reverse=True,
        )

    async def recent_decisions(self, debtor_id: str, limit: int = 50) -> list[StoredDecision]:
        return sorted(
            (s for s in self.decisions.values() if s.decision.debtor_id == debtor_id),
            key=lambda stored: stored.decision.occurred_at,
            reverse=True,
        )[:limit]

    async def record_consent_change(self, event: ConsentChanged) -> tuple[ConsentChanged, bool]:
        if event.event_id in self.changes:
            return self.changes[event.event_id], False
        self.changes[event.event_id] = event
        return event, True
