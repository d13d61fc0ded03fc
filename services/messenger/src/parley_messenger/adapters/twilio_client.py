"""SMS through the real ``twilio`` SDK, over an instrumented httpx client.

httpx (rather than the SDK's aiohttp client) because it can be built outside a running
loop and because ``HTTPXClientInstrumentor`` gives each call a client span under this
service's tracer provider and sends ``traceparent`` with the request.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from parley_messenger.adapters.http_pool import provider_limits
from parley_messenger.domain.model import OutboundMessage, ProviderOutcome
from parley_messenger.settings import TwilioSettings

log = logging.getLogger(__name__)

# Errors raised before the request was fully handed to the network: the provider never
# saw it, so reporting "failed" is certain. Anything later may have been accepted.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class HttpxTwilioHttpClient(AsyncHttpClient):  # type: ignore[misc]  # twilio is untyped
    """The SDK's async transport interface, implemented with httpx.

    Deliberately logs nothing: the SDK's own clients log request details, and a request
    to Twilio carries a phone number and a message body.
    """

    def __init__(self, client: httpx.AsyncClient, timeout: float) -> None:
        super().__init__(log, is_async=True, timeout=timeout)
        self._client = client

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
        response = await self._client.request(
            method,
            uri,
            params=params,  # type: ignore[arg-type]  # the SDK passes str-able values
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout or self.timeout,
            follow_redirects=allow_redirects,
        )
        return Response(response.status_code, response.text, response.headers)


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
        self._http = httpx.AsyncClient(timeout=timeout, limits=provider_limits(connections))
        HTTPXClientInstrumentor.instrument_client(self._http, tracer_provider=tracer_provider)
        self._client = Client(
            username=settings.account_sid,
            password=settings.auth_token.get_secret_value(),
            account_sid=settings.account_sid,
            http_client=HttpxTwilioHttpClient(self._http, timeout),
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
        except _NOT_SENT as error:
            return ProviderOutcome.refused_for_now(
                "connect-error", f"Twilio unreachable: {type(error).__name__}"
            )
        except httpx.HTTPError as error:
            return ProviderOutcome.unknown(f"no answer from Twilio: {type(error).__name__}")
        return ProviderOutcome.sent(str(created.sid))

    async def close(self) -> None:
        await self._http.aclose()


def _refused(error: TwilioRestException) -> ProviderOutcome:
    status = int(error.status)
    code = str(error.code) if error.code is not None else f"http-{status}"
    if status == 429 or code == "20429" or status >= 500:
        # Twilio answers these before it queues anything: the message was not accepted,
        # so another attempt cannot make a second copy.
        return ProviderOutcome.refused_for_now(code, f"Twilio refused for now ({status})")
    # The SDK's message is Twilio's text for the code; it does not echo the number.
    return ProviderOutcome.failed(code, f"Twilio refused ({status})")
