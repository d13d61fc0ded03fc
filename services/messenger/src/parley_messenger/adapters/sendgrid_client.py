"""Email through SendGrid's v3 Mail Send API: the body built with the ``sendgrid`` SDK's
``Mail`` helpers, posted over the messenger's pooled, traced aiohttp session (``http_pool``).

The SDK's own transport is synchronous urllib, which would take a thread per send; the
helpers are what carries SendGrid's knowledge of the body, so they are kept.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry.sdk.trace import TracerProvider
from sendgrid.helpers.mail import Content, CustomArg, From, Header, Mail, Personalization, To

from parley_messenger.adapters.http_pool import (
    NO_ANSWER,
    NOT_SENT,
    ProviderSession,
    why_no_answer,
)
from parley_messenger.domain.model import OutboundMessage, ProviderOutcome
from parley_messenger.settings import SendGridSettings

REAL_HOST = "https://api.sendgrid.com"


def build_mail(message: OutboundMessage, from_email: str, from_name: str) -> Mail:
    """The Mail Send body, built with the SDK's helpers. Custom args go on the
    personalization: the API takes them there as an object, the documented way."""
    recipient = To(message.to)
    if not recipient.email:
        # The helper reads a string without "@" as a display name, not an address.
        raise ValueError("the recipient is not an email address")
    mail = Mail(from_email=From(from_email, from_name), subject=message.subject)
    personalization = Personalization()
    personalization.add_to(recipient)
    for key, value in message.custom_args.items():
        personalization.add_custom_arg(CustomArg(key, value))
    mail.add_personalization(personalization)
    mail.add_content(Content("text/plain", message.body))
    for name, value in message.headers.items():
        mail.add_header(Header(name, value))
    return mail


class SendGridSender:
    def __init__(
        self,
        settings: SendGridSettings,
        tracer_provider: TracerProvider,
        *,
        timeout: float,
        connections: int = 16,
    ) -> None:
        self._settings = settings
        self._url = (settings.host or REAL_HOST).rstrip("/") + "/v3/mail/send"
        self._session = ProviderSession(
            tracer_provider,
            timeout=timeout,
            connections=connections,
            headers={"Authorization": f"Bearer {settings.api_key.get_secret_value()}"},
        )

    async def send(self, message: OutboundMessage) -> ProviderOutcome:
        try:
            mail = build_mail(message, self._settings.from_email, self._settings.from_name)
        except ValueError as error:
            return ProviderOutcome.failed("invalid-address", str(error))
        try:
            async with self._session.get().post(self._url, json=mail.get()) as response:
                # Read to the end, so the connection goes back to the pool reusable.
                await response.read()
                status, headers = response.status, response.headers
        except NOT_SENT as error:
            return ProviderOutcome.refused_for_now(
                "connect-error", f"SendGrid unreachable: {type(error).__name__}"
            )
        except NO_ANSWER as error:
            # The request left; the answer did not come (timeout, reset).
            return ProviderOutcome.unknown(f"no answer from SendGrid: {why_no_answer(error)}")
        return _outcome(status, headers)

    async def close(self) -> None:
        await self._session.close()


def _outcome(status: int, headers: Mapping[str, str]) -> ProviderOutcome:
    if status == 202:
        message_id = headers.get("X-Message-Id")
        if not message_id:
            return ProviderOutcome.unknown(f"SendGrid answered {status} without an id")
        return ProviderOutcome.sent(message_id)
    if status == 429 or status >= 500:
        # Answered before SendGrid took the message: another attempt makes no second copy.
        return ProviderOutcome.refused_for_now(
            str(status), f"SendGrid refused for now ({status})", _retry_after(headers)
        )
    if 200 <= status < 300:
        return ProviderOutcome.unknown(f"SendGrid answered {status}, not 202")
    # The error body names the field at fault; it is not repeated here because SendGrid's
    # messages can quote the address.
    return ProviderOutcome.failed(str(status), f"SendGrid refused ({status})")


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
