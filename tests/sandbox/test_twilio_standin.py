"""The Twilio stand-in, driven by the real twilio SDK and checked against Twilio's spec."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
import requests
from parley_sandbox.settings import SandboxSettings
from parley_sandbox.twilio_api import count_segments
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tests.sandbox.contract import WireRequest, WireResponse, twilio_openapi

SENDER = "+15005550006"
RECIPIENT = "+14155550100"
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def sdk_client(base_url: str, settings: SandboxSettings, *, token: str | None = None) -> Client:
    client = Client(
        settings.twilio_account_sid, token or settings.twilio_auth_token.get_secret_value()
    )
    client.api.base_url = base_url
    # TWILIO_REGION / TWILIO_EDGE in the environment would rewrite the host.
    client.region = None
    client.edge = None
    return client


def capture_exchanges(client: Client) -> list[requests.Response]:
    """Responses (with their prepared requests) of every call the SDK makes."""
    exchanges: list[requests.Response] = []
    client.http_client.session.hooks["response"].append(
        lambda response, *args, **kwargs: exchanges.append(response)
    )
    return exchanges


def wire(response: requests.Response) -> tuple[WireRequest, WireResponse]:
    prepared = response.request
    raw = prepared.body
    body = raw.encode() if isinstance(raw, str) else raw if isinstance(raw, bytes) else None
    headers = {k: v if isinstance(v, str) else v.decode() for k, v in prepared.headers.items()}
    request = WireRequest(str(prepared.method), str(prepared.url), headers, body)
    return request, WireResponse(response.status_code, dict(response.headers), response.content)


async def recorded(base_url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.get("/_sandbox/messages")
        response.raise_for_status()
        messages: list[dict[str, Any]] = response.json()
        return messages


async def test_sdk_request_and_response_match_twilios_spec(
    sandbox_url: str, sandbox_settings: SandboxSettings
) -> None:
    client = sdk_client(sandbox_url, sandbox_settings)
    exchanges = capture_exchanges(client)
    # The sync SDK blocks; the stand-in serves from this event loop.
    message = await asyncio.to_thread(
        client.messages.create,
        to=RECIPIENT,
        from_=SENDER,
        body="Hello from the sandbox",
        validity_period=600,
        status_callback="https://parley.example/webhooks/twilio/status",
    )

    assert re.fullmatch(r"SM[0-9a-f]{32}", message.sid)
    assert message.status == "queued"
    assert message.to == RECIPIENT
    assert message.from_ == SENDER
    assert message.num_segments == "1"
    assert message.error_code is None
    assert message.date_created is not None  # parsed from RFC 2822 by the SDK

    (exchange,) = exchanges
    request, response = wire(exchange)
    openapi = twilio_openapi()
    openapi.validate_request(request)
    openapi.validate_response(request, response)
    assert response.status_code == 201

    (record,) = await recorded(sandbox_url)
    assert record["provider"] == "twilio"
    assert record["message_id"] == message.sid
    assert record["to"] == [RECIPIENT]
    assert record["validity_period"] == 600
    assert record["status_callback"] == "https://parley.example/webhooks/twilio/status"


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
        ("not-a-number", 21211),
    ],
)
async def test_test_numbers_fail_with_twilios_codes(
    sandbox_url: str, sandbox_settings: SandboxSettings, to: str, code: int
) -> None:
    client = sdk_client(sandbox_url, sandbox_settings)
    with pytest.raises(TwilioRestException) as raised:
        await asyncio.to_thread(client.messages.create, to=to, from_=SENDER, body="hi")
    assert raised.value.status == 400
    assert raised.value.code == code
    assert raised.value.uri.endswith("/Messages.json")
    assert await recorded(sandbox_url) == []


async def test_wrong_credentials_get_401_with_code_20003(
    sandbox_url: str, sandbox_settings: SandboxSettings
) -> None:
    client = sdk_client(sandbox_url, sandbox_settings, token="not-the-token")
    with pytest.raises(TwilioRestException) as raised:
        await asyncio.to_thread(client.messages.create, to=RECIPIENT, from_=SENDER, body="hi")
    assert raised.value.status == 401
    assert raised.value.code == 20003
    assert await recorded(sandbox_url) == []


async def test_the_async_sdk_works_too(sandbox_url: str, sandbox_settings: SandboxSettings) -> None:
    from twilio.http.async_http_client import AsyncTwilioHttpClient

    # The aiohttp client binds to the running loop, so it is created in here.
    http_client = AsyncTwilioHttpClient()
    try:
        client = Client(
            sandbox_settings.twilio_account_sid,
            sandbox_settings.twilio_auth_token.get_secret_value(),
            http_client=http_client,
        )
        client.api.base_url = sandbox_url
        client.region = client.edge = None
        message = await client.messages.create_async(to=RECIPIENT, from_=SENDER, body="hi")
    finally:
        await http_client.close()
    assert message.status == "queued"


async def test_form_errors_and_trace_header(
    sandbox_url: str, sandbox_settings: SandboxSettings
) -> None:
    path = f"/2010-04-01/Accounts/{sandbox_settings.twilio_account_sid}/Messages.json"
    auth = (
        sandbox_settings.twilio_account_sid,
        sandbox_settings.twilio_auth_token.get_secret_value(),
    )
    async with httpx.AsyncClient(base_url=sandbox_url, auth=auth) as http:
        cases = [
            ({"From": SENDER, "Body": "hi"}, 21604),
            ({"To": RECIPIENT, "Body": "hi"}, 21603),
            ({"To": RECIPIENT, "From": SENDER}, 21602),
            ({"To": RECIPIENT, "From": SENDER, "Body": "hi", "ValidityPeriod": "0"}, 21624),
            ({"To": RECIPIENT, "From": SENDER, "Body": "hi", "ValidityPeriod": "36001"}, 21624),
            ({"To": RECIPIENT, "From": SENDER, "Body": "x" * 1601}, 21617),
        ]
        for form, code in cases:
            response = await http.post(path, data=form)
            assert response.status_code == 400
            error = response.json()
            assert error["code"] == code
            assert error["status"] == 400
            assert error["more_info"] == f"https://www.twilio.com/docs/errors/{code}"

        # A Messaging Service without From: accepted, sender picked later.
        service = "MG" + "0" * 32
        response = await http.post(
            path,
            data={"To": RECIPIENT, "MessagingServiceSid": service, "Body": "hi"},
            headers={"traceparent": TRACEPARENT},
        )
        assert response.status_code == 201
        assert response.json()["status"] == "accepted"
        assert response.json()["messaging_service_sid"] == service

    (record,) = await recorded(sandbox_url)
    assert record["traceparent"] == TRACEPARENT


async def test_another_accounts_path_is_refused(
    sandbox_url: str, sandbox_settings: SandboxSettings
) -> None:
    other = "AC" + "f" * 32
    auth = (
        sandbox_settings.twilio_account_sid,
        sandbox_settings.twilio_auth_token.get_secret_value(),
    )
    async with httpx.AsyncClient(base_url=sandbox_url, auth=auth) as http:
        response = await http.post(
            f"/2010-04-01/Accounts/{other}/Messages.json",
            data={"To": RECIPIENT, "From": SENDER, "Body": "hi"},
        )
    assert response.status_code == 401
    assert response.json()["code"] == 20003


def test_segments_count_like_twilio() -> None:
    assert count_segments("a" * 160) == 1
    assert count_segments("a" * 161) == 2
    assert count_segments("a" * 306) == 2
    assert count_segments("a" * 307) == 3
    assert count_segments("€" * 80) == 1  # extension characters take two septets
    assert count_segments("€" * 81) == 2
    assert count_segments("ü" * 160) == 1  # in the GSM basic set
    assert count_segments("ą" * 70) == 1  # forces UCS-2
    assert count_segments("ą" * 71) == 2
    assert count_segments("😀" * 35) == 1  # two UTF-16 units each
    assert count_segments("😀" * 36) == 2
