"""Use cases: an event in, the pure rules applied, the outcome stored durably.

Handlers take their dependencies as parameters, so unit tests pass fakes and the
entrypoints (Kafka, HTTP) stay thin. Publishing is the entrypoints' job, after the
handler has returned, which means after the commit.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Protocol

from opentelemetry import trace
from parley_shared.clock import Clock
from parley_shared.events import ConsentChanged, ContactDecision, ReminderProposed

from parley_consent.domain import ConsentState, decide
from parley_consent.domain.audit import StoredDecision

log = logging.getLogger(__name__)


class DecisionStore(Protocol):
    async def find_decision(self, proposal_id: uuid.UUID) -> ContactDecision | None: ...

    async def save_decision(
        self, decision: ContactDecision, *, trace_id: str | None
    ) -> ContactDecision: ...

    async def load_consent_state(self, debtor_id: str, address: str) -> ConsentState: ...


class ConsentChangeStore(Protocol):
    async def record_consent_change(self, event: ConsentChanged) -> tuple[ConsentChanged, bool]: ...


class ConsentStore(DecisionStore, ConsentChangeStore, Protocol):
    """Everything the entrypoints need from storage: PostgreSQL's ``ConsentRepository``
    in the service, a fake in unit tests."""

    async def find_decision_record(self, proposal_id: uuid.UUID) -> StoredDecision | None: ...


async def decide_on_proposal(
    proposal: ReminderProposed,
    *,
    store: DecisionStore,
    clock: Clock,
    rule_set_version: str,
) -> ContactDecision:
    """The decision for ``proposal``, stored before it is returned.

    A proposal already decided gets its stored decision back unchanged (same event id),
    so a redelivered proposal republishes the identical decision.
    """
    stored = await store.find_decision(proposal.proposal_id)
    if stored is not None:
        log.info(
            "proposal %s for debtor %s already decided: %s",
            proposal.proposal_id,
            proposal.debtor_id,
            stored.verdict.value,
        )
        return stored
    state = await store.load_consent_state(proposal.debtor_id, proposal.address)
    decision = decide(proposal, state, clock.now(), rule_set_version)
    saved = await store.save_decision(decision, trace_id=current_trace_id())
    log.info(
        "proposal %s for debtor %s: %s (%s)",
        proposal.proposal_id,
        proposal.debtor_id,
        saved.verdict.value,
        ", ".join(reason.rule_id for reason in saved.reasons),
    )
    return saved


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


def current_trace_id() -> str | None:
    """The current span's trace id in hex, or None outside a recorded trace."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
