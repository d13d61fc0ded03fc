"""Graceful shutdown, on the real broker and PostgreSQL: a service stopped while it works
finishes what it has taken and commits the offsets of exactly that work."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from parley_consent.bootstrap import create_app
from parley_consent.settings import ConsentSettings
from parley_shared.clock import SimulatedClock
from parley_shared.events import Channel, ReminderProposed
from parley_shared.kafka import consumer_group_options
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.apps import running_app
from tests.support.kafka import produce_raw, read_topic

PROPOSALS = 300


def _proposal(number: int) -> ReminderProposed:
    return ReminderProposed(
        debtor_id=f"d-{number}",
        proposal_id=uuid.uuid4(),
        campaign_id="shutdown",
        campaign_version=1,
        step=0,
        channel=Channel.EMAIL,
        address=f"debtor{number}@example.com",
        time_zone="America/New_York",
        template="first-notice",
    )


async def test_a_stopped_service_commits_exactly_the_work_it_finished(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    topics = Topics.for_prefix(kafka_settings.topic_prefix)
    await produce_raw(
        kafka_settings,
        topics.proposals,
        [_proposal(n).model_dump_json().encode() for n in range(PROPOSALS)],
        key=b"d",
    )
    settings = ConsentSettings(
        kafka=kafka_settings, database_url=database_url, lag_probe_interval_seconds=0
    )
    app = create_app(settings, clock=SimulatedClock(datetime(2026, 11, 24, 15, 0, tzinfo=UTC)))
    async with running_app(app):
        # Stop as soon as the first decision is out: the service is in the middle of work.
        await read_topic(kafka_settings, topics.decisions, at_least=1, settle=0.0)

    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        stored = (
            await connection.execute(text("SELECT count(*) FROM consent.decisions"))
        ).scalar_one()
    await engine.dispose()

    # The consent group's committed offsets, read without joining the group.
    group = consumer_group_options(kafka_settings, "consent")["group_id"]
    reader = AIOKafkaConsumer(
        bootstrap_servers=kafka_settings.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await reader.start()
    try:
        await reader.topics()
        partitions = reader.partitions_for_topic(topics.proposals) or set()
        committed = 0
        for number in partitions:
            committed += await reader.committed(TopicPartition(topics.proposals, number)) or 0
    finally:
        await reader.stop()
    assert stored >= 1
    # Every committed proposal has its decision stored (nothing acknowledged is lost), and
    # every decision the service finished had its offset committed before it exited.
    assert committed == stored
    decisions = await read_topic(kafka_settings, topics.decisions, at_least=stored, settle=1.0)
    assert len({record.value for record in decisions}) >= stored
