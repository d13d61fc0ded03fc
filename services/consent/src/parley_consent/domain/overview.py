"""What ops and auditors see of one debtor: standing opt-outs, holds, preferences, recent
decisions and consent changes. Addresses are masked: never a full number or mailbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from parley_shared.events import (
    Channel,
    ConsentChanged,
    ConsentChangeKind,
    ConsentSource,
    ContactPreferences,
    DecisionReason,
    HoldKind,
    Verdict,
)
from pydantic import BaseModel

from parley_consent.domain.audit import StoredDecision
from parley_consent.domain.debtor_state import DebtorState


def mask_address(address: str) -> str:
    """``d***@example.com`` for a mailbox, ``***0100`` for a number."""
    if "@" in address:
        local, _, domain = address.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = [char for char in address if char.isdigit()]
    return "***" + "".join(digits[-4:]) if len(digits) > 4 else "***"


class OptOutView(BaseModel):
    channel: Channel | None
    address: str | None
    occurred_at: datetime
    own: bool


class HoldView(BaseModel):
    kind: HoldKind
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool


class DecisionView(BaseModel):
    proposal_id: uuid.UUID
    verdict: Verdict
    reasons: list[DecisionReason]
    defer_until: datetime | None
    rule_set_version: str
    decided_at: datetime
    trace_id: str | None


class ConsentChangeView(BaseModel):
    kind: ConsentChangeKind
    channel: Channel | None
    source: ConsentSource
    occurred_at: datetime
    hold_kind: HoldKind | None = None


class DebtorOverview(BaseModel):
    debtor_id: str
    opt_outs: list[OptOutView]
    holds: list[HoldView]
    preferences: ContactPreferences | None
    decisions: list[DecisionView]
    consent_changes: list[ConsentChangeView]


def debtor_overview(
    debtor_id: str,
    changes: Sequence[ConsentChanged],
    decisions: Sequence[StoredDecision],
    now: datetime,
) -> DebtorOverview:
    """``changes`` are the debtor's own; ``decisions`` come newest first."""
    state = DebtorState.from_events(debtor_id, changes)
    return DebtorOverview(
        debtor_id=debtor_id,
        opt_outs=[
            OptOutView(
                channel=record.channel,
                address=mask_address(record.address_key) if record.address_key else None,
                occurred_at=record.occurred_at,
                own=record.debtor_id == debtor_id,
            )
            for record in reversed(state.consent.standing())
        ],
        holds=[
            HoldView(
                kind=hold.kind,
                starts_at=hold.starts_at,
                ends_at=hold.ends_at,
                active=hold.active_at(now),
            )
            for hold in state.holds
            if hold.ends_at is None or hold.ends_at > now
        ],
        preferences=state.preferences,
        decisions=[
            DecisionView(
                proposal_id=stored.decision.proposal_id,
                verdict=stored.decision.verdict,
                reasons=list(stored.decision.reasons),
                defer_until=stored.decision.defer_until,
                rule_set_version=stored.decision.rule_set_version,
                decided_at=stored.decision.occurred_at,
                trace_id=stored.trace_id,
            )
            for stored in decisions
        ],
        consent_changes=[
            ConsentChangeView(
                kind=change.kind,
                channel=change.channel,
                source=change.source,
                occurred_at=change.occurred_at,
                hold_kind=change.hold_kind,
            )
            for change in sorted(changes, key=lambda change: change.occurred_at, reverse=True)
        ],
    )
