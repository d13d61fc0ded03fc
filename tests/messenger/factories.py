"""Decisions for the messenger's tests (addresses are Twilio test numbers and example.com)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from parley_shared.events import Channel, ContactDecision, DecisionReason, ReminderProposed, Verdict

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
SMS_OK = "+15005550006"
SMS_UNSUBSCRIBED = "+15005550004"  # Twilio answers 21610
EMAIL_OK = "debtor@example.com"
VARIABLES = {
    "name": "Ada Lovelace",
    "balance": "$1,234.56",
    "creditor": "Analytical Bank",
    "reference": "AB-1234",
}


def a_decision(
    *,
    channel: Channel = Channel.SMS,
    address: str | None = None,
    verdict: Verdict = Verdict.APPROVED,
    lawful_until: datetime | None = NOW + timedelta(hours=2),
    locale: str = "en",
    template: str = "first-notice",
    variables: dict[str, str] | None = None,
    debtor_id: str | None = None,
) -> ContactDecision:
    debtor = debtor_id or f"debtor-{uuid.uuid4().hex[:8]}"
    proposal = ReminderProposed(
        debtor_id=debtor,
        proposal_id=uuid.uuid4(),
        campaign_id="spring-2026",
        campaign_version=1,
        step=0,
        channel=channel,
        address=address or (SMS_OK if channel is Channel.SMS else EMAIL_OK),
        time_zone="America/New_York",
        template=template,
        locale=locale,
        variables=VARIABLES if variables is None else variables,
    )
    reasons = (
        ()
        if verdict is Verdict.APPROVED
        else (DecisionReason(rule_id="US-F-TIME", explanation="late"),)
    )
    return ContactDecision(
        debtor_id=debtor,
        proposal_id=proposal.proposal_id,
        verdict=verdict,
        reasons=reasons,
        defer_until=NOW + timedelta(hours=12) if verdict is Verdict.DEFERRED else None,
        lawful_until=lawful_until if verdict is Verdict.APPROVED else None,
        rule_set_version="test",
        proposal=proposal,
    )
