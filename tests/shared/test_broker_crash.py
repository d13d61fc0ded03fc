"""The fault harness's broker: with s3 storage on a local S3, a ``kill -9`` of the broker
loses neither acknowledged messages nor committed offsets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from parley_cli.local.broker import TansuBroker
from parley_cli.local.object_store import LocalObjectStore


@pytest.fixture
def durable_broker(tmp_path: Path) -> Iterator[TansuBroker]:
    store = LocalObjectStore(workdir=tmp_path / "s3")
    store.start()
    broker = TansuBroker(
        workdir=tmp_path / "tansu",
        storage_url=store.storage_url,
        storage_environment=store.client_environment(),
    )
    broker.start()
    yield broker
    broker.stop()
    store.stop()


async def _consume(bootstrap: str, topic: str, group: str, at_least: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        for _ in range(40):
            batches = await consumer.getmany(timeout_ms=500)
            values += [r.value or b"" for records in batches.values() for r in records]
            if len(values) >= at_least:
                break
        await consumer.commit()
    finally:
        await consumer.stop()
    return values


async def test_a_crashed_broker_keeps_messages_and_offsets(durable_broker: TansuBroker) -> None:
    bootstrap = durable_broker.bootstrap_servers
    topic, group = f"durable-{uuid.uuid4().hex[:6]}", "durable-group"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    await admin.close()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    for number in range(6):
        await producer.send_and_wait(topic, f"before-{number}".encode(), key=f"k{number}".encode())
    await producer.stop()
    first = await _consume(bootstrap, topic, group, at_least=6)
    assert sorted(first) == sorted(f"before-{n}".encode() for n in range(6))

    durable_broker.kill()
    durable_broker.restart()

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    await producer.send_and_wait(topic, b"after", key=b"k0")
    await producer.stop()
    # The group resumes after its committed offsets: only the new message comes back.
    assert await _consume(bootstrap, topic, group, at_least=1) == [b"after"]
    # A new group still sees everything that was acknowledged before the crash.
    everything = await _consume(bootstrap, topic, "fresh-group", at_least=7)
    assert len(everything) == 7
