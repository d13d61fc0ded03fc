"""How fast the scheduler plans and publishes one campaign tick, and in how much memory.

Seeds N accounts straight into the scheduler's PostgreSQL tables (the import is not what is
measured), activates a one-step campaign, runs one scheduler tick (stream the accounts from
PostgreSQL, build proposals, store them in the outbox, publish them to the broker with
acks=all, mark them published) and reports accounts planned and proposals published per
second and the process's peak resident memory during the tick. In the same run,
``raw_produce`` pushes the same number of messages of the same size through the same broker
with aiokafka alone, as the yardstick.

Run: ``uv run --no-sync python bench/scheduler_plan.py --accounts 100000``
(embedded broker and PostgreSQL are started in a temporary directory and removed after).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
from parley_cli.local.broker import TansuBroker
from parley_cli.local.postgres import EmbeddedPostgres
from parley_scheduler import handlers
from parley_scheduler.adapters.database import SchedulerStore
from parley_scheduler.adapters.publisher import ProposalPublisher
from parley_scheduler.bootstrap import MIGRATIONS
from parley_scheduler.domain.accounts import Account
from parley_scheduler.domain.campaign import parse_campaign
from parley_scheduler.domain.lifecycle import Action
from parley_scheduler.domain.planning import build_proposal
from parley_shared.clock import SimulatedClock
from parley_shared.database import create_engine, upgrade_to_head
from parley_shared.events import AddressFacts, AddressProvenance, ReminderProposed
from parley_shared.kafka import build_broker
from parley_shared.settings import KafkaSettings
from parley_shared.telemetry import build_tracer_provider
from parley_shared.topics import Topics, ensure_topics

sys.path.insert(0, str(Path(__file__).parent))
from kafka_baseline import raw_produce

CAMPAIGN = """\
id: bench
name: Benchmark
steps:
  - day_offset: 0
    channel: sms
    template: first-notice
"""
START = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)
ZONES = ("America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London")


class PeakMemory:
    """Samples this process's resident memory every 50 ms while running."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(0.05)

    def __enter__(self) -> PeakMemory:
        self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


