"""The yardstick for every Parley throughput figure: the same number of messages pushed
through the same broker with no processing at all.

``raw_pass_through`` produces N messages to topic A, consumes them and produces each to
topic B, then consumes B: the two hops a reminder makes between services, with aiokafka
alone. ``raw_produce`` is the one-hop version (what the scheduler's publishing compares to).
Benchmarks report Parley's rate as a ratio of these, measured in the same run.

Run alone: ``uv run --no-sync python bench/kafka_baseline.py --messages 100000``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

# Same producer tuning as the services' brokers (acks=all, short linger), larger batches.
PRODUCER_OPTIONS = {"acks": "all", "linger_ms": 5, "max_batch_size": 256 * 1024}


@dataclass(frozen=True)
class Rate:
    messages: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds if self.seconds else float("inf")


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        )
    finally:
        await admin.close()


def _payload(size: int) -> bytes:
    return (b'{"pad":"' + b"x" * max(size - 10, 0) + b'"}')[:size]


async def _produce(
    producer: AIOKafkaProducer, topic: str, values: list[tuple[bytes, bytes]]
) -> None:
    # Fire sends in flight and await them together: awaiting each one would measure
    # round trips, not the broker.
    pending = [await producer.send(topic, value, key=key) for key, value in values]
    await asyncio.gather(*pending)


async def _joined_consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """A group consumer that already owns its partitions, so timing excludes the join."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"baseline-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_poll_records=5000,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=200)
    return consumer


async def _drain(
    consumer: AIOKafkaConsumer,
    count: int,
    relay: tuple[AIOKafkaProducer, str] | None = None,
) -> None:
    received = 0
    while received < count:
        batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
        records = [record for batch in batches.values() for record in batch]
        received += len(records)
        if relay is not None and records:
            producer, topic = relay
            await _produce(producer, topic, [(r.key or b"", r.value or b"") for r in records])
        if records:
            await consumer.commit()


async def raw_produce(
    bootstrap: str, messages: int, payload_size: int = 600, partitions: int = 6
) -> Rate:
    topic = f"baseline-produce-{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, [topic], partitions)
    values = [(f"debtor-{n}".encode(), _payload(payload_size)) for n in range(messages)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_OPTIONS)  # type: ignore[arg-type]
    await producer.start()
    try:
        started = time.perf_counter()
        await _produce(producer, topic, values)
        return Rate(messages, time.perf_counter() - started)
    finally:
        await producer.stop()


async def raw_pass_through(
    bootstrap: str, messages: int, payload_size: int = 600, partitions: int = 6
) -> Rate:
    """produce → consume → produce → consume, timed from the first send to the last receipt,
    with both hops running concurrently as the services do."""
    run = uuid.uuid4().hex[:8]
    first, second = f"baseline-a-{run}", f"baseline-b-{run}"
    await create_topics(bootstrap, [first, second], partitions)
    values = [(f"debtor-{n}".encode(), _payload(payload_size)) for n in range(messages)]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_OPTIONS)  # type: ignore[arg-type]
    relay_producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_OPTIONS)  # type: ignore[arg-type]
    await producer.start()
    await relay_producer.start()
    hop_one = await _joined_consumer(bootstrap, first)
    hop_two = await _joined_consumer(bootstrap, second)
    try:
        started = time.perf_counter()
        await asyncio.gather(
            _produce(producer, first, values),
            _drain(hop_one, messages, relay=(relay_producer, second)),
            _drain(hop_two, messages),
        )
        return Rate(messages, time.perf_counter() - started)
    finally:
        for client in (hop_one, hop_two, producer, relay_producer):
            await client.stop()


def main() -> None:
    import tempfile
    from pathlib import Path

    from parley_cli.local.broker import TansuBroker

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--payload-size", type=int, default=600)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        broker = TansuBroker(workdir=Path(workdir))
        broker.start()
        try:
            produce = asyncio.run(
                raw_produce(broker.bootstrap_servers, arguments.messages, arguments.payload_size)
            )
            through = asyncio.run(
                raw_pass_through(
                    broker.bootstrap_servers, arguments.messages, arguments.payload_size
                )
            )
        finally:
            broker.stop()
    print(f"raw produce:      {produce.per_second:>10,.0f} msg/s ({produce.seconds:.1f} s)")
    print(f"raw pass-through: {through.per_second:>10,.0f} msg/s ({through.seconds:.1f} s)")


if __name__ == "__main__":
    main()
