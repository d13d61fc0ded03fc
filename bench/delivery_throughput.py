"""Delivery throughput: approved decisions in, provider calls to the stand-ins, delivery
reports out, against the raw two-hop broker pass-through measured in the same run.

Decisions are taken in batches (``decision_batch_size``) and sent concurrently
(``send_concurrency`` debtors at a time). Everything real except the providers: Tansu,
embedded PostgreSQL, the messenger with its at-most-once ledger and dispatch checks, the
twilio SDK and SendGrid's Mail helpers over httpx, the stand-ins on a loopback port
(status callbacks off: the send path only).

Besides the rates it prints the CPU each delivered message cost this process (the
messenger, plus the bench's producer and report counter) and the stand-ins' process: on a
shared machine these move far less than wall-clock rates do.

Run: ``uv run --no-sync python bench/delivery_throughput.py --messages 2000 [--json out.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from parley_cli.local.broker import TansuBroker
from parley_cli.local.ports import free_port
from parley_cli.local.postgres import EmbeddedPostgres
from parley_messenger.bootstrap import create_app
from parley_messenger.settings import MessengerSettings, SendGridSettings, TwilioSettings
from parley_shared.events import (
    AddressFacts,
    AddressProvenance,
    Channel,
    ContactDecision,
    ReminderProposed,
    Verdict,
)
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics, ensure_topics
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kafka_baseline import Rate, raw_pass_through

VARIABLES = {"name": "Ada", "balance": "$10.00", "creditor": "Bank", "reference": "R-1"}


def decisions(count: int, debtors: int) -> list[ContactDecision]:
    now = datetime.now(UTC)
    made = []
    for n in range(count):
        channel = Channel.SMS if n % 2 == 0 else Channel.EMAIL
        debtor = f"bench-{n % debtors}"
        proposal = ReminderProposed(
            debtor_id=debtor,
            proposal_id=uuid.uuid4(),
            campaign_id="bench",
            campaign_version=1,
            step=0,
            channel=channel,
            address="+14155550100" if channel is Channel.SMS else f"{debtor}@example.com",
            template="first-notice",
            variables=VARIABLES,
            address_facts=AddressFacts(provenance=AddressProvenance.CONSUMER_USED),
        )
        made.append(
            ContactDecision(
                debtor_id=debtor,
                proposal_id=proposal.proposal_id,
                verdict=Verdict.APPROVED,
                lawful_until=now + timedelta(hours=1),
                rule_set_version="bench",
                proposal=proposal,
            )
        )
    return made


@dataclass(frozen=True)
class Sandbox:
    url: str
    process: psutil.Process

    def cpu_seconds(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)


@dataclass(frozen=True)
class RunResult:
    rate: Rate
    messenger_cpu: float  # seconds of this process's CPU during the run
    sandbox_cpu: float  # seconds of the stand-ins' CPU during the run


def cpu_ms_per_message(seconds: float, messages: int) -> float:
    return 1000 * seconds / messages


@contextlib.asynccontextmanager
async def sandbox_process() -> AsyncIterator[Sandbox]:
    """The stand-ins in a process of their own, as remote providers would be: their CPU
    is not the messenger's."""
    port = free_port()
    environment = os.environ | {
        "PARLEY_SANDBOX_HTTP_PORT": str(port),
        "PARLEY_SANDBOX_TWILIO_STATUS_CALLBACKS": "false",
        "PARLEY_SANDBOX_LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parley_sandbox", env=environment
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/health/live")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield Sandbox(url, psutil.Process(process.pid))
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=10)


