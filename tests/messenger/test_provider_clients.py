"""The provider adapters on their own: every answer and transport failure maps to an
outcome, and only a request that certainly never left is reported ``failed``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Response
from opentelemetry.sdk.trace import TracerProvider
from parley_cli.local.ports import free_port
from parley_messenger.adapters.sendgrid_client import SendGridSender, build_mail
from parley_messenger.adapters.twilio_client import TwilioSender
from parley_messenger.domain.model import OutboundMessage, SendStatus
from parley_messenger.settings import SendGridSettings, TwilioSettings
from parley_sandbox.app import create_app as create_sandbox
from parley_sandbox.settings import SandboxSettings
from parley_shared.events import Channel

from tests.messenger.factories import EMAIL_OK, SMS_OK, SMS_UNSUBSCRIBED
from tests.support.apps import serve_http

Sender = TwilioSender | SendGridSender


def sms(to: str = SMS_OK) -> OutboundMessage:
    return OutboundMessage(
        proposal_id=uuid.uuid4(),
        debtor_id="d-1",
        channel=Channel.SMS,
        to=to,
        body="Hello",
        validity_period=60,
    )


def email(to: str = EMAIL_OK) -> OutboundMessage:
    return OutboundMessage(
        proposal_id=uuid.uuid4(),
        debtor_id="d-1",
        channel=Channel.EMAIL,
        to=to,
        subject="Subject",
        body="Hello",
        custom_args={"proposal_id": "p-1"},
    )


def senders(base_url: str, timeout: float = 5.0) -> tuple[TwilioSender, SendGridSender]:
    provider = TracerProvider()
    return (
        TwilioSender(TwilioSettings(base_url=base_url), provider, timeout=timeout),
        SendGridSender(SendGridSettings(host=base_url), provider, timeout=timeout),
    )


@pytest.fixture
async def sandbox_url() -> AsyncIterator[str]:
    async with serve_http(create_sandbox(SandboxSettings())) as url:
        yield url


async def test_accepted_messages_come_back_with_the_providers_ids(sandbox_url: str) -> None:
    twilio, sendgrid = senders(sandbox_url)
    try:
        sent_sms = await twilio.send(sms())
        sent_email = await sendgrid.send(email())
    finally:
        await twilio.close()
        await sendgrid.close()
    assert sent_sms.status is SendStatus.SENT
    assert sent_sms.provider_message_id is not None
    assert sent_sms.provider_message_id.startswith("SM")
    assert sent_email.status is SendStatus.SENT
    assert sent_email.provider_message_id is not None
    assert len(sent_email.provider_message_id) == 22


async def test_refusals_are_failures_with_the_providers_codes(sandbox_url: str) -> None:
    twilio, sendgrid = senders(sandbox_url)
    try:
        refused_sms = await twilio.send(sms(SMS_UNSUBSCRIBED))
        refused_email = await sendgrid.send(email("debtor@localhost"))
        unusable_email = await sendgrid.send(email("not-an-address"))
    finally:
        await twilio.close()
        await sendgrid.close()
    assert (refused_sms.status, refused_sms.error_code) == (SendStatus.FAILED, "21610")
    assert (refused_email.status, refused_email.error_code) == (SendStatus.FAILED, "400")
    assert (unusable_email.status, unusable_email.error_code) == (
        SendStatus.FAILED,
        "invalid-address",
    )
    for outcome in (refused_email, unusable_email):
        assert "localhost" not in (outcome.detail or "")
        assert "not-an-address" not in (outcome.detail or "")


async def test_wrong_credentials_are_failures() -> None:
    async with serve_http(
        create_sandbox(SandboxSettings(twilio_auth_token="other", sendgrid_api_key="other"))
    ) as url:
        twilio, sendgrid = senders(url)
        try:
            assert (await twilio.send(sms())).error_code == "20003"
            assert (await sendgrid.send(email())).error_code == "401"
        finally:
            await twilio.close()
            await sendgrid.close()


async def test_an_unreachable_provider_is_a_failure_the_message_never_left() -> None:
    twilio, sendgrid = senders(f"http://127.0.0.1:{free_port()}")
    try:
        outcomes = [await twilio.send(sms()), await sendgrid.send(email())]
    finally:
        await twilio.close()
        await sendgrid.close()
    # Nothing was listening, so nothing was accepted: worth another try.
    assert [(o.status, o.error_code, o.retryable) for o in outcomes] == [
        (SendStatus.FAILED, "connect-error", True),
        (SendStatus.FAILED, "connect-error", True),
    ]


async def test_a_server_error_is_a_refusal_worth_retrying() -> None:
    broken = FastAPI()

    @broken.post("/2010-04-01/Accounts/{account_sid}/Messages.json")
    @broken.post("/v3/mail/send")
    async def fail() -> Response:
        return Response(
            '{"code": 20500, "message": "Internal Server Error", "status": 500}',
            status_code=500,
            media_type="application/json",
        )

    async with serve_http(broken) as url:
        twilio, sendgrid = senders(url)
        try:
            outcomes = [await twilio.send(sms()), await sendgrid.send(email())]
        finally:
            await twilio.close()
            await sendgrid.close()
    # Providers answer 5xx before queuing anything: nothing was accepted.
    assert [(o.status, o.error_code, o.retryable) for o in outcomes] == [
        (SendStatus.FAILED, "20500", True),
        (SendStatus.FAILED, "500", True),
    ]


@pytest.mark.parametrize(
    ("kind", "twilio_code", "sendgrid_code"),
    [("rate_limit", "20429", "429"), ("unavailable", "20503", "503")],
)
async def test_the_stand_ins_faults_are_refusals_worth_retrying(
    sandbox_url: str, kind: str, twilio_code: str, sendgrid_code: str
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        for provider in ("twilio", "sendgrid"):
            await http.post("/_sandbox/faults", json={"provider": provider, "kind": kind})
    twilio, sendgrid = senders(sandbox_url)
    try:
        refused = [await twilio.send(sms()), await sendgrid.send(email())]
        accepted = [await twilio.send(sms()), await sendgrid.send(email())]
    finally:
        await twilio.close()
        await sendgrid.close()
    assert [(o.status, o.error_code, o.retryable) for o in refused] == [
        (SendStatus.FAILED, twilio_code, True),
        (SendStatus.FAILED, sendgrid_code, True),
    ]
    if kind == "rate_limit":
        assert refused[1].retry_after == 1.0  # SendGrid's Retry-After is honoured
    assert [o.status for o in accepted] == [SendStatus.SENT, SendStatus.SENT]


async def test_an_answer_too_late_is_unknown_though_the_provider_took_it(
    sandbox_url: str,
) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        for provider in ("twilio", "sendgrid"):
            await http.post(
                "/_sandbox/faults",
                json={"provider": provider, "kind": "timeout", "delay_seconds": 2},
            )
        twilio, sendgrid = senders(sandbox_url, timeout=0.5)
        try:
            outcomes = [await twilio.send(sms()), await sendgrid.send(email())]
        finally:
            await twilio.close()
            await sendgrid.close()
        accepted = (await http.get("/_sandbox/messages")).json()
    assert [(o.status, o.retryable) for o in outcomes] == [
        (SendStatus.UNKNOWN, False),
        (SendStatus.UNKNOWN, False),
    ]
    assert len(accepted) == 2  # which is why "unknown" must never be resent


async def test_a_slow_answer_within_the_timeout_is_a_send(sandbox_url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        await http.post(
            "/_sandbox/faults", json={"provider": "twilio", "kind": "slow", "delay_seconds": 0.5}
        )
    twilio, sendgrid = senders(sandbox_url, timeout=5)
    try:
        outcome = await twilio.send(sms())
    finally:
        await twilio.close()
        await sendgrid.close()
    assert outcome.status is SendStatus.SENT


def test_the_mail_body_puts_custom_args_on_the_personalization() -> None:
    body = build_mail(email(), "collections@parley.example", "Parley").get()
    assert body["personalizations"] == [
        {"to": [{"email": EMAIL_OK}], "custom_args": {"proposal_id": "p-1"}}
    ]
    assert "custom_args" not in body  # the spec mistypes the top-level field
    assert body["from"] == {"email": "collections@parley.example", "name": "Parley"}
    assert body["content"] == [{"type": "text/plain", "value": "Hello"}]
