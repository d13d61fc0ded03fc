"""The messenger's settings: the shared ones plus the providers and the links it writes.

Environment: ``PARLEY_TWILIO__AUTH_TOKEN``, ``PARLEY_SENDGRID__HOST`` and so on. The
defaults are the sandbox's credentials, which open nothing real.
"""

from __future__ import annotations

from parley_shared.settings import ServiceSettings
from pydantic import BaseModel, Field, SecretStr


class TwilioSettings(BaseModel):
    account_sid: str = Field(
        default="AC00000000000000000000000000000001", pattern=r"^AC[0-9a-fA-F]{32}$"
    )
    auth_token: SecretStr = SecretStr("sandbox-auth-token")
    from_number: str = Field(default="+15005550006", description="E.164 sender number.")
    base_url: str | None = Field(
        default=None,
        description="API origin, e.g. the sandbox's http://127.0.0.1:8190; None is real Twilio.",
    )


class SendGridSettings(BaseModel):
    api_key: SecretStr = SecretStr("SG.sandbox-api-key")
    from_email: str = "collections@parley.example"
    from_name: str = "Parley Collections"
    host: str | None = Field(
        default=None,
        description="API origin without /v3, e.g. http://127.0.0.1:8190; None is real SendGrid.",
    )
    event_webhook_public_key: str | None = Field(
        default=None,
        description="Base64 DER (SubjectPublicKeyInfo) of the Event Webhook's ECDSA key, as "
        "SendGrid shows it; None refuses every event post (403).",
    )
    event_max_age_seconds: int = Field(
        default=600,
        ge=1,
        description="Signed event posts older than this are refused as replays.",
    )


class MessengerSettings(ServiceSettings):
    http_port: int = Field(default=8103, ge=0, le=65535)
    twilio: TwilioSettings = TwilioSettings()
    sendgrid: SendGridSettings = SendGridSettings()
    public_base_url: str = Field(
        default="http://127.0.0.1:8103",
        description="Origin debtors reach for links in messages (unsubscribe).",
    )
    send_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Longest wait for a provider to answer one send."
    )
    decision_batch_size: int = Field(
        default=100, ge=1, le=5000, description="Most decisions taken from Kafka in one batch."
    )
    # More sends in flight raise throughput but slow each event loop's answers, opt-outs
    # included (measured in docs/messenger.md, "Throughput").
    send_concurrency: int = Field(
        default=16,
        ge=1,
        le=256,
        description="Debtors whose messages are sent at the same time (one debtor's in order).",
    )
    unsubscribe_secret: SecretStr = Field(
        default=SecretStr("sandbox-unsubscribe-secret"),
        description="Signs the one-click unsubscribe links; changing it voids links sent.",
    )
    preference_link_secret: SecretStr = Field(
        default=SecretStr("sandbox-preference-link-secret"),
        description="Signs the preference page links and its forms; changing it voids links sent.",
    )
    preference_link_max_age_days: int = Field(
        default=30, ge=1, le=365, description="How long a preference page link works."
    )
    preference_rate_limit_per_minute: int = Field(
        default=30,
        ge=1,
        description="Requests one client may make to the preference page's links per minute.",
    )
    consent_url: str = Field(
        default="http://127.0.0.1:8102",
        description="Consent service origin the preference page records choices with.",
    )
    sms_max_segments: int = Field(
        default=6, ge=1, le=10, description="Longest SMS allowed, in GSM-7 or UCS-2 segments."
    )
    retry_max_attempts: int = Field(
        default=4, ge=1, description="Provider calls per message, when refusals say retry."
    )
    retry_base_delay_seconds: float = Field(
        default=0.5, gt=0, description="Longest wait before the first retry (full jitter)."
    )
    retry_max_delay_seconds: float = Field(
        default=8.0, gt=0, description="Cap on the wait between two attempts."
    )
