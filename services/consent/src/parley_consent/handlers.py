"""Use cases: an event in, the pure rules applied, the outcome stored durably.

Handlers take their dependencies as parameters, so unit tests pass fakes and the
entrypoints (Kafka, HTTP) stay thin. Publishing is the entrypoints' job, after the
handler has returned, which means after the commit.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from opentelemetry import trace
from parley_shared.clock import Clock
from parley_shared.events import (
    ConsentChanged,
    ContactDecision,
    DeliveryReported,
    ReminderProposed,
    Verdict,
)

from parley_consent.domain import DebtorState, PastContact, RuleSet, decide
from parley_consent.domain.audit import StoredDecision

log = logging.getLogger(__name__)


class DecisionStore(Protocol):
    """Batch operations: a batch of proposals costs a few queries, not a few per proposal."""

    async def find_decisions(
        self, proposal_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, ContactDecision]: ...

    async def save_decisions(
        self,
        decisions: Sequence[ContactDecision],
        *,
        trace_ids: Mapping[uuid.UUID, str | None],
    ) -> dict[uuid.UUID, ContactDecision]: ...

    async def load_debtor_states(
        self, contacts: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], DebtorState]: ...

    async def load_histories(
        self, debtor_ids: Sequence[str], now: datetime
    ) -> dict[str, list[PastContact]]: ...


class ConsentChangeStore(Protocol):
    async def record_consent_change(self, event: ConsentChanged) -> tuple[ConsentChanged, bool]: ...


class ContactStore(Protocol):
    async def record_deliveries(self, events: Sequence[DeliveryReported]) -> int: ...


class ConsentStore(DecisionStore, ConsentChangeStore, ContactStore, Protocol):
    """Everything the entrypoints need from storage: PostgreSQL's ``ConsentRepository``
    in the service, a fake in unit tests."""

    async def find_decision_record(self, proposal_id: uuid.UUID) -> StoredDecision | None: ...

    async def debtor_changes(self, debtor_id: str) -> list[ConsentChanged]: ...

    async def recent_decisions(self, debtor_id: str, limit: int = 50) -> list[StoredDecision]: ...


async def decide_on_proposal(
    proposal: ReminderProposed,
    *,
    store: DecisionStore,
    clock: Clock,
    rules: RuleSet,
) -> ContactDecision:
    """The decision for one proposal; see ``decide_on_proposals``."""
    [decision] = await decide_on_proposals([proposal], store=store, clock=clock, rules=rules)
    return decision


async def decide_on_proposals(
    proposals: Sequence[ReminderProposed],
    *,
    store: DecisionStore,
    clock: Clock,
    rules: RuleSet,
    trace_ids: Mapping[uuid.UUID, str | None] | None = None,
) -> list[ContactDecision]:
    """The decision for each proposal, in order, all stored before they are returned.

    ``trace_ids`` names the trace each proposal arrived in, for the audit record; without
    it every decision records the current trace.

    A proposal already decided gets its stored decision back unchanged (same event id),
    so a redelivered proposal republishes the identical decision; one repeated within the
    batch is decided once.
    """
    unique = list({proposal.proposal_id: proposal for proposal in proposals}.values())
    now = clock.now()
    # Read concurrently, each on its own connection: the states and histories are loaded
    # for every proposal, and only go unused for one already decided (a redelivery).
    decided, states, histories = await asyncio.gather(
        store.find_decisions([proposal.proposal_id for proposal in unique]),
        store.load_debtor_states([(proposal.debtor_id, proposal.address) for proposal in unique]),
        store.load_histories(sorted({proposal.debtor_id for proposal in unique}), now),
    )
    for proposal_id, earlier in decided.items():
        log.info(
            "proposal %s for debtor %s already decided: %s",
            proposal_id,
            earlier.debtor_id,
            earlier.verdict.value,
        )
    pending = [proposal for proposal in unique if proposal.proposal_id not in decided]
    if pending:
        made = []
        for proposal in pending:
            history = histories.setdefault(proposal.debtor_id, [])
            decision = decide(
                proposal, states[(proposal.debtor_id, proposal.address)], history, now, rules
            ).to_event(proposal, now)
            if decision.verdict is Verdict.APPROVED:
                # A later proposal for the same debtor in this batch must see this one
                # against its caps, as it would had they arrived in separate batches.
                history.append(
                    PastContact(
                        proposal_id=proposal.proposal_id,
                        channel=proposal.channel,
                        sent_at=now,
                        message_kind=proposal.message_kind,
                    )
                )
            made.append(decision)
        if trace_ids is None:
            current = current_trace_id()
            trace_ids = {decision.proposal_id: current for decision in made}
        saved = await store.save_decisions(made, trace_ids=trace_ids)
        for decision in saved.values():
            log.info(
                "proposal %s for debtor %s: %s (%s)",
                decision.proposal_id,
                decision.debtor_id,
                decision.verdict.value,
                ", ".join(reason.rule_id for reason in decision.reasons),
            )
        decided.update(saved)
    return [decided[proposal.proposal_id] for proposal in proposals]


@dataclass(frozen=True)
class RecordedChange:
    change: ConsentChanged
    newly_recorded: bool


async def apply_consent_change(
    event: ConsentChanged, *, store: ConsentChangeStore
) -> RecordedChange:
    """Record a consent change durably; an event id seen before changes nothing."""
    change, newly_recorded = await store.record_consent_change(event)
    log.info(
        "consent change %s (%s) for debtor %s %s",
        change.event_id,
        change.kind.value,
        change.debtor_id,
        "recorded" if newly_recorded else "was already recorded",
    )
    return RecordedChange(change=change, newly_recorded=newly_recorded)


async def count_deliveries(events: Sequence[DeliveryReported], *, store: ContactStore) -> int:
    """Count the messages of a batch of reports that left towards the debtors' caps, each
    once per proposal; returns how many this batch counted."""
    if not events:
        return 0
    counted = await store.record_deliveries(events)
    log.info(
        "%d delivery reports: %d counted as contacts, %d change no count",
        len(events),
        counted,
        len(events) - counted,
    )
    return counted


def current_trace_id() -> str | None:
    """The current span's trace id in hex, or None outside a recorded trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
