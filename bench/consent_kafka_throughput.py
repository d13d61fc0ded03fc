"""The consent service's throughput over Kafka, against a raw broker pass-through in the
same run, on the embedded broker (Tansu) and PostgreSQL.

Run: ``uv run --no-sync python bench/consent_kafka_throughput.py [--proposals 2000]
[--rounds 3] [--json out.json]``

Both legs consume the same kind of messages from a fresh topic and write one message per
input, after warming up (group joined, migrations applied):

- pass-through: an aiokafka consumer that forwards every record unchanged to another topic
  and commits after each batch; the ceiling the broker allows on this machine;
- consent: the real service (``create_app``), deciding each proposal, storing the decision
  in PostgreSQL and publishing it, with offsets committed after the durable work.

Timing runs from the first produced proposal to the last output record read back. The
legs alternate round by round and the medians are reported, so a change of load on a
shared machine weighs on both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    """Returns once ``topic`` holds ``expected`` records in all."""
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


class _Leg:
    """One path from a source topic to a sink topic; each timed round adds its records to
    what the sink already holds."""

    def __init__(self, servers: str, source: str, sink: str) -> None:
        self.servers, self.source, self.sink = servers, source, sink
        self.delivered = 0

    async def timed(self, values: Sequence[bytes], timeout: float = 1200) -> float:
        started = time.perf_counter()
        await asyncio.gather(
            _produce(self.servers, self.source, values),
            _count(self.servers, self.sink, self.delivered + len(values), timeout),
        )
        self.delivered += len(values)
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


async def run(count: int, workdir: Path, rounds: int = 3) -> dict[str, Any]:
    """Times ``rounds`` rounds of each leg, alternating raw and consent so a load change
    on a shared machine hits both alike; reports the medians."""
    broker = TansuBroker(workdir=workdir / "tansu")
    postgres = EmbeddedPostgres(workdir=workdir / "postgres")
    broker.start()
    postgres.start()
    raw_seconds: list[float] = []
    consent_seconds: list[float] = []
    try:
        servers = broker.bootstrap_servers
        run_id = uuid.uuid4().hex[:6]

        source, sink = f"pt{run_id}.in", f"pt{run_id}.out"
        await _create(servers, source, sink)
        stop = asyncio.Event()
        forwarding = asyncio.create_task(_pass_through(servers, source, sink, stop))
        raw = _Leg(servers, source, sink)

        kafka = KafkaSettings(
            bootstrap_servers=servers, topic_prefix=f"c{run_id}.", group_prefix=f"g{run_id}"
        )
        await ensure_topics(kafka)
        topics = Topics.for_prefix(kafka.topic_prefix)
        settings = ConsentSettings(
            kafka=kafka, database_url=postgres.url(), simulated_start=NOON_EASTERN
        )
        consent = _Leg(servers, topics.proposals, topics.decisions)
        app = create_app(settings)
        try:
            async with app.router.lifespan_context(app):
                # Warm-up: groups joined, migrations applied, connections open.
                await raw.timed(_proposals(1))
                await consent.timed(_proposals(1))
                for round_number in range(1, rounds + 1):
                    raw_seconds.append(await raw.timed(_proposals(count)))
                    consent_seconds.append(await consent.timed(_proposals(count)))
                    print(
                        f"round {round_number}: raw {count / raw_seconds[-1]:8,.0f} msg/s, "
                        f"consent {count / consent_seconds[-1]:8,.0f} decisions/s",
                        flush=True,
                    )
        finally:
            stop.set()
            await forwarding
    finally:
        postgres.stop()
        broker.stop()

    raw_median = statistics.median(raw_seconds)
    consent_median = statistics.median(consent_seconds)
    print(f"{count} messages a round, {rounds} rounds, 3 partitions, Tansu and PostgreSQL")
    print(f"raw pass-through: {raw_median:6.2f} s  {count / raw_median:8,.0f} messages/s")
    print(f"consent service:  {consent_median:6.2f} s  {count / consent_median:8,.0f} decisions/s")
    print(f"consent / raw:    {raw_median / consent_median:6.1%}  (medians)")
    return {
        "proposals": count,
        "rounds": rounds,
        "raw_seconds": raw_median,
        "raw_per_second": count / raw_median,
        "consent_seconds": consent_median,
        "consent_per_second": count / consent_median,
        "ratio_to_raw": raw_median / consent_median,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proposals", type=int, default=2000, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="consent-bench-") as workdir:
        summary = asyncio.run(run(args.proposals, Path(workdir), args.rounds))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary}, indent=2))


if __name__ == "__main__":
    main()