class ServerCpu:
    """CPU seconds the broker and PostgreSQL (every backend) spend between two snapshots:
    on a shared machine, wall time says little, CPU time per proposal says more."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = str(workdir)
        self._start: dict[int, float] = {}

    def _processes(self) -> list[psutil.Process]:
        # The broker is this process's child; PostgreSQL's server is found by its data dir.
        roots = [psutil.Process()]
        for process in psutil.process_iter(["cmdline"]):
            if any(self._workdir in part for part in process.info["cmdline"] or ()):
                roots.append(process)
        found = {process.pid: process for process in roots}
        for root in roots:
            with contextlib.suppress(psutil.Error):
                found.update((child.pid, child) for child in root.children(recursive=True))
        found.pop(os.getpid())
        return list(found.values())

    def _times(self) -> dict[int, tuple[str, float]]:
        times = {}
        for process in self._processes():
            with contextlib.suppress(psutil.Error):
                cpu = process.cpu_times()
                kind = "postgres" if process.name().startswith("postgres") else "broker"
                times[process.pid] = (kind, cpu.user + cpu.system)
        return times

    def __enter__(self) -> ServerCpu:
        self._start = self._times()
        self.postgres = self.broker = 0.0
        return self

    def __exit__(self, *_: object) -> None:
        for pid, (kind, seconds) in self._times().items():
            spent = seconds - self._start.get(pid, (kind, 0.0))[1]
            if kind == "postgres":
                self.postgres += spent
            else:
                self.broker += spent


def _account(index: int) -> Account:
    zone = ZONES[index % len(ZONES)]
    country = "GB" if zone == "Europe/London" else "US"
    phone = f"+4479111{index % 10**5:05d}" if country == "GB" else f"+1212555{index % 10**4:04d}"
    return Account(
        debtor_id=f"bench-{index:08d}",
        name="Alex Example",
        phone=phone,
        time_zone=zone,
        country=country,
        balance="123.45",
        days_past_due=45,
        creditor="Northwind Utilities",
        reference=f"NW-{index:08d}",
        sms_facts=AddressFacts(
            provenance=AddressProvenance.CONSUMER_CONSENTED,
            consent_evidence=f"form-{index}",
            consented_at=datetime(2026, 3, 2, tzinfo=UTC),
            confirmed_at=datetime(2026, 11, 2, tzinfo=UTC),
        ),
    )


async def _seed(postgres_url: str, count: int) -> None:
    """COPY the accounts in: seeding is setup, not the measured work."""
    import asyncpg

    connection = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        chunk = 50_000
        for start in range(0, count, chunk):
            records = []
            for index in range(start, min(start + chunk, count)):
                account = _account(index)
                records.append(
                    (
                        account.debtor_id,
                        json.dumps(account.model_dump(mode="json")),
                        account.fingerprint(),
                        account.time_zone,
                        account.country,
                        account.jurisdiction,
                        account.days_past_due,
                        None,
                        [],
                        False,
                        True,
                        False,
                        START,
                        START,
                    )
                )
            await connection.copy_records_to_table(
                "accounts",
                schema_name="scheduler",
                records=records,
                columns=[
                    "debtor_id",
                    "data",
                    "fingerprint",
                    "time_zone",
                    "country",
                    "jurisdiction",
                    "days_past_due",
                    "balance",
                    "flags",
                    "paid",
                    "has_phone",
                    "has_email",
                    "imported_at",
                    "updated_at",
                ],
            )
        # Imported accounts have long been vacuumed and analysed by the time a campaign runs;
        # without this, autovacuum would work through the fresh million during the tick.
        await connection.execute("VACUUM ANALYZE scheduler.accounts")
    finally:
        await connection.close()


@dataclass
class Result:
    accounts: int
    planned: int
    published: int
    seconds: float
    cpu_seconds: float
    postgres_cpu_seconds: float
    broker_cpu_seconds: float
    peak_rss: int
    baseline_seconds: float
    payload_bytes: int


async def run(count: int, workdir: Path, profile: Path | None = None) -> Result:
    broker_process = TansuBroker(workdir=workdir / "tansu")
    postgres = EmbeddedPostgres(workdir=workdir / "postgres")
    broker_process.start()
    postgres.start()
    try:
        url = postgres.url()
        kafka = KafkaSettings(bootstrap_servers=broker_process.bootstrap_servers, partitions=6)
        await ensure_topics(kafka)
        await upgrade_to_head(MIGRATIONS, url)
        await _seed(url, count)
        tracer_provider = build_tracer_provider("bench-scheduler", "0", ())
        engine = create_engine(url)
        broker = build_broker(kafka, tracer_provider, client_id="bench-scheduler")
        publisher = ProposalPublisher(
            broker, kafka, Topics.for_prefix("").proposals, tracer_provider.get_tracer("bench")
        )
        store = SchedulerStore(engine)
        clock = SimulatedClock(START)
        campaign = parse_campaign(CAMPAIGN)
        await store.create_campaign(campaign, CAMPAIGN, "bench", START)
        await store.change_status("bench", Action.ACTIVATE, "bench", START)
        sample = build_proposal(campaign, 0, _account(1), START)
        assert isinstance(sample, ReminderProposed)
        payload_bytes = len(sample.model_dump_json())
        await broker.start()
        await publisher.start()
        handlers.settle_heap()  # as the service does once started
        try:
            with PeakMemory() as memory, ServerCpu(workdir) as servers:
                started = time.perf_counter()
                cpu_started = time.process_time()
                if profile is None:
                    report = await handlers.tick(store, publisher, clock)
                else:
                    # CPU time, not wall time: other work on the machine does not count.
                    profiler = cProfile.Profile(time.process_time)
                    profiler.enable()
                    report = await handlers.tick(store, publisher, clock)
                    profiler.disable()
                    profiler.dump_stats(profile)
                seconds = time.perf_counter() - started
                cpu_seconds = time.process_time() - cpu_started
        finally:
            await publisher.stop()
            await broker.stop()
            await engine.dispose()
        baseline = await raw_produce(
            broker_process.bootstrap_servers, count, payload_size=payload_bytes
        )
        return Result(
            count,
            report.planned,
            report.published,
            seconds,
            cpu_seconds,
            servers.postgres,
            servers.broker,
            memory.peak,
            baseline.seconds,
            payload_bytes,
        )
    finally:
        postgres.stop()
        broker_process.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--profile", type=Path, help="write a cProfile (CPU time) of the tick")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as directory:
        result = asyncio.run(run(args.accounts, Path(directory), args.profile))
    mib = result.peak_rss / 2**20
    print(f"accounts seeded:          {result.accounts:>12,}")
    print(f"proposals planned:        {result.planned:>12,}")
    print(f"proposals published:      {result.published:>12,}")
    print(f"tick wall time:           {result.seconds:>12.1f} s")
    print(f"tick CPU, scheduler:      {result.cpu_seconds:>12.1f} s")
    print(f"tick CPU, PostgreSQL:     {result.postgres_cpu_seconds:>12.1f} s")
    print(f"tick CPU, broker:         {result.broker_cpu_seconds:>12.1f} s")
    print(f"accounts planned / s:     {result.planned / result.seconds:>12,.0f}")
    print(f"proposals published / s:  {result.published / result.seconds:>12,.0f}")
    print(f"peak resident memory:     {mib:>12,.0f} MiB")
    print(
        f"raw produce, same count:  {result.baseline_seconds:>12.1f} s "
        f"({result.accounts / result.baseline_seconds:,.0f} msg/s, "
        f"{result.payload_bytes} B each)"
    )
    print(f"scheduler / raw produce:  {result.baseline_seconds / result.seconds:>12.1%}")
    if args.json:
        summary = {
            **asdict(result),
            "planned_per_second": result.planned / result.seconds,
            "published_per_second": result.published / result.seconds,
            "peak_rss_mib": mib,
            "raw_produce_per_second": result.accounts / result.baseline_seconds,
            "ratio_to_raw_produce": result.baseline_seconds / result.seconds,
        }
        args.json.write_text(json.dumps({"summary": summary}, indent=2))


if __name__ == "__main__":
    main()
