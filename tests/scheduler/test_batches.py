"""Decisions and delivery outcomes are stored a batch at a time: the batch must store
exactly what the events one by one would have (each decision once, the newest outcome per
proposal), and one malformed event must not cost its neighbours."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from parley_scheduler.adapters.database import SchedulerStore
from parley_scheduler.bootstrap import create_app
from parley_shared.events import (
    Channel,
    ContactDecision,
    DecisionReason,
    DeliveryReported,
    DeliveryStatus,
    Verdict,
)
from parley_shared.kafka import DEAD_LETTER_SOURCE_HEADER
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.consent.builders import proposal
from tests.scheduler.conftest import FakeTemplateChecker, ManualClock, settings_for
from tests.support.apps import running_app
from tests.support.kafka import produce_raw, read_topic, wait_for

T0 = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)


def _report(proposal_id: uuid.UUID, status: DeliveryStatus, minutes: int) -> DeliveryReported:
    return DeliveryReported(
        debtor_id="d-1",
        proposal_id=proposal_id,
        channel=Channel.SMS,
        status=status,
        provider="twilio",
        occurred_at=T0 + timedelta(minutes=minutes),
    )


def _decision(proposal_id: uuid.UUID, verdict: Verdict, minutes: int = 0) -> ContactDecision:
    deferred = verdict is Verdict.DEFERRED
    return ContactDecision(
        debtor_id="d-1",
        proposal_id=proposal_id,
        verdict=verdict,
        reasons=(DecisionReason(rule_id="US-F-TIME", explanation="too early"),) if deferred else (),
        defer_until=T0 + timedelta(hours=2) if deferred else None,
        rule_set_version="test",
        proposal=proposal(proposal_id=proposal_id),
        occurred_at=T0 + timedelta(minutes=minutes),
    )


async def _rows(database_url: str, query: str) -> list[Any]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return list((await connection.execute(text(query))).all())
    finally:
        await engine.dispose()


async def test_one_batch_stores_what_its_events_one_by_one_would(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    late, tied, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    deferred, approved = uuid.uuid4(), uuid.uuid4()
    # Started once for its migrations; the store is then driven directly.
    app = create_app(
        settings_for(kafka_settings, database_url),
        clock=ManualClock(),
        template_checker=FakeTemplateChecker(),
    )
    async with running_app(app):
        pass
    engine = create_async_engine(database_url)
    store = SchedulerStore(engine)
    try:
        changed = await store.record_deliveries(
            [
                _report(late, DeliveryStatus.SENT, 1),
                _report(late, DeliveryStatus.DELIVERED, 3),
                _report(late, DeliveryStatus.UNDELIVERED, 2),  # older, arrived late
                _report(late, DeliveryStatus.DELIVERED, 3),  # a duplicate
                _report(tied, DeliveryStatus.SENT, 5),
                _report(tied, DeliveryStatus.UNDELIVERED, 5),  # as new: the later one wins
                _report(other, DeliveryStatus.UNDELIVERED, 1),
            ]
        )
        # A later batch with an older report changes nothing.
        stale = await store.record_deliveries([_report(late, DeliveryStatus.FAILED, 2)])
        first = await store.record_decisions(
            [
                _decision(deferred, Verdict.DEFERRED),
                _decision(deferred, Verdict.APPROVED, 1),  # a second decision: the first stays
                _decision(approved, Verdict.APPROVED),
            ]
        )
        redelivered = await store.record_decisions([_decision(approved, Verdict.VETOED)])
    finally:
        await engine.dispose()

    assert (changed, stale, first, redelivered) == (3, 0, 2, 0)
    deliveries = {
        row.proposal_id: (row.status, row.at)
        for row in await _rows(database_url, "SELECT * FROM scheduler.deliveries")
    }
    assert deliveries == {
        late: ("delivered", T0 + timedelta(minutes=3)),
        tied: ("undelivered", T0 + timedelta(minutes=5)),
        other: ("undelivered", T0 + timedelta(minutes=1)),
    }
    decisions = {
        row.proposal_id: (row.verdict, row.rule_ids, row.defer_until)
        for row in await _rows(database_url, "SELECT * FROM scheduler.decisions")
    }
    assert decisions == {
        deferred: ("deferred", ["US-F-TIME"], T0 + timedelta(hours=2)),
        approved: ("approved", [], None),
    }


async def test_a_malformed_event_is_dead_lettered_and_the_rest_of_its_batch_stored(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    topics = Topics.for_prefix(kafka_settings.topic_prefix)
    reported, decided = uuid.uuid4(), uuid.uuid4()
    broken = json.loads(_report(reported, DeliveryStatus.SENT, 0).model_dump_json())
    del broken["proposal_id"]
    # Published before the scheduler starts, so each topic's events arrive as one batch.
    await produce_raw(
        kafka_settings,
        topics.deliveries,
        [
            _report(reported, DeliveryStatus.SENT, 1).model_dump_json().encode(),
            json.dumps(broken).encode(),
            _report(reported, DeliveryStatus.DELIVERED, 4).model_dump_json().encode(),
            _report(reported, DeliveryStatus.SENT, 2).model_dump_json().encode(),
        ],
        key=b"d-1",
    )
    await produce_raw(
        kafka_settings,
        topics.decisions,
        [
            b"\xff not json",
            _decision(decided, Verdict.DEFERRED).model_dump_json().encode(),
            _decision(decided, Verdict.DEFERRED).model_dump_json().encode(),
        ],
        key=b"d-1",
    )
    app = create_app(
        settings_for(kafka_settings, database_url),
        clock=ManualClock(),
        template_checker=FakeTemplateChecker(),
    )
    query = (
        "SELECT (SELECT count(*) FROM scheduler.decisions),"
        " (SELECT string_agg(status, ',') FROM scheduler.deliveries)"
    )
    async with running_app(app):

        async def stored() -> bool:
            [(decisions, statuses)] = await _rows(database_url, query)
            return decisions == 1 and statuses == "delivered"

        assert await wait_for(stored, timeout=30)
        dead = await read_topic(kafka_settings, topics.dead_letters, at_least=2, settle=1.0)

    sources = sorted(dict(record.headers)[DEAD_LETTER_SOURCE_HEADER].decode() for record in dead)
    assert sources == sorted([topics.deliveries, topics.decisions])
