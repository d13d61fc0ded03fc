"""The consent service's throughput over Kafka, against a raw broker pass-through in the
same run, on the embedded broker (Tansu) and PostgreSQL.

Run: ``uv run --no-sync python bench/consent_kafka_throughput.py [--proposals 2000]``

Both legs consume the same kind of messages from a fresh topic and write one message per
input, after warming up (group joined, migrations applied):

- pass-through: an aiokafka consumer that forwards every record unchanged to another topic
  and commits after each batch; the ceiling the broker allows on this machine;
- consent: the real service (``create_app``), deciding each proposal, storing the decision
  in PostgreSQL and publishing it, with offsets committed after the durable work.

Timing runs from the first produced proposal to the last output record read back.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from parley_cli.local.broker import TansuBroker
from parley_cli.local.postgres import EmbeddedPostgres
from parley_consent.bootstrap import create_app
from parley_consent.settings import ConsentSettings
from parley_shared.events import AddressFacts, AddressProvenance, Channel, ReminderProposed
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics, ensure_topics

NOON_EASTERN = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)


def _proposals(count: int) -> list[bytes]:
    facts = AddressFacts(
        provenance=AddressProvenance.CONSUMER_CONSENTED,
        consent_evidence="form",
        confirmed_at=datetime(2026, 6, 1, tzinfo=UTC),
    )
    return [
        ReminderProposed(
            debtor_id=f"d-{index}",
            proposal_id=uuid.uuid4(),
            campaign_id="bench",
            campaign_version=1,
            step=0,
            channel=Channel.SMS,
            address=f"+1212555{index % 10000:04d}",
            time_zone="America/New_York",
            template="reminder-1",
            address_facts=facts,
        )
        .model_dump_json()
        .encode()
        for index in range(count)
    ]


async def _produce(servers: str, topic: str, values: Sequence[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        sends = [
            await producer.send(topic, value, key=f"d-{index}".encode())
            for index, value in enumerate(values)
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def _count(servers: str, topic: str, expected: int, timeout: float) -> None:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=servers, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        seen = 0
        deadline = time.monotonic() + timeout
        while seen < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {seen} of {expected} records arrived on {topic}")
            batches = await consumer.getmany(timeout_ms=200, max_records=5000)
            seen += sum(len(records) for records in batches.values())
    finally:
        await consumer.stop()


async def _timed(servers: str, source: str, sink: str, values: Sequence[bytes]) -> float:
    started = time.perf_counter()
    await asyncio.gather(
        _produce(servers, source, values), _count(servers, sink, len(values), timeout=600)
    )
    return time.perf_counter() - started


async def _pass_through(servers: str, source: str, sink: str, stop: asyncio.Event) -> None:
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=servers,
        group_id=f"passthrough-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5)
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=500)
            sends = [
                await producer.send(sink, record.value, key=record.key)
                for records in batches.values()
                for record in records
            ]
            await asyncio.gather(*sends)
            if sends:
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


async def _create(servers: str, *names: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 3, 1) for name in names])
    finally:
        await admin.close()


async def run(count: int, workdir: Path) -> None:
    broker = TansuBroker(workdir=workdir / "tansu")
    postgres = EmbeddedPostgres(workdir=workdir / "postgres")
    broker.start()
    postgres.start()
    try:
        servers = broker.bootstrap_servers
        run_id = uuid.uuid4().hex[:6]

        # Leg 1: raw pass-through.
        source, sink = f"pt{run_id}.in", f"pt{run_id}.out"
        await _create(servers, source, sink)
        stop = asyncio.Event()
        forwarding = asyncio.create_task(_pass_through(servers, source, sink, stop))
        await _timed(servers, source, sink, _proposals(1))  # joined and warm
        raw_seconds = await _timed(servers, source, sink, _proposals(count))
        stop.set()
        await forwarding

        # Leg 2: the consent service.
        kafka = KafkaSettings(
            bootstrap_servers=servers, topic_prefix=f"c{run_id}.", group_prefix=f"g{run_id}"
        )
        await ensure_topics(kafka)
        topics = Topics.for_prefix(kafka.topic_prefix)
        settings = ConsentSettings(
            kafka=kafka, database_url=postgres.url(), simulated_start=NOON_EASTERN
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            warm = await _timed(servers, topics.proposals, topics.decisions, _proposals(1))
            del warm
            # The decisions topic already holds the warm-up decision: count past it.
            started = time.perf_counter()
            await asyncio.gather(
                _produce(servers, topics.proposals, _proposals(count)),
                _count(servers, topics.decisions, count + 1, timeout=1200),
            )
            consent_seconds = time.perf_counter() - started
    finally:
        postgres.stop()
        broker.stop()

    print(f"{count} messages, 3 partitions, embedded Tansu broker and PostgreSQL")
    print(f"raw pass-through: {raw_seconds:6.2f} s  {count / raw_seconds:8,.0f} messages/s")
    print(
        f"consent service:  {consent_seconds:6.2f} s  {count / consent_seconds:8,.0f} decisions/s"
    )
    print(f"consent / raw:    {raw_seconds / consent_seconds:6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposals", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="consent-bench-") as workdir:
        asyncio.run(run(args.proposals, Path(workdir)))


if __name__ == "__main__":
    main()
