"""What the messenger records about one proposal's send, and what it hands a provider."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from parley_shared.events import Channel, DeliveryReported, DeliveryStatus

ProviderName = Literal["twilio", "sendgrid"]

# Report ids derive from the proposal and the outcome, so a republished report is the
# same event to every idempotent consumer.
REPORT_NAMESPACE = uuid.UUID("0b6f3c1a-5d2e-4f7a-8c9b-1e2d3f4a5b6c")


class SendStatus(StrEnum):
    CLAIMED = "claimed"  # durably reserved; the provider may or may not have been called
    SENT = "sent"
    FAILED = "failed"
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # the request may have left; never retried
    SUPPRESSED = "suppressed"  # an opt-out seen at dispatch stopped it; never sent


def provider_for(channel: Channel) -> ProviderName:
    return "twilio" if channel is Channel.SMS else "sendgrid"


@dataclass(frozen=True)
class SendRecord:
    """One row of ``messenger.sends``: the at-most-once ledger, keyed by proposal."""

    proposal_id: uuid.UUID
    debtor_id: str
    channel: Channel
    status: SendStatus
    provider: ProviderName
    claimed_at: datetime
    provider_message_id: str | None = None
    error_code: str | None = None
    detail: str | None = None
    finished_at: datetime | None = None
    trace_id: str | None = None
    span_id: str | None = None
    address: str | None = field(default=None, repr=False)
    # Known while the decision is in hand (not stored): feeds end-to-end latency.
    proposed_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ProviderOutcome:
    """What a provider call came to. Adapters map their SDK's answers and errors to this."""

    status: Literal[SendStatus.SENT, SendStatus.FAILED, SendStatus.UNKNOWN]
    provider_message_id: str | None = None
    error_code: str | None = None
    detail: str | None = None
    # True only when the provider provably did not accept the message (429, 5xx, nothing
    # listening): trying again cannot make a second copy.
    retryable: bool = False
    retry_after: float | None = None

    @classmethod
    def sent(cls, provider_message_id: str) -> ProviderOutcome:
        return cls(SendStatus.SENT, provider_message_id=provider_message_id)

    @classmethod
    def failed(cls, error_code: str, detail: str | None = None) -> ProviderOutcome:
        return cls(SendStatus.FAILED, error_code=error_code, detail=detail)

    @classmethod
    def refused_for_now(
        cls, error_code: str, detail: str, retry_after: float | None = None
    ) -> ProviderOutcome:
        """Not accepted, for a reason that may pass (rate limit, server error, no listener)."""
        return cls(
            SendStatus.FAILED,
            error_code=error_code,
            detail=detail,
            retryable=True,
            retry_after=retry_after,
        )

    @classmethod
    def unknown(cls, detail: str) -> ProviderOutcome:
        return cls(SendStatus.UNKNOWN, detail=detail)


@dataclass(frozen=True)
class OutboundMessage:
    """A composed message, ready for a provider. Personal fields stay out of ``repr``, so
    the message cannot leak into a log line or a traceback by accident."""

    proposal_id: uuid.UUID
    debtor_id: str
    channel: Channel
    to: str = field(repr=False)
    body: str = field(repr=False)
    subject: str | None = field(default=None, repr=False)
    validity_period: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    custom_args: Mapping[str, str] = field(default_factory=dict)
    status_callback: str | None = None


_REPORTED_STATUS = {
    SendStatus.SENT: DeliveryStatus.SENT,
    SendStatus.FAILED: DeliveryStatus.FAILED,
    SendStatus.EXPIRED: DeliveryStatus.EXPIRED,
    SendStatus.UNKNOWN: DeliveryStatus.UNKNOWN,
    # The event has no "suppressed" status: a failure whose code says why.
    SendStatus.SUPPRESSED: DeliveryStatus.FAILED,
}


def report_for(record: SendRecord) -> DeliveryReported:
    """The ``DeliveryReported`` event for a concluded send (not for a bare claim)."""
    status = _REPORTED_STATUS.get(record.status)
    if status is None:
        raise ValueError(f"a {record.status} send has no outcome to report yet")
    return DeliveryReported(
        event_id=uuid.uuid5(REPORT_NAMESPACE, f"{record.proposal_id}/{status.value}"),
        occurred_at=record.finished_at or record.claimed_at,
        debtor_id=record.debtor_id,
        proposal_id=record.proposal_id,
        channel=record.channel,
        status=status,
        provider=record.provider,
        provider_message_id=record.provider_message_id,
        error_code=record.error_code,
        detail=record.detail,
        proposed_at=record.proposed_at,
    )
