"""Builders for the consent tests: a proposal and consent changes with sensible defaults."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from parley_consent.domain import DebtorState, Decision, PastContact, decide, default_rule_set
from parley_shared.events import (
    AddressFacts,
    AddressProvenance,
    Channel,
    ConsentChanged,
    ConsentChangeKind,
    ConsentSource,
    ReminderProposed,
)

PHONE = "+12125550100"
EMAIL = "dana.debtor@example.com"
# Recent enough for the 60-day SMS rule at the dates most tests use (June 2026).
CONFIRMED_AT = datetime(2026, 6, 1, tzinfo=UTC)
RULES = default_rule_set()


def eligible_facts(confirmed_at: datetime = CONFIRMED_AT) -> AddressFacts:
    """An address the debtor consented to in writing and confirmed recently."""
    return AddressFacts(
        provenance=AddressProvenance.CONSUMER_CONSENTED,
        consent_evidence="form-1",
        consented_at=datetime(2025, 1, 1, tzinfo=UTC),
        confirmed_at=confirmed_at,
    )


def decide_now(
    reminder: ReminderProposed,
    now: datetime,
    debtor: DebtorState | None = None,
    history: Sequence[PastContact] = (),
) -> Decision:
    return decide(reminder, debtor or DebtorState(), history, now, RULES)


def proposal(**overrides: Any) -> ReminderProposed:
    fields: dict[str, Any] = {
        "debtor_id": "d-1",
        "proposal_id": uuid.uuid4(),
        "campaign_id": "c-1",
        "campaign_version": 1,
        "step": 0,
        "channel": Channel.SMS,
        "address": PHONE,
        "time_zone": "America/New_York",
        "country": "US",
        "template": "reminder-1",
        "variables": {"first_name": "Dana", "balance": "$120.00"},
        "address_facts": eligible_facts(),
    }
    fields.update(overrides)
    if fields["channel"] is Channel.EMAIL and "address" not in overrides:
        fields["address"] = EMAIL
    return ReminderProposed(**fields)


def consent_change(
    kind: ConsentChangeKind,
    occurred_at: datetime,
    *,
    debtor_id: str = "d-1",
    channel: Channel | None = None,
    address: str | None = None,
) -> ConsentChanged:
    return ConsentChanged(
        debtor_id=debtor_id,
        occurred_at=occurred_at,
        kind=kind,
        channel=channel,
        address=address,
        source=ConsentSource.PREFERENCE_PAGE,
        evidence=f"form-{uuid.uuid4().hex[:8]}",
    )


def opt_out(occurred_at: datetime, **scope: Any) -> ConsentChanged:
    return consent_change(ConsentChangeKind.OPT_OUT, occurred_at, **scope)


def opt_in(occurred_at: datetime, **scope: Any) -> ConsentChanged:
    return consent_change(ConsentChangeKind.OPT_IN, occurred_at, **scope)
