"""The messenger served over HTTP next to the provider stand-ins, each knowing the other's
URL: the stand-ins call back (signed status callbacks, Event Webhook posts, inbound SMS)
exactly as the providers would, and the messenger answers them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from parley_cli.local.ports import free_port
from parley_messenger.bootstrap import create_app
from parley_messenger.settings import MessengerSettings, SendGridSettings, TwilioSettings
from parley_sandbox.app import create_app as create_sandbox
from parley_sandbox.settings import SandboxSettings
from parley_shared.clock import SimulatedClock
from parley_shared.events import ConsentChanged, ContactDecision, DeliveryReported
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.messenger.factories import NOW
from tests.support.apps import serve_http
from tests.support.kafka import payloads, produce_raw, read_topic


@dataclass(frozen=True)
class EventWebhookKeys:
    private_pem: str
    public_b64: str  # base64 DER, the form SendGrid shows in its settings


@pytest.fixture(scope="session")
def event_webhook_keys() -> EventWebhookKeys:
    """A fresh P-256 key pair: the stand-in signs with one half, the messenger checks with
    the other."""
    private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return EventWebhookKeys(private_pem, base64.b64encode(public_der).decode())


@dataclass
class Stack:
    kafka: KafkaSettings
    database_url: str
    messenger_url: str
    sandbox: httpx.AsyncClient
    messenger: httpx.AsyncClient
    keys: EventWebhookKeys
    settings: MessengerSettings
    topics: Topics = field(init=False)

    def __post_init__(self) -> None:
        self.topics = Topics.for_prefix(self.kafka.topic_prefix)

    async def decide(self, *decisions: ContactDecision) -> None:
        for decision in decisions:
            await produce_raw(
                self.kafka,
                self.topics.decisions,
                [decision.model_dump_json().encode()],
                key=decision.kafka_key(),
            )

    async def publish_consent(self, change: ConsentChanged) -> None:
        await produce_raw(
            self.kafka,
            self.topics.consent_changes,
            [change.model_dump_json().encode()],
            key=change.kafka_key(),
        )

    async def reports(
        self, at_least: int, settle: float = 0.5, timeout: float = 30.0
    ) -> list[DeliveryReported]:
        records = await read_topic(
            self.kafka, self.topics.deliveries, at_least=at_least, settle=settle, timeout=timeout
        )
        return [DeliveryReported.model_validate(p) for p in payloads(records)]

    async def consent_changes(self, at_least: int, settle: float = 0.5) -> list[ConsentChanged]:
        records = await read_topic(
            self.kafka, self.topics.consent_changes, at_least=at_least, settle=settle
        )
        return [ConsentChanged.model_validate(p) for p in payloads(records)]

    async def report_of(self, proposal_id: uuid.UUID, status: str) -> DeliveryReported:
        """Wait for the report of one proposal with one status."""
        for _ in range(60):
            for report in await self.reports(at_least=1, settle=0.0, timeout=1.0):
                if report.proposal_id == proposal_id and report.status.value == status:
                    return report
            await asyncio.sleep(0.5)
        raise AssertionError(f"no {status} report for {proposal_id}")

    async def messages(self, provider: str | None = None) -> list[dict[str, Any]]:
        params = {"provider": provider} if provider else {}
        response = await self.sandbox.get("/_sandbox/messages", params=params)
        response.raise_for_status()
        return list(response.json())

    async def fault(
        self, provider: str, kind: str, *, times: int = 1, delay_seconds: float = 0.0
    ) -> None:
        response = await self.sandbox.post(
            "/_sandbox/faults",
            json={
                "provider": provider,
                "kind": kind,
                "times": times,
                "delay_seconds": delay_seconds,
            },
        )
        response.raise_for_status()

    async def text_in(self, sender: str, body: str) -> dict[str, Any]:
        """A debtor texts our number; returns the messenger's status and TwiML replies."""
        response = await self.sandbox.post(
            "/_sandbox/twilio/inbound", json={"from": sender, "body": body}
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        engine = create_async_engine(self.database_url)
        try:
            async with engine.connect() as connection:
                result = await connection.execute(text(sql), params)
                return [dict(row._mapping) for row in result]
        finally:
            await engine.dispose()


def messenger_settings(
    kafka: KafkaSettings,
    database_url: str,
    *,
    public_base_url: str,
    provider_url: str,
    keys: EventWebhookKeys,
    **overrides: Any,
) -> MessengerSettings:
    values: dict[str, Any] = {
        "kafka": kafka,
        "database_url": database_url,
        "twilio": TwilioSettings(base_url=provider_url),
        "sendgrid": SendGridSettings(host=provider_url, event_webhook_public_key=keys.public_b64),
        "public_base_url": public_base_url,
        "send_timeout_seconds": 5.0,
        "retry_base_delay_seconds": 0.05,
        "retry_max_delay_seconds": 0.2,
    }
    return MessengerSettings(**(values | overrides))


@contextlib.asynccontextmanager
async def running_stack(
    kafka: KafkaSettings,
    database_url: str,
    keys: EventWebhookKeys,
    *,
    provider_url: str | None = None,
    **overrides: Any,
) -> AsyncIterator[Stack]:
    messenger_port, sandbox_port = free_port(), free_port()
    messenger_url = f"http://127.0.0.1:{messenger_port}"
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    sandbox = create_sandbox(
        SandboxSettings(
            twilio_inbound_url=f"{messenger_url}/webhooks/twilio/inbound",
            sendgrid_event_webhook_url=f"{messenger_url}/webhooks/sendgrid/events",
            sendgrid_event_private_key=keys.private_pem,
            callback_delay_seconds=0.02,
        )
    )
    settings = messenger_settings(
        kafka,
        database_url,
        public_base_url=messenger_url,
        provider_url=provider_url or sandbox_url,
        keys=keys,
        **overrides,
    )
    app = create_app(settings, clock=SimulatedClock(NOW))
    async with (
        serve_http(sandbox, sandbox_port),
        serve_http(app, messenger_port),
        httpx.AsyncClient(base_url=sandbox_url, timeout=30) as sandbox_client,
        httpx.AsyncClient(base_url=messenger_url, timeout=30) as messenger_client,
    ):
        yield Stack(
            kafka, database_url, messenger_url, sandbox_client, messenger_client, keys, settings
        )


@pytest.fixture
async def stack(
    kafka_settings: KafkaSettings, database_url: str, event_webhook_keys: EventWebhookKeys
) -> AsyncIterator[Stack]:
    async with running_stack(kafka_settings, database_url, event_webhook_keys) as running:
        yield running
