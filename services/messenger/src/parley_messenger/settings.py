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
