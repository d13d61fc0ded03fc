"""Settings of the provider stand-ins: where they listen and which credentials they accept."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# Sandbox-only credentials, shared by default with the messenger's sandbox configuration.
# They open nothing real: the stand-ins accept them and nothing else.
DEFAULT_ACCOUNT_SID = "AC00000000000000000000000000000001"
DEFAULT_AUTH_TOKEN = "sandbox-auth-token"  # noqa: S105 - a stand-in credential, not a secret
DEFAULT_API_KEY = "SG.sandbox-api-key"


class SandboxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PARLEY_SANDBOX_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8190, ge=0, le=65535)
    log_level: str = "INFO"
    twilio_account_sid: str = Field(default=DEFAULT_ACCOUNT_SID, pattern=r"^AC[0-9a-fA-F]{32}$")
    twilio_auth_token: SecretStr = SecretStr(DEFAULT_AUTH_TOKEN)
    sendgrid_api_key: SecretStr = SecretStr(DEFAULT_API_KEY)
    twilio_status_callbacks: bool = Field(
        default=True, description="POST signed status callbacks to a message's StatusCallback."
    )
    twilio_inbound_url: str | None = Field(
        default=None,
        description="Where simulated inbound SMS are posted (the messenger's public "
        "/webhooks/twilio/inbound URL).",
    )
    sendgrid_event_webhook_url: str | None = Field(
        default=None, description="Where signed Event Webhook posts go; None sends none."
    )
    sendgrid_event_private_key: SecretStr | None = Field(
        default=None, description="PEM EC P-256 private key that signs Event Webhook posts."
    )
    callback_delay_seconds: float = Field(
        default=0.05, ge=0, description="Pause before each callback, as a provider takes."
    )
