"""Email through the real ``sendgrid`` SDK.

The SDK is synchronous (urllib), so each send runs in a worker thread; ``to_thread``
copies the context, so the span opened here is a child of the message's trace. The
client span and ``traceparent`` are set here rather than by the urllib instrumentation:
that one patches urllib for the whole process under the first tracer provider given,
which would misfile spans when several services (or test apps) share a process.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import urllib.error
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import propagate
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind, Status, StatusCode
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Content, CustomArg, From, Header, Mail, Personalization, To

from parley_messenger.domain.model import OutboundMessage, ProviderOutcome
from parley_messenger.settings import SendGridSettings

log = logging.getLogger(__name__)

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
        self, settings: SendGridSettings, tracer_provider: TracerProvider, *, timeout: float
    ) -> None:
        self._settings = settings
        self._host = (settings.host or REAL_HOST).rstrip("/")
        self._timeout = timeout
        self._tracer = tracer_provider.get_tracer(__name__)
        # python_http_client logs whole request bodies at DEBUG: addresses, message text.
        logging.getLogger("python_http_client").setLevel(logging.INFO)

    async def send(self, message: OutboundMessage) -> ProviderOutcome:
        try:
            mail = build_mail(message, self._settings.from_email, self._settings.from_name)
        except ValueError as error:
            return ProviderOutcome.failed("invalid-address", str(error))
        return await asyncio.to_thread(self._post, mail.get())

    def _post(self, body: dict[str, Any]) -> ProviderOutcome:
        url = f"{self._host}/v3/mail/send"
        parts = urlsplit(url)
        attributes: dict[str, str | int] = {
            "http.request.method": "POST",
            "url.full": url,
            "server.address": parts.hostname or "",
            "server.port": parts.port or (443 if parts.scheme == "https" else 80),
        }
        with self._tracer.start_as_current_span(
            "POST", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            trace_headers: dict[str, str] = {}
            propagate.inject(trace_headers)
            # A client per call: python_http_client shares one mutable header dict between
            # a client and its children, so concurrent sends would swap traceparents.
            sendgrid = SendGridAPIClient(
                api_key=self._settings.api_key.get_secret_value(), host=self._host
            )
            sendgrid.client.timeout = self._timeout
            try:
                response = sendgrid.client.mail.send.post(
                    request_body=body, request_headers=trace_headers
                )
            except HTTPError as error:
                span.set_attribute("http.response.status_code", error.status_code)
                span.set_status(Status(StatusCode.ERROR))
                return _refused(error)
            except urllib.error.URLError as error:
                # urllib raises URLError while connecting or writing the request, before
                # any answer could exist: SendGrid did not accept this message.
                span.set_status(Status(StatusCode.ERROR, "connect error"))
                return ProviderOutcome.failed(
                    "connect-error", f"SendGrid unreachable: {type(error.reason).__name__}"
                )
            except (OSError, http.client.HTTPException) as error:
                # The request left; the answer did not come (timeout, reset).
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                return ProviderOutcome.unknown(f"no answer from SendGrid: {type(error).__name__}")
            span.set_attribute("http.response.status_code", response.status_code)
        message_id = response.headers.get("X-Message-Id")
        if not message_id:
            return ProviderOutcome.unknown(
                f"SendGrid answered {response.status_code} without an id"
            )
        return ProviderOutcome.sent(str(message_id))

    async def close(self) -> None:
        """Nothing pooled to release: urllib opens a connection per request."""


def _refused(error: HTTPError) -> ProviderOutcome:
    status = int(error.status_code)
    if status >= 500:
        return ProviderOutcome.unknown(f"SendGrid answered {status}")
    # The error body names the field at fault; it is not repeated here because SendGrid's
    # messages can quote the address.
    return ProviderOutcome.failed(str(status), f"SendGrid refused ({status})")
