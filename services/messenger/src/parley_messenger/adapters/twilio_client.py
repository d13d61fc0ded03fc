"""SMS through the real ``twilio`` SDK, over the messenger's pooled, traced aiohttp
session (``http_pool``): the SDK's own async client neither makes client spans nor
sends ``traceparent``.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from parley_messenger.adapters.http_pool import (
    NO_ANSWER,
    NOT_SENT,
    ProviderSession,
    basic_authorization,
    timeouts,
    why_no_answer,
)
from parley_messenger.domain.model import OutboundMessage, ProviderOutcome
from parley_messenger.settings import TwilioSettings

log = logging.getLogger(__name__)


class SessionTwilioHttpClient(AsyncHttpClient):  # type: ignore[misc]  # twilio is untyped
    """The SDK's async transport interface, over a shared aiohttp session.

    Deliberately logs nothing: the SDK's own clients log request details, and a request
    to Twilio carries a phone number and a message body.
    """

    def __init__(self, session: ProviderSession, timeout: float) -> None:
        super().__init__(log, is_async=True, timeout=timeout)
        self._session = session

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        sent_headers = dict(headers or {})
        if auth is not None:
            sent_headers["Authorization"] = basic_authorization(*auth)
        async with self._session.get().request(
            method,
            uri,
            params=params,  # type: ignore[arg-type]  # the SDK passes str-able values
            data=data,
            headers=sent_headers,
            timeout=timeouts(timeout or self.timeout),
            allow_redirects=allow_redirects,
        ) as response:
            text = await response.text()
        return Response(response.status, text, dict(response.headers))


class TwilioSender:
    def __init__(
        self,
        settings: TwilioSettings,
        tracer_provider: TracerProvider,
        *,
        timeout: float,
        connections: int = 16,
    ) -> None:
        self._from_number = settings.from_number
        self._session = ProviderSession(tracer_provider, timeout=timeout, connections=connections)
        self._client = Client(
            username=settings.account_sid,
            password=settings.auth_token.get_secret_value(),
            account_sid=settings.account_sid,
            http_client=SessionTwilioHttpClient(self._session, timeout),
        )
        if settings.base_url is not None:
            self._client.api.base_url = settings.base_url.rstrip("/")
            # TWILIO_REGION / TWILIO_EDGE would rewrite the host and bypass the override.
            self._client.region = None
            self._client.edge = None

    async def send(self, message: OutboundMessage) -> ProviderOutcome:
        arguments: dict[str, Any] = {
            "to": message.to,
            "from_": self._from_number,
            "body": message.body,
        }
        if message.validity_period is not None:
            arguments["validity_period"] = message.validity_period
        if message.status_callback is not None:
            arguments["status_callback"] = message.status_callback
        try:
            created = await self._client.messages.create_async(**arguments)
        except TwilioRestException as error:
            return _refused(error)
        except NOT_SENT as error:
            return ProviderOutcome.refused_for_now(
                "connect-error", f"Twilio unreachable: {type(error).__name__}"
            )
        except NO_ANSWER as error:
            return ProviderOutcome.unknown(f"no answer from Twilio: {why_no_answer(error)}")
        return ProviderOutcome.sent(str(created.sid))

    async def close(self) -> None:
        await self._session.close()


def _refused(error: TwilioRestException) -> ProviderOutcome:
    status = int(error.status)
    code = str(error.code) if error.code is not None else f"http-{status}"
    if status == 429 or code == "20429" or status >= 500:
        # Twilio answers these before it queues anything: the message was not accepted,
        # so another attempt cannot make a second copy.
        return ProviderOutcome.refused_for_now(code, f"Twilio refused for now ({status})")
    # The SDK's message is Twilio's text for the code; it does not echo the number.
    return ProviderOutcome.failed(code, f"Twilio refused ({status})")
