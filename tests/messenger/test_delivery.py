"""The messenger against the real broker (Tansu), a real PostgreSQL and the provider
stand-ins on a loopback port, through the real twilio and sendgrid SDKs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from parley_messenger.bootstrap import create_app
from parley_messenger.settings import MessengerSettings, SendGridSettings, TwilioSettings
from parley_sandbox.app import create_app as create_sandbox
from parley_sandbox.settings import SandboxSettings
from parley_shared.clock import SimulatedClock
from parley_shared.events import Channel, ContactDecision, DeliveryReported, Verdict
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.messenger.factories import NOW, SMS_UNSUBSCRIBED, a_decision
from tests.support.apps import running_app, serve_http
from tests.support.kafka import payloads, produce_raw, read_topic, wait_for

# These tests run the messenger without HTTP; its public URL is not reachable.
NO_CALLBACKS = SandboxSettings(twilio_status_callbacks=False)


@dataclass
class Messenger:
    kafka: KafkaSettings
    database_url: str
    sandbox: httpx.AsyncClient
    spans: InMemorySpanExporter

    async def decide(self, *decisions: ContactDecision) -> None:
        topic = Topics.for_prefix(self.kafka.topic_prefix).decisions
        for decision in decisions:
            await produce_raw(
                self.kafka, topic, [decision.model_dump_json().encode()], key=decision.kafka_key()
            )

    async def reports(self, at_least: int, settle: float = 1.0) -> list[DeliveryReported]:
        topic = Topics.for_prefix(self.kafka.topic_prefix).deliveries
        records = await read_topic(self.kafka, topic, at_least=at_least, settle=settle)
        return [DeliveryReported.model_validate(p) for p in payloads(records)]

    async def messages(self) -> list[dict[str, Any]]:
        response = await self.sandbox.get("/_sandbox/messages")
        response.raise_for_status()
        return list(response.json())

    async def sends(self) -> list[dict[str, Any]]:
        engine = create_async_engine(self.database_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(text("SELECT * FROM messenger.sends"))
                return [dict(row._mapping) for row in rows]
        finally:
            await engine.dispose()


def _settings(
    kafka: KafkaSettings, database_url: str, provider_url: str, timeout: float = 10.0
) -> MessengerSettings:
    return MessengerSettings(
        kafka=kafka,
        database_url=database_url,
        twilio=TwilioSettings(base_url=provider_url),
        sendgrid=SendGridSettings(host=provider_url),
        public_base_url="https://parley.example",
        send_timeout_seconds=timeout,
    )


@contextlib.asynccontextmanager
async def messenger_at(
    kafka: KafkaSettings, database_url: str, provider_url: str, timeout: float = 10.0
) -> AsyncIterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    app = create_app(
        _settings(kafka, database_url, provider_url, timeout),
        span_processors=(SimpleSpanProcessor(spans),),
        clock=SimulatedClock(NOW),
    )
    async with running_app(app):
        yield spans


@pytest.fixture
async def messenger(kafka_settings: KafkaSettings, database_url: str) -> AsyncIterator[Messenger]:
    async with (
        serve_http(create_sandbox(NO_CALLBACKS)) as sandbox_url,
        httpx.AsyncClient(base_url=sandbox_url) as sandbox,
        messenger_at(kafka_settings, database_url, sandbox_url) as spans,
    ):
        yield Messenger(kafka_settings, database_url, sandbox, spans)


async def test_an_approved_sms_is_sent_once_and_reported_sent(messenger: Messenger) -> None:
    decision = a_decision(channel=Channel.SMS, lawful_until=NOW + timedelta(minutes=30))
    await messenger.decide(decision)

    (report,) = await messenger.reports(at_least=1)
    (message,) = await messenger.messages()
    assert report.status.value == "sent"
    assert report.provider == "twilio"
    assert report.proposal_id == decision.proposal_id
    assert report.provider_message_id == message["message_id"]
    assert message["to"] == [decision.proposal.address]
    assert message["body"].startswith("Hi Ada Lovelace")
    footer = "We are a debt collector attempting to collect a debt; any information obtained will be used for that purpose. Reply STOP to stop texts to this number."
    # Every SMS ends with the footer and then the debtor's own preference page link.
    assert footer in message["body"]
    assert re.search(r"Your choices: https?://\S+/p/[\w.-]+$", message["body"])
    # The message cannot leave Twilio's queue after the lawful window (30 min, a little
    # less by the time it was sent on the running simulated clock).
    assert 1700 <= message["validity_period"] <= 1800

    (row,) = await messenger.sends()
    assert row["status"] == "sent"
    assert row["provider_message_id"] == message["message_id"]
    assert row["finished_at"] is not None


async def test_an_approved_email_is_sent_with_the_message_id_as_provider_id(
    messenger: Messenger,
) -> None:
    decision = a_decision(channel=Channel.EMAIL, locale="es")
    await messenger.decide(decision)

    (report,) = await messenger.reports(at_least=1)
    (message,) = await messenger.messages()
    assert message["provider"] == "sendgrid"
    assert report.provider == "sendgrid"
    assert report.status.value == "sent"
    assert report.provider_message_id == message["message_id"]
    assert message["to"] == [decision.proposal.address]
    assert message["subject"] == "Sobre su cuenta AB-1234 con Analytical Bank"
    link = message["headers"]["List-Unsubscribe"].removeprefix("<").removesuffix(">")
    assert link.startswith(f"https://parley.example/unsubscribe/{decision.proposal_id}?token=")
    assert link in message["body"]
    assert "cobrador de deudas" in message["body"]
    assert message["headers"] == {
        "List-Unsubscribe": f"<{link}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    assert message["custom_args"] == {
        "proposal_id": str(decision.proposal_id),
        "debtor_id": decision.debtor_id,
    }


async def test_a_decision_published_twice_is_sent_once(messenger: Messenger) -> None:
    decision = a_decision()
    await messenger.decide(decision, decision)
    reports = await messenger.reports(at_least=2, settle=2.0)
    assert len(await messenger.messages()) == 1
    # The second delivery republishes the stored outcome: the same event.
    assert {r.event_id for r in reports} == {reports[0].event_id}
    assert {r.status.value for r in reports} == {"sent"}


async def test_vetoed_and_deferred_decisions_send_nothing(messenger: Messenger) -> None:
    vetoed = a_decision(verdict=Verdict.VETOED)
    deferred = a_decision(verdict=Verdict.DEFERRED, debtor_id=vetoed.debtor_id)
    approved = a_decision(debtor_id=vetoed.debtor_id)
    # Same debtor, same partition: once the approved one is reported, the others were seen.
    await messenger.decide(vetoed, deferred, approved)
    reports = await messenger.reports(at_least=1, settle=2.0)
    assert [r.proposal_id for r in reports] == [approved.proposal_id]
    assert [m["to"] for m in await messenger.messages()] == [[approved.proposal.address]]
    assert [row["proposal_id"] for row in await messenger.sends()] == [approved.proposal_id]


async def test_an_approval_past_its_lawful_window_is_reported_expired_not_sent(
    messenger: Messenger,
) -> None:
    decision = a_decision(lawful_until=NOW - timedelta(seconds=5))
    await messenger.decide(decision)
    (report,) = await messenger.reports(at_least=1)
    assert report.status.value == "expired"
    assert report.provider_message_id is None
    assert await messenger.messages() == []
    (row,) = await messenger.sends()
    assert row["status"] == "expired"


async def test_an_unsubscribed_number_is_reported_failed_with_21610(messenger: Messenger) -> None:
    decision = a_decision(address=SMS_UNSUBSCRIBED)
    await messenger.decide(decision)
    (report,) = await messenger.reports(at_least=1)
    assert (report.status.value, report.error_code) == ("failed", "21610")
    assert await messenger.messages() == []
    (row,) = await messenger.sends()
    assert (row["status"], row["error_code"]) == ("failed", "21610")


async def test_the_provider_call_carries_the_trace(messenger: Messenger) -> None:
    sms = a_decision(channel=Channel.SMS)
    email = a_decision(channel=Channel.EMAIL)
    await messenger.decide(sms, email)
    await messenger.reports(at_least=2)
    rows = {row["proposal_id"]: row for row in await messenger.sends()}
    spans = messenger.spans.get_finished_spans()
    for message in await messenger.messages():
        proposal_id = sms.proposal_id if message["provider"] == "twilio" else email.proposal_id
        traceparent = message["traceparent"]
        assert isinstance(traceparent, str), f"{message['provider']} call carried no trace"
        _, trace_id, parent_id, _ = traceparent.split("-")
        # The trace the decision was handled in, as recorded with the send.
        assert rows[proposal_id]["trace_id"] == trace_id
        (client_span,) = [
            s
            for s in spans
            if s.kind is SpanKind.CLIENT and s.context.span_id == int(parent_id, 16)
        ]
        assert client_span.name == "POST"
        assert client_span.resource.attributes["service.name"] == "parley-messenger"


async def test_a_claim_left_by_a_crash_is_never_sent_and_reported_unknown(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    decision = a_decision()
    async with (
        serve_http(create_sandbox(NO_CALLBACKS)) as sandbox_url,
        httpx.AsyncClient(base_url=sandbox_url) as sandbox,
    ):
        messenger = Messenger(kafka_settings, database_url, sandbox, InMemorySpanExporter())
        async with messenger_at(kafka_settings, database_url, sandbox_url):
            pass  # migrate, then stop: the database now has the ledger
        # What a kill -9 between the claim's commit and the provider's answer leaves behind.
        engine = create_async_engine(database_url)
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO messenger.sends (proposal_id, debtor_id, channel, status,"
                    " provider, claimed_at) VALUES (:p, :d, 'sms', 'claimed', 'twilio', now())"
                ),
                {"p": decision.proposal_id, "d": decision.debtor_id},
            )
        await engine.dispose()

        await messenger.decide(decision)
        async with messenger_at(kafka_settings, database_url, sandbox_url):
            (report,) = await messenger.reports(at_least=1)
        assert report.status.value == "unknown"
        assert await messenger.messages() == []
        (row,) = await messenger.sends()
        assert row["status"] == "unknown"


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.EMAIL])
async def test_a_timeout_after_the_request_left_is_unknown_and_not_resent(
    kafka_settings: KafkaSettings, database_url: str, channel: Channel
) -> None:
    hits: list[str] = []
    slow = FastAPI()

    @slow.post("/2010-04-01/Accounts/{account_sid}/Messages.json")
    @slow.post("/v3/mail/send")
    async def accept_slowly(request: Request) -> Response:
        hits.append(request.url.path)
        await asyncio.sleep(3)  # longer than the messenger waits
        return Response(status_code=201)

    decision = a_decision(channel=channel)
    async with (
        serve_http(slow) as slow_url,
        httpx.AsyncClient(base_url=slow_url) as unused,
        messenger_at(kafka_settings, database_url, slow_url, timeout=0.5),
    ):
        messenger = Messenger(kafka_settings, database_url, unused, InMemorySpanExporter())
        await messenger.decide(decision)
        (report,) = await messenger.reports(at_least=1)
        assert report.status.value == "unknown"
        await messenger.decide(decision)  # a redelivery must not try again
        assert await wait_for(lambda: _reports_at_least(messenger, 2), timeout=30)
    assert len(hits) == 1
    (row,) = await messenger.sends()
    assert row["status"] == "unknown"


async def test_a_malformed_decision_is_dead_lettered_and_the_next_one_delivered(
    messenger: Messenger,
) -> None:
    topics = Topics.for_prefix(messenger.kafka.topic_prefix)
    decision = a_decision()
    broken = decision.model_dump(mode="json") | {"verdict": "maybe"}
    await produce_raw(
        messenger.kafka, topics.decisions, [json.dumps(broken).encode()], key=decision.kafka_key()
    )
    await messenger.decide(decision)
    (report,) = await messenger.reports(at_least=1)
    assert report.status.value == "sent"
    (dead,) = await read_topic(messenger.kafka, topics.dead_letters, at_least=1)
    assert dead.key == decision.kafka_key()
    assert len(await messenger.messages()) == 1


async def _reports_at_least(messenger: Messenger, count: int) -> bool:
    return len(await messenger.reports(at_least=count, settle=0.0)) >= count
