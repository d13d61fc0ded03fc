"""The SendGrid stand-in, driven by the real sendgrid SDK and checked against SendGrid's spec."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any

import httpx
import pytest
from parley_sandbox.settings import SandboxSettings
from python_http_client.client import Client as HttpClient
from python_http_client.exceptions import BadRequestsError, UnauthorizedError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Content, CustomArg, From, Header, Mail, Personalization, To

from tests.sandbox.contract import WireRequest, WireResponse, sendgrid_openapi

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def a_mail() -> Mail:
    mail = Mail(from_email=From("collections@parley.example", "Parley"), subject="Your account")
    personalization = Personalization()
    personalization.add_to(To("debtor@example.com"))
    # Custom args on the personalization: the spec types the top-level field as a string
    # (a known error in SendGrid's document), while the API takes an object in both places.
    personalization.add_custom_arg(CustomArg("proposal_id", "p-1"))
    personalization.add_custom_arg(CustomArg("debtor_id", "d-1"))
    mail.add_personalization(personalization)
    mail.add_content(Content("text/plain", "Hello"))
    mail.add_header(Header("List-Unsubscribe", "<https://parley.example/unsubscribe/p-1>"))
    mail.add_header(Header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return mail


@pytest.fixture
def wire_log(monkeypatch: pytest.MonkeyPatch) -> list[tuple[WireRequest, WireResponse]]:
    """Every request the SDK puts on the wire, with the answer, as openapi-core sees them."""
    exchanges: list[tuple[WireRequest, WireResponse]] = []
    original = HttpClient._make_request

    def recording(
        self: HttpClient, opener: Any, request: urllib.request.Request, timeout: Any = None
    ) -> Any:
        body = request.data if isinstance(request.data, bytes) else None
        wire_request = WireRequest(
            request.get_method(), request.full_url, dict(request.header_items()), body
        )
        try:
            response = original(self, opener, request, timeout=timeout)
        except Exception as error:  # HTTPError subclasses carry the answer
            exchanges.append(
                (
                    wire_request,
                    WireResponse(error.status_code, dict(error.headers), error.body),  # type: ignore[attr-defined]
                )
            )
            raise
        body = response.read()
        exchanges.append(
            (wire_request, WireResponse(response.getcode(), dict(response.headers), body))
        )
        response.read = lambda: body  # already consumed above; hand the SDK the same bytes
        return response

    monkeypatch.setattr(HttpClient, "_make_request", recording)
    return exchanges


async def recorded(base_url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.get("/_sandbox/messages")
        response.raise_for_status()
        messages: list[dict[str, Any]] = response.json()
        return messages


async def test_sdk_request_matches_sendgrids_spec(
    sandbox_url: str,
    sandbox_settings: SandboxSettings,
    wire_log: list[tuple[WireRequest, WireResponse]],
) -> None:
    client = SendGridAPIClient(
        api_key=sandbox_settings.sendgrid_api_key.get_secret_value(), host=sandbox_url
    )
    # The SDK is synchronous; the stand-in serves from this event loop.
    response = await asyncio.to_thread(
        client.client.mail.send.post,
        request_body=a_mail().get(),
        request_headers={"traceparent": TRACEPARENT},
    )

    assert response.status_code == 202
    assert response.body == b""
    message_id = response.headers["X-Message-Id"]
    assert len(message_id) == 22

    ((request, wire_response),) = wire_log
    openapi = sendgrid_openapi()
    openapi.validate_request(request)
    openapi.validate_response(request, wire_response)

    (record,) = await recorded(sandbox_url)
    assert record["provider"] == "sendgrid"
    assert record["message_id"] == message_id
    assert record["to"] == ["debtor@example.com"]
    assert record["sender"] == "collections@parley.example"
    assert record["subject"] == "Your account"
    assert record["body"] == "Hello"
    assert record["custom_args"] == {"proposal_id": "p-1", "debtor_id": "d-1"}
    assert record["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert record["traceparent"] == TRACEPARENT


async def test_a_wrong_key_gets_401(
    sandbox_url: str, wire_log: list[tuple[WireRequest, WireResponse]]
) -> None:
    client = SendGridAPIClient(api_key="SG.wrong", host=sandbox_url)
    with pytest.raises(UnauthorizedError) as raised:
        await asyncio.to_thread(client.send, a_mail())
    assert raised.value.status_code == 401
    errors = json.loads(raised.value.body)["errors"]
    assert errors[0]["message"]
    ((request, response),) = wire_log
    sendgrid_openapi().validate_response(request, response)
    assert await recorded(sandbox_url) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda body: body.pop("personalizations"), "personalizations"),
        (lambda body: body["personalizations"][0].pop("to"), "personalizations.0.to"),
        (lambda body: body.pop("from"), "from"),
        (lambda body: body["from"].update(email="not-an-address"), "from.email"),
        (lambda body: body.pop("subject"), "subject"),
        (lambda body: body.pop("content"), "content"),
    ],
)
async def test_an_invalid_body_gets_400_naming_the_field(
    sandbox_url: str,
    sandbox_settings: SandboxSettings,
    wire_log: list[tuple[WireRequest, WireResponse]],
    change: Any,
    field: str,
) -> None:
    body = a_mail().get()
    change(body)
    client = SendGridAPIClient(
        api_key=sandbox_settings.sendgrid_api_key.get_secret_value(), host=sandbox_url
    )
    with pytest.raises(BadRequestsError) as raised:
        await asyncio.to_thread(client.send, body)
    (error,) = json.loads(raised.value.body)["errors"]
    assert error["field"] == field
    assert error["message"]
    assert set(error) == {"message", "field"}
    ((request, response),) = wire_log
    sendgrid_openapi().validate_response(request, response)
    assert await recorded(sandbox_url) == []


async def test_messages_can_be_listed_filtered_and_cleared(
    sandbox_url: str, sandbox_settings: SandboxSettings
) -> None:
    client = SendGridAPIClient(
        api_key=sandbox_settings.sendgrid_api_key.get_secret_value(), host=sandbox_url
    )
    twilio_path = f"/2010-04-01/Accounts/{sandbox_settings.twilio_account_sid}/Messages.json"
    twilio_auth = (
        sandbox_settings.twilio_account_sid,
        sandbox_settings.twilio_auth_token.get_secret_value(),
    )
    await asyncio.to_thread(client.send, a_mail())
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        sms = await http.post(
            twilio_path,
            auth=twilio_auth,
            data={"To": "+14155550100", "From": "+15005550006", "Body": "hi"},
        )
        assert sms.status_code == 201
        everything = (await http.get("/_sandbox/messages")).json()
        assert [m["sequence"] for m in everything] == [1, 2]
        only_sms = (await http.get("/_sandbox/messages", params={"provider": "twilio"})).json()
        assert [m["message_id"] for m in only_sms] == [sms.json()["sid"]]
        after = (await http.get("/_sandbox/messages", params={"after": 1})).json()
        assert [m["sequence"] for m in after] == [2]

        assert (await http.delete("/_sandbox/messages")).json() == {"deleted": 2}
        assert (await http.get("/_sandbox/messages")).json() == []
    await asyncio.to_thread(client.send, a_mail())
    # Sequence numbers are never reused, so "after N" stays meaningful across a clear.
    assert [m["sequence"] for m in await recorded(sandbox_url)] == [3]
