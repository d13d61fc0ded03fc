"""The stand-ins' misbehaviour on request, and their signed callbacks, checked with the
providers' own SDKs (RequestValidator, EventWebhook) and SendGrid's published spec."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI, Request, Response
from parley_sandbox.app import create_app
from parley_sandbox.settings import SandboxSettings
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.request_validator import RequestValidator

from tests.sandbox.contract import WireRequest, WireResponse, sendgrid_openapi, twilio_openapi
from tests.support.apps import serve_http

SENDER = "+15005550006"
SID = "AC00000000000000000000000000000001"
TWILIO_PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
TWILIO_AUTH = (SID, "sandbox-auth-token")
SENDGRID_AUTH = {"Authorization": "Bearer SG.sandbox-api-key"}


def a_mail(to: str = "debtor@example.com") -> dict[str, Any]:
    return {
        "personalizations": [{"to": [{"email": to}], "custom_args": {"proposal_id": "p-1"}}],
        "from": {"email": "collections@parley.example"},
        "subject": "Your account",
        "content": [{"type": "text/plain", "value": "Hello"}],
    }


class Receiver:
    """Stands in for the messenger's webhooks: records what the sandbox posts."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.app = FastAPI()

        @self.app.post("/{path:path}")
        async def receive(path: str, request: Request) -> Response:
            self.posts.append((str(request.url), dict(request.headers), await request.body()))
            return Response(
                '<?xml version="1.0" encoding="UTF-8"?><Response><Message>ok</Message></Response>',
                media_type="application/xml",
            )

    async def wait_for(self, count: int) -> None:
        for _ in range(100):
            if len(self.posts) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"expected {count} callbacks, got {len(self.posts)}")


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver()
    async with serve_http(receiver.app) as url:
        yield receiver, url


def key_pair() -> tuple[str, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, base64.b64encode(der).decode()


async def test_faults_are_used_up_in_order(sandbox_url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url, auth=TWILIO_AUTH) as http:
        await http.post("/_sandbox/faults", json={"provider": "twilio", "kind": "rate_limit"})
        pending = await http.post(
            "/_sandbox/faults", json={"provider": "twilio", "kind": "server_error", "times": 2}
        )
        assert pending.json() == {"twilio": 3, "sendgrid": 0}
        form = {"To": "+14155550100", "From": SENDER, "Body": "hi"}
        answers = [await http.post(TWILIO_PATH, data=form) for _ in range(4)]
        assert [a.status_code for a in answers] == [429, 500, 500, 201]
        assert [a.json().get("code") for a in answers[:3]] == [20429, 20500, 20500]
        # Each refused request was still a valid CreateMessage request.
        request = WireRequest(
            "POST",
            f"{sandbox_url}{TWILIO_PATH}",
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": "Basic "
                + base64.b64encode(":".join(TWILIO_AUTH).encode()).decode(),
            },
            str(httpx.QueryParams(form)).encode(),
        )
        twilio_openapi().validate_request(request)
        messages = (await http.get("/_sandbox/messages")).json()
        assert len(messages) == 1  # refused requests leave nothing behind


@pytest.mark.parametrize(("kind", "status"), [("server_error", 500), ("rate_limit", 429)])
async def test_sendgrid_faults_answer_like_sendgrid(
    sandbox_url: str, kind: str, status: int
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url, headers=SENDGRID_AUTH) as http:
        await http.post("/_sandbox/faults", json={"provider": "sendgrid", "kind": kind})
        body = json.dumps(a_mail()).encode()
        answer = await http.post(
            "/v3/mail/send", content=body, headers={"Content-Type": "application/json"}
        )
    assert answer.status_code == status
    assert answer.json()["errors"][0]["message"]
    request = WireRequest(
        "POST",
        f"{sandbox_url}/v3/mail/send",
        {"Content-Type": "application/json", **SENDGRID_AUTH},
        body,
    )
    openapi = sendgrid_openapi()
    openapi.validate_request(request)
    if status == 500:  # the only error status of these two that the document declares
        openapi.validate_response(
            request, WireResponse(answer.status_code, dict(answer.headers), answer.content)
        )
    else:
        assert answer.headers["Retry-After"] == "1"


