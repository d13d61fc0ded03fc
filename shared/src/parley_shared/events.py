"""The one event contract shared by every Parley service.

Events are versioned; later versions only ever add optional fields, so a consumer
built against version 1 keeps reading version 2 messages. Every event carries its
own id (for idempotent consumers), the schema version, the instant it happened and
the debtor it concerns (the Kafka key).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1


def _require_timezone(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must carry a time zone offset (use UTC)")
    return value.astimezone(UTC)


AwareDatetime = Annotated[datetime, AfterValidator(_require_timezone)]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class Event(BaseModel):
    """Fields common to every event."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    schema_version: int = Field(default=SCHEMA_VERSION, ge=1)
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    debtor_id: str = Field(min_length=1, max_length=128)

    def kafka_key(self) -> bytes:
        """Events are keyed by debtor so one debtor's events stay ordered in one partition."""
        return self.debtor_id.encode()


class ReminderProposed(Event):
    """The scheduler proposes one step of a campaign for one debtor."""

    event_type: ClassVar[str] = "reminder.proposed"

    proposal_id: uuid.UUID
    campaign_id: str
    campaign_version: int = Field(ge=1)
    step: int = Field(ge=0)
    channel: Channel
    address: str = Field(description="E.164 phone number or email address; never logged.")
    time_zone: str | None = Field(
        default=None, description="IANA zone of the debtor when known, e.g. America/New_York."
    )
    country: str = Field(default="US", min_length=2, max_length=2)
    template: str
    locale: str = "en"
    variables: dict[str, str] = Field(
        default_factory=dict, description="Values for the template; may hold personal data."
    )


class Verdict(StrEnum):
    APPROVED = "approved"
    VETOED = "vetoed"
    DEFERRED = "deferred"


class DecisionReason(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule_id: str = Field(description="Rule id from the contact rules, e.g. US-F-TIME.")
    explanation: str


class ContactDecision(Event):
    """The consent service's verdict on one proposal."""

    event_type: ClassVar[str] = "contact.decision"

    proposal_id: uuid.UUID
    verdict: Verdict
    reasons: tuple[DecisionReason, ...] = ()
    defer_until: AwareDatetime | None = Field(
        default=None, description="Set when deferred: the earliest lawful instant."
    )
    lawful_until: AwareDatetime | None = Field(
        default=None,
        description="Set when approved: the message must not leave after this instant.",
    )
    rule_set_version: str
    proposal: ReminderProposed


class DeliveryStatus(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


class DeliveryReported(Event):
    """What became of one proposal's message."""

    event_type: ClassVar[str] = "delivery.reported"

    proposal_id: uuid.UUID
    channel: Channel
    status: DeliveryStatus
    provider: Literal["twilio", "sendgrid"]
    provider_message_id: str | None = None
    error_code: str | None = None
    detail: str | None = None


class ConsentChangeKind(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HOLD = "hold"
    PREFERENCE = "preference"


class ConsentSource(StrEnum):
    SMS_REPLY = "sms_reply"
    EMAIL_UNSUBSCRIBE = "email_unsubscribe"
    PREFERENCE_PAGE = "preference_page"
    OPERATOR = "operator"
    IMPORT = "import"
    PROVIDER = "provider"


class ConsentChanged(Event):
    """A debtor's wishes or legal status changed.

    ``channel`` and ``address`` narrow the scope: both empty means every channel; a
    channel alone means that medium; an address means that one number or mailbox.
    """

    event_type: ClassVar[str] = "consent.changed"

    kind: ConsentChangeKind
    channel: Channel | None = None
    address: str | None = None
    source: ConsentSource
    evidence: str = Field(
        min_length=1, description="What shows the change happened: a message sid, a form post id."
    )
    details: dict[str, Any] = Field(default_factory=dict)


ALL_EVENT_TYPES: tuple[type[Event], ...] = (
    ReminderProposed,
    ContactDecision,
    DeliveryReported,
    ConsentChanged,
)
