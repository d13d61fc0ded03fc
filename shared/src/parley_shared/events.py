"""The one event contract shared by every Parley service.

Events are versioned; later versions only ever add optional fields, so a consumer
built against version 1 keeps reading version 2 messages. Every event carries its
own id (for idempotent consumers), the schema version, the instant it happened and
the debtor it concerns (the Kafka key).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
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


class AddressProvenance(StrEnum):
    """How the collector came to hold an email address or number (Reg F 1006.6(d)(4))."""

    CONSUMER_USED = "consumer_used"
    CONSUMER_CONSENTED = "consumer_consented"
    CREDITOR_NOTICE = "creditor_notice"
    PRIOR_COLLECTOR = "prior_collector"
    UNKNOWN = "unknown"


class AddressFacts(BaseModel):
    """What is known about the address being contacted; the consent rules judge eligibility."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    provenance: AddressProvenance = AddressProvenance.UNKNOWN
    employer_provided: bool = False
    consent_evidence: str | None = Field(
        default=None, description="Reference to the consumer's consent, e.g. a signed form id."
    )
    consented_at: AwareDatetime | None = None
    confirmed_at: AwareDatetime | None = Field(
        default=None,
        description="Last time the consumer texted from the number or a reassigned-number "
        "check showed it still theirs.",
    )


class SendWindow(BaseModel):
    """A campaign's own local-time window; it only ever narrows the lawful one."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    earliest: time = time(8, 0)
    latest: time = time(21, 0)
    weekdays: tuple[int, ...] = Field(
        default=(1, 2, 3, 4, 5, 6, 7), description="ISO weekdays, 1 = Monday."
    )


class MessageKind(StrEnum):
    """What a message is for; some holds still allow a few listed kinds."""

    COLLECTION = "collection"
    VALIDATION_NOTICE = "validation_notice"
    VERIFICATION = "verification"
    CEASE_EFFORTS_ENDING = "cease_efforts_ending"
    CEASE_REMEDY_MAY_BE_INVOKED = "cease_remedy_may_be_invoked"
    CEASE_REMEDY_WILL_BE_INVOKED = "cease_remedy_will_be_invoked"
    OPT_OUT_CONFIRMATION = "opt_out_confirmation"


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
    region: str | None = Field(
        default=None, description="State or region code where the debtor lives, e.g. MA, NY."
    )
    city: str | None = Field(default=None, description="City, e.g. to tell New York City apart.")
    postal_code: str | None = Field(default=None, description="Postal address code (US ZIP).")
    location_phones: tuple[str, ...] = Field(
        default=(),
        description="Every phone number known for the debtor, as time-zone evidence only.",
    )
    address_facts: AddressFacts | None = None
    send_window: SendWindow | None = None
    message_kind: MessageKind = MessageKind.COLLECTION
    attempt: int = Field(
        default=0, ge=0, description="0 for the first proposal of a step, +1 per re-proposal."
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
    evidence: dict[str, Any] = Field(
        default_factory=dict,
        description="What the decision used: zones considered, contact counts, holds seen.",
    )


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
    proposed_at: AwareDatetime | None = Field(
        default=None, description="When the reminder was proposed, for end-to-end latency."
    )


class ConsentChangeKind(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HOLD = "hold"
    HOLD_RELEASED = "hold_released"
    PREFERENCE = "preference"
    ADDRESS_INVALID = "address_invalid"


class HoldKind(StrEnum):
    DISPUTE = "dispute"
    CEASE = "cease"
    ATTORNEY = "attorney"
    BANKRUPTCY = "bankruptcy"
    DECEASED = "deceased"
    BREATHING_SPACE = "breathing_space"
    HARDSHIP = "hardship"
    VULNERABILITY = "vulnerability"


class ContactPreferences(BaseModel):
    """A debtor's own wishes about when and how; they narrow the lawful window."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    earliest: time | None = None
    latest: time | None = None
    weekdays: tuple[int, ...] | None = Field(default=None, description="ISO weekdays allowed.")
    preferred_channel: Channel | None = None
    locale: str | None = None


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
    hold_kind: HoldKind | None = Field(default=None, description="Set for hold and hold_released.")
    starts_at: AwareDatetime | None = Field(default=None, description="When a hold begins.")
    ends_at: AwareDatetime | None = Field(
        default=None, description="When a hold ends by itself (breathing space, hardship)."
    )
    preferences: ContactPreferences | None = Field(default=None, description="Set for preference.")


ALL_EVENT_TYPES: tuple[type[Event], ...] = (
    ReminderProposed,
    ContactDecision,
    DeliveryReported,
    ConsentChanged,
)
