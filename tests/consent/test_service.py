"""The consent service against the real broker (Tansu) and a real PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from parley_consent.adapters.database import ConsentRepository
from parley_consent.bootstrap import create_app
from parley_consent.domain import default_rule_set
from parley_consent.settings import ConsentSettings
from parley_shared.events import (
    Channel,
    ConsentSource,
    ContactDecision,
    DeliveryReported,
    DeliveryStatus,
    ReminderProposed,
    Verdict,
)
from parley_shared.kafka import DEAD_LETTER_REASON_HEADER, DEAD_LETTER_SOURCE_HEADER
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.consent.builders import PHONE, opt_out, proposal
from tests.consent.fakes import FixedClock
from tests.support.apps import running_app
from tests.support.kafka import payloads, produce_raw, read_topic, wait_for

# 16:00Z is 12:00 in New York and 11:00 in Chicago: inside every lawful window used here.
NOON_EASTERN = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)


def _settings(kafka_settings: KafkaSettings, database_url: str) -> ConsentSettings:
    return ConsentSettings(kafka=kafka_settings, database_url=database_url)


async def _propose(kafka_settings: KafkaSettings, *reminders: ReminderProposed) -> None:
    topic = Topics.for_prefix(kafka_settings.topic_prefix).proposals
    for reminder in reminders:
        await produce_raw(
            kafka_settings, topic, [reminder.model_dump_json().encode()], key=reminder.kafka_key()
        )


async def _decisions(
    kafka_settings: KafkaSettings, at_least: int, settle: float = 0.0
) -> list[ContactDecision]:
    topic = Topics.for_prefix(kafka_settings.topic_prefix).decisions
    records = await read_topic(kafka_settings, topic, at_least=at_least, settle=settle)
    return [ContactDecision.model_validate(payload) for payload in payloads(records)]


async def _scalar(database_url: str, query: str) -> object:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(text(query))).scalar_one()
    finally:
        await engine.dispose()


@pytest.fixture
def settings(kafka_settings: KafkaSettings, database_url: str) -> ConsentSettings:
    return _settings(kafka_settings, database_url)


@pytest.fixture
async def client(settings: ConsentSettings) -> AsyncIterator[httpx.AsyncClient]:
    """A consent service running at noon Eastern, with an HTTP client bound to it."""
    app = create_app(settings, clock=FixedClock(NOON_EASTERN))
    async with (
        running_app(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://consent") as http,
    ):
        yield http


async def test_a_proposal_yields_one_decision_and_one_stored_row(
    kafka_settings: KafkaSettings, database_url: str, client: httpx.AsyncClient
) -> None:
    reminder = proposal()
    await _propose(kafka_settings, reminder)

    topic = Topics.for_prefix(kafka_settings.topic_prefix).decisions
    records = await read_topic(kafka_settings, topic, at_least=1, settle=1.0)
    assert len(records) == 1
    assert records[0].key == b"d-1"
    decision = ContactDecision.model_validate(json.loads(records[0].value))
    assert decision.proposal == reminder
    assert decision.verdict is Verdict.APPROVED
    assert decision.rule_set_version == default_rule_set().version
    assert await _scalar(database_url, "SELECT count(*) FROM consent.decisions") == 1

    # The stored decision carries the trace the decision was published in.
    traceparent = dict(records[0].headers)["traceparent"].decode()
    stored = (await client.get(f"/v1/decisions/{reminder.proposal_id}")).json()
    assert stored["trace_id"] == traceparent.split("-")[1]
    assert ContactDecision.model_validate(stored["decision"]) == decision


async def test_a_redelivered_proposal_yields_the_identical_decision_and_one_row(
    kafka_settings: KafkaSettings, database_url: str, client: httpx.AsyncClient
) -> None:
    reminder = proposal()
    await _propose(kafka_settings, reminder, reminder)

    first, second = await _decisions(kafka_settings, at_least=2, settle=1.0)
    assert first == second
    assert first.event_id == second.event_id
    assert await _scalar(database_url, "SELECT count(*) FROM consent.decisions") == 1


async def test_a_proposal_redelivered_after_a_restart_gets_the_stored_decision(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    settings = _settings(kafka_settings, database_url)
    reminder = proposal()
    async with running_app(create_app(settings, clock=FixedClock(NOON_EASTERN))):
        await _propose(kafka_settings, reminder)
        [before] = await _decisions(kafka_settings, at_least=1)

    # Hours later, outside the window: a re-decision would defer, the stored one approves.
    ten_at_night_eastern = datetime(2026, 6, 11, 2, 0, tzinfo=UTC)
    async with running_app(create_app(settings, clock=FixedClock(ten_at_night_eastern))):
        await _propose(kafka_settings, reminder)
        decisions = await _decisions(kafka_settings, at_least=2, settle=1.0)

    assert decisions == [before, before]
    assert before.verdict is Verdict.APPROVED
    assert await _scalar(database_url, "SELECT count(*) FROM consent.decisions") == 1


async def test_an_address_opted_out_over_http_is_vetoed_for_every_debtor(
    kafka_settings: KafkaSettings, database_url: str, client: httpx.AsyncClient
) -> None:
    change = opt_out(NOON_EASTERN, debtor_id="d-1", channel=Channel.SMS, address=PHONE)
    body = json.loads(change.model_dump_json())
    body["source"] = ConsentSource.SMS_REPLY.value

    created = await client.post("/v1/consent-changes", json=body)
    assert created.status_code == 201
    repeated = await client.post("/v1/consent-changes", json=body)
    assert repeated.status_code == 200
    assert repeated.json() == created.json()
    assert await _scalar(database_url, "SELECT count(*) FROM consent.consent_changes") == 1

    await _propose(kafka_settings, proposal(debtor_id="d-2", address=PHONE))
    [decision] = await _decisions(kafka_settings, at_least=1)
    assert decision.verdict is Verdict.VETOED
    assert [reason.rule_id for reason in decision.reasons] == ["US-F-MEDIUM"]
    assert PHONE not in decision.reasons[0].explanation

    changes_topic = Topics.for_prefix(kafka_settings.topic_prefix).consent_changes
    published = await read_topic(kafka_settings, changes_topic, at_least=2)
    assert {record.key for record in published} == {b"d-1"}
    assert {payload["event_id"] for payload in payloads(published)} == {str(change.event_id)}


async def test_an_opt_out_published_on_the_consent_topic_is_applied(
    kafka_settings: KafkaSettings, database_url: str, client: httpx.AsyncClient
) -> None:
    # E.g. the messenger relaying a STOP reply: it arrives over Kafka, not HTTP.
    change = opt_out(NOON_EASTERN, debtor_id="d-1", channel=Channel.SMS)
    topic = Topics.for_prefix(kafka_settings.topic_prefix).consent_changes
    await produce_raw(
        kafka_settings, topic, [change.model_dump_json().encode()] * 2, key=change.kafka_key()
    )

    async def recorded() -> bool:
        count = await _scalar(database_url, "SELECT count(*) FROM consent.consent_changes")
        return count == 1

    assert await wait_for(recorded)
    await _propose(kafka_settings, proposal(debtor_id="d-1"))
    [decision] = await _decisions(kafka_settings, at_least=1)
    assert decision.verdict is Verdict.VETOED
    assert decision.reasons[0].explanation.startswith("The debtor opted out of sms contact")


async def test_an_invalid_consent_change_is_refused_and_nothing_is_stored(
    database_url: str, client: httpx.AsyncClient
) -> None:
    body = json.loads(opt_out(NOON_EASTERN).model_dump_json())
    del body["evidence"]
    response = await client.post("/v1/consent-changes", json=body)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "evidence"]]
    assert await _scalar(database_url, "SELECT count(*) FROM consent.consent_changes") == 0


async def test_a_debtor_at_ten_at_night_is_deferred_to_eight_next_local_morning(
    kafka_settings: KafkaSettings, settings: ConsentSettings
) -> None:
    chicago = ZoneInfo("America/Chicago")
    ten_at_night = datetime(2026, 6, 10, 22, 0, tzinfo=chicago)
    async with running_app(create_app(settings, clock=FixedClock(ten_at_night))):
        await _propose(kafka_settings, proposal(time_zone="America/Chicago"))
        [decision] = await _decisions(kafka_settings, at_least=1)
    assert decision.verdict is Verdict.DEFERRED
    assert decision.defer_until == datetime(2026, 6, 11, 8, 0, tzinfo=chicago)
    assert [reason.rule_id for reason in decision.reasons] == ["US-F-TIME"]


async def test_a_malformed_proposal_is_dead_lettered_and_deciding_goes_on(
    kafka_settings: KafkaSettings, client: httpx.AsyncClient
) -> None:
    topics = Topics.for_prefix(kafka_settings.topic_prefix)
    broken = proposal().model_dump(mode="json")
    del broken["proposal_id"]
    await produce_raw(kafka_settings, topics.proposals, [json.dumps(broken).encode()], key=b"d-1")
    await produce_raw(kafka_settings, topics.proposals, [b"\xff not json"], key=b"d-1")
    after = proposal()
    await _propose(kafka_settings, after)

    [decision] = await _decisions(kafka_settings, at_least=1, settle=1.0)
    assert decision.proposal_id == after.proposal_id

    dead = await read_topic(kafka_settings, topics.dead_letters, at_least=2)
    headers = [dict(record.headers) for record in dead]
    reasons = sorted(header[DEAD_LETTER_REASON_HEADER].decode() for header in headers)
    assert any("proposal_id" in reason for reason in reasons), reasons
    assert len(reasons) == 2
    assert {header[DEAD_LETTER_SOURCE_HEADER].decode() for header in headers} == {topics.proposals}


async def test_each_decision_of_a_batch_continues_its_own_reminders_trace(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    reminders = [proposal(debtor_id=f"d-{number}") for number in range(5)]
    trace_ids = {
        reminder.proposal_id: f"{number + 1:032x}" for number, reminder in enumerate(reminders)
    }
    topics = Topics.for_prefix(kafka_settings.topic_prefix)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for reminder in reminders:
            traceparent = f"00-{trace_ids[reminder.proposal_id]}-{'ab' * 8}-01"
            await producer.send_and_wait(
                topics.proposals,
                reminder.model_dump_json().encode(),
                key=reminder.kafka_key(),
                headers=[("traceparent", traceparent.encode())],
            )
    finally:
        await producer.stop()

    # Started once all five wait on the topic, so they are decided together.
    app = create_app(_settings(kafka_settings, database_url), clock=FixedClock(NOON_EASTERN))
    async with (
        running_app(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://consent") as http,
    ):
        records = await read_topic(kafka_settings, topics.decisions, at_least=5)
        published: dict[uuid.UUID, str] = {}
        for record in records:
            decision = ContactDecision.model_validate_json(record.value)
            published[decision.proposal_id] = dict(record.headers)["traceparent"].decode()
        stored = {
            reminder.proposal_id: (await http.get(f"/v1/decisions/{reminder.proposal_id}")).json()
            for reminder in reminders
        }

    # Each decision left in, and its audit row names, the trace its own reminder came in.
    assert {key: value.split("-")[1] for key, value in published.items()} == trace_ids
    assert {key: row["trace_id"] for key, row in stored.items()} == trace_ids


def _delivery(proposal_id: uuid.UUID, status: DeliveryStatus, minutes: int) -> DeliveryReported:
    return DeliveryReported(
        debtor_id="d-1",
        proposal_id=proposal_id,
        channel=Channel.SMS,
        status=status,
        provider="twilio",
        occurred_at=NOON_EASTERN + timedelta(minutes=minutes),
    )


async def test_a_batch_of_reports_counts_each_message_once_and_skips_a_malformed_one(
    kafka_settings: KafkaSettings, settings: ConsentSettings, database_url: str
) -> None:
    topics = Topics.for_prefix(kafka_settings.topic_prefix)
    texted, emailed, failed = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    first_sent = _delivery(texted, DeliveryStatus.SENT, 1)
    email_delivered = _delivery(emailed, DeliveryStatus.DELIVERED, 1)
    broken = json.loads(first_sent.model_dump_json())
    broken["status"] = "teleported"
    reports = [
        _delivery(texted, DeliveryStatus.FAILED, 0),  # never left: not a contact
        first_sent,
        json.dumps(broken).encode(),
        _delivery(texted, DeliveryStatus.DELIVERED, 3),
        first_sent,  # redelivered
        _delivery(texted, DeliveryStatus.SENT, 2),  # older, arrived late
        email_delivered,
        _delivery(failed, DeliveryStatus.EXPIRED, 1),
    ]
    # Published before the service starts, so they arrive as one batch.
    await produce_raw(
        kafka_settings,
        topics.deliveries,
        [r if isinstance(r, bytes) else r.model_dump_json().encode() for r in reports],
        key=b"d-1",
    )
    query = "SELECT string_agg(event_id::text, ',' ORDER BY sent_at) FROM consent.contacts"
    async with running_app(create_app(settings, clock=FixedClock(NOON_EASTERN))):

        async def counted() -> object:
            return await _scalar(database_url, query)

        assert await wait_for(counted, timeout=30)
        dead = await read_topic(kafka_settings, topics.dead_letters, at_least=1, settle=1.0)

    # One contact per message that left, from the first report that showed it left; the
    # expired message never reached the debtor.
    stored = str(await _scalar(database_url, query)).split(",")
    assert sorted(stored) == sorted([str(first_sent.event_id), str(email_delivered.event_id)])
    assert [dict(r.headers)[DEAD_LETTER_SOURCE_HEADER].decode() for r in dead] == [
        topics.deliveries
    ]
    assert "status" in dict(dead[0].headers)[DEAD_LETTER_REASON_HEADER].decode()


async def test_the_repository_counts_a_batchs_repeated_reports_once(
    settings: ConsentSettings, database_url: str
) -> None:
    async with running_app(create_app(settings, clock=FixedClock(NOON_EASTERN))):
        pass  # started once for its migrations
    proposal_id = uuid.uuid4()
    engine = create_async_engine(database_url)
    try:
        repository = ConsentRepository(engine)
        batch = [
            _delivery(proposal_id, DeliveryStatus.SENT, 1),
            _delivery(proposal_id, DeliveryStatus.DELIVERED, 2),
            _delivery(proposal_id, DeliveryStatus.SENT, 1),
        ]
        assert await repository.record_deliveries(batch) == 1
        assert await repository.record_deliveries(batch) == 0
        assert await repository.record_deliveries([]) == 0
    finally:
        await engine.dispose()
    assert await _scalar(database_url, "SELECT status FROM consent.contacts") == "sent"