async def count_reports(kafka: KafkaSettings, expected: int) -> None:
    consumer = AIOKafkaConsumer(
        Topics.for_prefix(kafka.topic_prefix).deliveries,
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        seen = 0
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            seen += sum(len(batch) for batch in batches.values())
    finally:
        await consumer.stop()


async def messenger_run(
    bootstrap: str,
    database_url: str,
    messages: int,
    debtors: int,
    concurrency: int,
    batch_size: int,
) -> RunResult:
    run = uuid.uuid4().hex[:8]
    kafka = KafkaSettings(
        bootstrap_servers=bootstrap, topic_prefix=f"b{run}.", group_prefix=f"b{run}"
    )
    await ensure_topics(kafka)
    async with sandbox_process() as sandbox:
        settings = MessengerSettings(
            kafka=kafka,
            database_url=database_url,
            twilio=TwilioSettings(base_url=sandbox.url),
            sendgrid=SendGridSettings(host=sandbox.url),
            send_concurrency=concurrency,
            decision_batch_size=batch_size,
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            await asyncio.sleep(3)  # let the group settle before the clock starts
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
            await producer.start()
            topic = Topics.for_prefix(kafka.topic_prefix).decisions
            made = decisions(messages, debtors)
            own_cpu, sandbox_cpu = time.process_time(), sandbox.cpu_seconds()
            started = time.perf_counter()
            try:
                pending = [
                    await producer.send(topic, d.model_dump_json().encode(), key=d.kafka_key())
                    for d in made
                ]
                await asyncio.gather(*pending)
            finally:
                await producer.stop()
            await count_reports(kafka, messages)
            elapsed = time.perf_counter() - started
            own_cpu = time.process_time() - own_cpu
            sandbox_cpu = sandbox.cpu_seconds() - sandbox_cpu
    return RunResult(Rate(messages, elapsed), own_cpu, sandbox_cpu)


async def fresh_database(postgres: EmbeddedPostgres) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(postgres.url(), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return postgres.url(name)


async def bench(
    broker: TansuBroker,
    postgres: EmbeddedPostgres,
    messages: int,
    concurrency: list[int],
    batch_size: int,
) -> dict[str, object]:
    """Runs the messenger at each concurrency, then the raw pass-through; prints a line
    for each and returns the summary written with ``--json``."""
    runs: list[tuple[int, RunResult]] = []
    for count in concurrency:
        database_url = await fresh_database(postgres)
        result = await messenger_run(
            broker.bootstrap_servers, database_url, messages, 500, count, batch_size
        )
        runs.append((count, result))
    baseline = await raw_pass_through(broker.bootstrap_servers, messages)
    for count, result in runs:
        rate = result.rate
        print(
            f"{f'messenger, {count} concurrent':<28} {rate.per_second:>9,.0f} msg/s  "
            f"({rate.seconds:5.1f} s, {rate.per_second / baseline.per_second:6.1%} of raw)  "
            f"CPU/msg: messenger {cpu_ms_per_message(result.messenger_cpu, messages):.2f} ms, "
            f"stand-ins {cpu_ms_per_message(result.sandbox_cpu, messages):.2f} ms"
        )
    print(
        f"{'raw broker pass-through':<28} {baseline.per_second:>9,.0f} msg/s  "
        f"({baseline.seconds:5.1f} s, 100.0% of raw)"
    )
    # "summary" is flat (name: number), the shape bench/report.py tabulates.
    summary: dict[str, float] = {"messages": messages, "raw_per_second": baseline.per_second}
    for count, result in runs:
        summary |= {
            f"concurrency_{count}_per_second": result.rate.per_second,
            f"concurrency_{count}_ratio_of_raw": result.rate.per_second / baseline.per_second,
            f"concurrency_{count}_messenger_cpu_ms_per_message": cpu_ms_per_message(
                result.messenger_cpu, messages
            ),
            f"concurrency_{count}_standins_cpu_ms_per_message": cpu_ms_per_message(
                result.sandbox_cpu, messages
            ),
        }
    return {"summary": summary, "batch_size": batch_size}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 16, 64], help="send_concurrency values"
    )
    parser.add_argument(
        "--batch-size", type=int, default=100, help="decision_batch_size (decisions per batch)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as workdir:
        broker = TansuBroker(workdir=Path(workdir) / "tansu")
        postgres = EmbeddedPostgres(workdir=Path(workdir) / "postgres")
        broker.start()
        postgres.start()
        try:
            summary = asyncio.run(
                bench(
                    broker,
                    postgres,
                    arguments.messages,
                    arguments.concurrency,
                    arguments.batch_size,
                )
            )
        finally:
            postgres.stop()
            broker.stop()
    if arguments.json is not None:
        arguments.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