async def test_a_timeout_fault_accepts_the_message_but_answers_too_late(
    sandbox_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url, auth=TWILIO_AUTH) as http:
        await http.post(
            "/_sandbox/faults",
            json={"provider": "twilio", "kind": "timeout", "delay_seconds": 1.0},
        )
        with pytest.raises(httpx.ReadTimeout):
            await http.post(
                TWILIO_PATH,
                data={"To": "+14155550100", "From": SENDER, "Body": "hi"},
                timeout=0.3,
            )
        assert len((await http.get("/_sandbox/messages")).json()) == 1


async def test_status_callbacks_are_signed_like_twilio(receiver: tuple[Receiver, str]) -> None:
    inbox, receiver_url = receiver
    async with (
        serve_http(create_app(SandboxSettings(callback_delay_seconds=0.01))) as url,
        httpx.AsyncClient(base_url=url, auth=TWILIO_AUTH) as http,
    ):
        callback = f"{receiver_url}/webhooks/twilio/status?proposal_id=p-1"
        for to in ("+14155550100", "+15005550030"):
            answer = await http.post(
                TWILIO_PATH,
                data={"To": to, "From": SENDER, "Body": "hi", "StatusCallback": callback},
            )
            assert answer.status_code == 201
        await inbox.wait_for(4)
    validator = RequestValidator("sandbox-auth-token")
    statuses = []
    for posted_url, headers, body in inbox.posts:
        form = dict(httpx.QueryParams(body.decode()))
        assert posted_url == callback
        assert validator.validate(posted_url, form, headers["x-twilio-signature"])
        statuses.append((form["To"], form["MessageStatus"], form.get("ErrorCode")))
    assert sorted(statuses) == sorted(
        [
            ("+14155550100", "sent", None),
            ("+14155550100", "delivered", None),
            ("+15005550030", "sent", None),
            ("+15005550030", "undelivered", "30007"),
        ]
    )


async def test_event_webhook_posts_verify_with_sendgrids_helper(
    receiver: tuple[Receiver, str],
) -> None:
    inbox, receiver_url = receiver
    private_pem, public_b64 = key_pair()
    settings = SandboxSettings(
        sendgrid_event_webhook_url=f"{receiver_url}/webhooks/sendgrid/events",
        sendgrid_event_private_key=private_pem,
        callback_delay_seconds=0.01,
    )
    async with (
        serve_http(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, headers=SENDGRID_AUTH) as http,
    ):
        answer = await http.post("/v3/mail/send", json=a_mail("bounce@example.com"))
        message_id = answer.headers["X-Message-Id"]
        await inbox.wait_for(1)
    ((_, headers, body),) = inbox.posts
    timestamp = headers["x-twilio-email-event-webhook-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    assert EventWebhook(public_b64).verify_signature(
        body.decode(), headers["x-twilio-email-event-webhook-signature"], timestamp
    )
    events = json.loads(body)
    assert [e["event"] for e in events] == ["processed", "bounce"]
    assert {e["sg_message_id"].split(".")[0] for e in events} == {message_id}
    assert {e["proposal_id"] for e in events} == {"p-1"}  # custom args flattened in


async def test_an_inbound_text_is_posted_signed_and_the_reply_read_back(
    receiver: tuple[Receiver, str],
) -> None:
    inbox, receiver_url = receiver
    inbound_url = f"{receiver_url}/webhooks/twilio/inbound"
    async with (
        serve_http(create_app(SandboxSettings(twilio_inbound_url=inbound_url))) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        answer = await http.post(
            "/_sandbox/twilio/inbound", json={"from": "+14155550100", "body": "STOP"}
        )
    assert answer.json()["status"] == 200
    assert answer.json()["replies"] == ["ok"]
    ((posted_url, headers, body),) = inbox.posts
    form = dict(httpx.QueryParams(body.decode()))
    assert (form["From"], form["Body"], form["SmsStatus"]) == ("+14155550100", "STOP", "received")
    assert RequestValidator("sandbox-auth-token").validate(
        posted_url, form, headers["x-twilio-signature"]
    )


async def test_inbound_needs_a_target(sandbox_url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        answer = await http.post("/_sandbox/twilio/inbound", json={"from": "+1", "body": "x"})
    assert answer.status_code == 409
