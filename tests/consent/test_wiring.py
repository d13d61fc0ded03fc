"""The Kafka and HTTP wiring with FastStream's TestKafkaBroker and an in-memory store: fast
checks that messages reach the handlers and decisions leave. The same paths are proved
against the real broker and PostgreSQL in test_service.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import KafkaBroker, KafkaMessage, TestKafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from parley_consent.entrypoints.http import build_http_router
from parley_consent.entrypoints.kafka import build_kafka_router
from parley_consent.settings import ConsentSettings
from parley_shared.events import (
    Channel,
    ConsentChanged,
    ContactDecision,
    DeliveryReported,
    DeliveryStatus,
    Verdict,
)
from parley_shared.kafka import DEAD_LETTER_REASON_HEADER, DeadLetters, EventPublisher, build_broker
from parley_shared.metrics import metrics_for
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics

from tests.consent.builders import PHONE, RULES, opt_out, proposal
from tests.consent.fakes import BrokerDecisions, FixedClock, InMemoryConsentStore

NOON_EASTERN = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)
TOPICS = Topics.for_prefix("")


@dataclass
class Wired:
    broker: KafkaBroker
    store: InMemoryConsentStore
    changes: EventPublisher
    decisions: list[tuple[ContactDecision, bytes | None]] = field(default_factory=list)
    dead_letters: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    published_changes: list[str] = field(default_factory=list)


@pytest.fixture
async def wired() -> AsyncIterator[Wired]:
    settings = ConsentSettings(kafka=KafkaSettings())
    broker = build_broker(settings.kafka, TracerProvider(), client_id="test")
    store = InMemoryConsentStore()
    decisions = BrokerDecisions(
        EventPublisher(broker, TOPICS.decisions, ContactDecision, "decisions")
    )
    broker.include_router(
        build_kafka_router(
            settings,
            decisions=decisions,
            repository=store,
            clock=FixedClock(NOON_EASTERN),
            rules=RULES,
            dead_letters=DeadLetters(broker, TOPICS.dead_letters, metrics_for(broker)),
        )
    )
    changes = EventPublisher(broker, TOPICS.consent_changes, ConsentChanged, "changes")
    wiring = Wired(broker=broker, store=store, changes=changes)

    @broker.subscriber(TOPICS.decisions)
    async def collect_decision(decision: ContactDecision, message: KafkaMessage) -> None:
        wiring.decisions.append((decision, message.raw_message.key))

    @broker.subscriber(TOPICS.dead_letters)
    async def collect_dead_letter(body: Any, message: KafkaMessage) -> None:
        wiring.dead_letters.append((body, message.headers))

    @broker.subscriber(TOPICS.consent_changes, group_id="observer")
    async def observe_consent_change(body: dict[str, Any]) -> None:
        wiring.published_changes.append(body["event_id"])

    async with TestKafkaBroker(broker):
        yield wiring


async def test_a_proposal_yields_one_decision_keyed_by_debtor(wired: Wired) -> None:
    reminder = proposal()
    await wired.broker.publish(reminder.model_dump(mode="json"), TOPICS.proposals, key=b"d-1")
    [(decision, key)] = wired.decisions
    assert decision.proposal_id == reminder.proposal_id
    assert decision.verdict is Verdict.APPROVED
    assert key == b"d-1"


async def test_a_consent_change_on_the_topic_is_recorded(wired: Wired) -> None:
    change = opt_out(NOON_EASTERN, address=PHONE)
    await wired.broker.publish(change.model_dump(mode="json"), TOPICS.consent_changes)
    assert list(wired.store.changes) == [change.event_id]


async def test_a_malformed_proposal_is_dead_lettered_with_the_reason(wired: Wired) -> None:
    await wired.broker.publish({"debtor_id": "d-9", "channel": "pigeon"}, TOPICS.proposals)
    await wired.broker.publish(b"{not json", TOPICS.proposals)
    assert wired.decisions == []
    assert len(wired.dead_letters) == 2
    reasons = [headers[DEAD_LETTER_REASON_HEADER] for _, headers in wired.dead_letters]
    assert "channel" in reasons[0]
    assert "proposal_id" in reasons[0]

    await wired.broker.publish(proposal().model_dump(mode="json"), TOPICS.proposals)
    assert len(wired.decisions) == 1


def _http_app(wired: Wired) -> FastAPI:
    app = FastAPI()
    app.include_router(
        build_http_router(
            consent_changes=wired.changes,
            repository=wired.store,
            rules=RULES,
            clock=FixedClock(NOON_EASTERN),
        )
    )
    return app


async def test_posting_a_consent_change_stores_and_publishes_it(wired: Wired) -> None:
    change = opt_out(NOON_EASTERN, address=PHONE)
    body = json.loads(change.model_dump_json())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(_http_app(wired)), base_url="http://consent"
    ) as client:
        created = await client.post("/v1/consent-changes", json=body)
        repeated = await client.post("/v1/consent-changes", json=body)
    assert created.status_code == 201
    assert repeated.status_code == 200
    assert created.json() == repeated.json() == body
    assert list(wired.store.changes) == [change.event_id]
    # Published both times: a retry after a failed publish must still deliver it.
    assert wired.published_changes == [str(change.event_id)] * 2


async def test_an_invalid_consent_change_is_refused_naming_the_field(wired: Wired) -> None:
    body = json.loads(opt_out(NOON_EASTERN).model_dump_json())
    body["kind"] = "maybe"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(_http_app(wired)), base_url="http://consent"
    ) as client:
        response = await client.post("/v1/consent-changes", json=body)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "kind"]]
    assert wired.store.changes == {}


async def test_a_stored_decision_can_be_read_back(wired: Wired) -> None:
    reminder = proposal()
    await wired.broker.publish(reminder.model_dump(mode="json"), TOPICS.proposals)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(_http_app(wired)), base_url="http://consent"
    ) as client:
        found = await client.get(f"/v1/decisions/{reminder.proposal_id}")
        missing = await client.get("/v1/decisions/00000000-0000-0000-0000-000000000000")
    assert found.status_code == 200
    assert ContactDecision.model_validate(found.json()["decision"]) == wired.decisions[0][0]
    assert missing.status_code == 404


async def test_a_delivery_report_seen_twice_counts_one_contact(wired: Wired) -> None:
    reminder = proposal()
    sent = DeliveryReported(
        debtor_id=reminder.debtor_id,
        proposal_id=reminder.proposal_id,
        channel=Channel.SMS,
        status=DeliveryStatus.SENT,
        provider="twilio",
    )
    delivered = sent.model_copy(update={"status": DeliveryStatus.DELIVERED})
    for report in (sent, sent, delivered):
        await wired.broker.publish(report.model_dump(mode="json"), TOPICS.deliveries)
    history = await wired.store.load_history(reminder.debtor_id, NOON_EASTERN)
    assert [contact.proposal_id for contact in history] == [reminder.proposal_id]


async def test_a_hold_without_its_kind_is_refused_naming_the_field(wired: Wired) -> None:
    body = json.loads(opt_out(NOON_EASTERN).model_dump_json())
    body["kind"] = "hold"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(_http_app(wired)), base_url="http://consent"
    ) as client:
        response = await client.post("/v1/consent-changes", json=body)
    assert response.status_code == 422
    assert "hold_kind is required" in response.text
    assert wired.store.changes == {}


async def test_a_hold_without_its_kind_on_the_topic_is_dead_lettered(wired: Wired) -> None:
    body = json.loads(opt_out(NOON_EASTERN).model_dump_json())
    body["kind"] = "hold"
    await wired.broker.publish(body, TOPICS.consent_changes)
    assert wired.store.changes == {}
    [(_, headers)] = wired.dead_letters
    assert "hold_kind is required" in headers[DEAD_LETTER_REASON_HEADER]
