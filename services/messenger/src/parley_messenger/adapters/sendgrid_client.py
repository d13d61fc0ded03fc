"""Email through SendGrid's v3 Mail Send API: the body built with the ``sendgrid`` SDK's
``Mail`` helpers, posted with an async, instrumented httpx client.

The SDK's own transport is synchronous urllib, which would take a thread per send; the
helpers are what carries SendGrid's knowledge of the body, so they are kept.
"""

from __future__ import annotations

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from sendgrid.helpers.mail import Content, CustomArg, From, Header, Mail, Personalization, To

from parley_messenger.adapters.http_pool import provider_limits
from parley_messenger.domain.model import OutboundMessage, ProviderOutcome
from parley_messenger.settings import SendGridSettings

REAL_HOST = "https://api.sendgrid.com"

# Raised before the request was handed to the network: SendGrid never saw it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


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
        host = (settings.host or REAL_HOST).rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=host,
            timeout=timeout,
            limits=provider_limits(connections),
            headers={"Authorization": f"Bearer {settings.api_key.get_secret_value()}"},
        )
        HTTPXClientInstrumentor.instrument_client(self._http, tracer_provider=tracer_provider)

    async def send(self, message: OutboundMessage) -> ProviderOutcome:
        try:
            mail = build_mail(message, self._settings.from_email, self._settings.from_name)
        except ValueError as error:
            return ProviderOutcome.failed("invalid-address", str(error))
        try:
            response = await self._http.post("/v3/mail/send", json=mail.get())
        except _NOT_SENT as error:
            return ProviderOutcome.refused_for_now(
                "connect-error", f"SendGrid unreachable: {type(error).__name__}"
            )
        except httpx.HTTPError as error:
            # The request left; the answer did not come (timeout, reset).
            return ProviderOutcome.unknown(f"no answer from SendGrid: {type(error).__name__}")
        return _outcome(response)

    async def close(self) -> None:
        await self._http.aclose()


def _outcome(response: httpx.Response) -> ProviderOutcome:
    status = response.status_code
    if status == 202:
        message_id = response.headers.get("X-Message-Id")
        if not message_id:
            return ProviderOutcome.unknown(f"SendGrid answered {status} without an id")
        return ProviderOutcome.sent(message_id)
    if status == 429 or status >= 500:
        # Answered before SendGrid took the message: another attempt makes no second copy.
        return ProviderOutcome.refused_for_now(
            str(status), f"SendGrid refused for now ({status})", _retry_after(response)
        )
    if 200 <= status < 300:
        return ProviderOutcome.unknown(f"SendGrid answered {status}, not 202")
    # The error body names the field at fault; it is not repeated here because SendGrid's
    # messages can quote the address.
    return ProviderOutcome.failed(str(status), f"SendGrid refused ({status})")


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
