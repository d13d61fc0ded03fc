"""The embedded default really starts: the broker speaks Kafka and PostgreSQL answers."""

from __future__ import annotations

from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.kafka import payloads, produce_raw, read_topic


async def test_topics_exist_with_the_configured_partition_count(
    kafka_settings: KafkaSettings,
) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    await admin.start()
    try:
        names = Topics.for_prefix(kafka_settings.topic_prefix).all()
        described = await admin.describe_topics(list(names))
    finally:
        await admin.close()
    counts = {topic["topic"]: len(topic["partitions"]) for topic in described}
    assert counts == dict.fromkeys(names, kafka_settings.partitions)


async def test_a_message_goes_through_the_broker(kafka_settings: KafkaSettings) -> None:
    topic = Topics.for_prefix(kafka_settings.topic_prefix).proposals
    await produce_raw(kafka_settings, topic, [b'{"hello": "world"}'], key=b"d-1")
    records = await read_topic(kafka_settings, topic, at_least=1)
    assert payloads(records) == [{"hello": "world"}]


async def test_each_test_gets_its_own_database(database_url: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        tables = await connection.execute(
            text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        )
        assert tables.scalar_one() == 0
    await engine.dispose()
