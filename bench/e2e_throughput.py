"""End to end: reminders from proposal to the provider stand-ins' acceptance, through the
scheduler, consent and messenger, the broker and PostgreSQL, on the local stack.

Three measurements in one stack (``parley_cli.local.stack.LocalStack``: Tansu, embedded
PostgreSQL, the stand-ins and the three services as subprocesses):

1. baseline: ``kafka_baseline.raw_pass_through`` of the same number of messages on the
   stack's own broker (produce → consume → produce → consume, no processing);
2. throughput: N accounts are imported through the scheduler's API (setup, timed apart),
   an SMS and an email campaign are activated and one tick is run; the clock runs from
   the tick request to the last acceptance the stand-ins recorded. Every account must be
   accepted exactly once (counted from ``/_sandbox/messages``, by address);
3. latency: ReminderProposed events built by the scheduler's own ``build_proposal`` are
   published straight to the proposals topic at a fixed rate (with a W3C traceparent, as
   the scheduler's publisher does), and each one's latency is the stand-in's receive time
   minus the event's ``occurred_at``.

The services run on a simulated clock (a Tuesday, 17:00 UTC) at which every debtor
(New York, Chicago, London) is inside the lawful window, so every reminder is approved.
Twilio status callbacks are off in the stand-in: this measures the send path
(``bench/webhook_rate.py`` measures webhooks).

Run: ``uv run --no-sync python bench/e2e_throughput.py --reminders 10000 100000 --json out.json``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
from aiokafka import AIOKafkaProducer
from parley_cli.local.ports import free_port
from parley_cli.local.stack import LocalStack, ServiceProcess
from parley_cli.local.synthetic import CONFIRMED_AT, CONSENTED_AT, Debtor, accounts_csv
from parley_cli.local.synthetic import make_debtors as debtors
from parley_scheduler.domain.accounts import Account
from parley_scheduler.domain.campaign import parse_campaign
from parley_scheduler.domain.planning import build_proposal
from parley_shared.events import AddressFacts, AddressProvenance, ReminderProposed
from parley_shared.topics import Topics

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kafka_baseline import raw_pass_through

# A Tuesday, 17:00 UTC: 12:00 in New York, 11:00 in Chicago, 17:00 in London. Every debtor
# is hours inside the 08:00-21:00 window, however long the run takes.
SIMULATED_START = datetime(2026, 11, 24, 17, 0, tzinfo=UTC)

# One messenger process per core of the 2-core machine the figures are measured on: the
# messenger costs several times the CPU of any other service per reminder.
DEFAULT_MESSENGERS = 2
CAMPAIGNS = {
    "sms": "id: bench-e2e-sms\nname: Bench SMS\nsteps:\n"
    "  - day_offset: 0\n    channel: sms\n    template: first-notice\n",
    "email": "id: bench-e2e-email\nname: Bench email\nsteps:\n"
    "  - day_offset: 0\n    channel: email\n    template: first-notice\n",
}
IMPORT_ROWS_PER_REQUEST = 50_000
Progress = Callable[[str], None]


def account_of(debtor: Debtor) -> Account:
    """The account the scheduler would have stored for this debtor's CSV row."""
    sms = debtor.channel == "sms"
    return Account(
        debtor_id=debtor.debtor_id,
        name="Alex",
        phone=debtor.address if sms else None,
        email=None if sms else debtor.address,
        time_zone=debtor.zone,
        country=debtor.country,
        region=debtor.region or None,
        balance="123.45",
        days_past_due=45,
        creditor="Northwind Utilities",
        reference=f"NW-{debtor.debtor_id[-7:]}",
        sms_facts=AddressFacts(
            provenance=AddressProvenance.CONSUMER_CONSENTED,
            consent_evidence=f"form-{debtor.debtor_id}",
            consented_at=datetime.fromisoformat(CONSENTED_AT),
            confirmed_at=datetime.fromisoformat(CONFIRMED_AT),
        )
        if sms
        else None,
        email_facts=None if sms else AddressFacts(provenance=AddressProvenance.CONSUMER_USED),
    )


class BenchStack(LocalStack):
    """The local stack with the benchmark's few settings: the scheduler's tick loop off
    (the benchmark runs the tick), the stand-in quiet and without status callbacks, and
    ``messengers`` messenger processes in one consumer group (each on a port of its own),
    as a deployment would scale the service that costs the most CPU per reminder."""

    def __init__(self, *args: Any, messengers: int = 1, **kwargs: Any) -> None:
        if messengers < 1:
            raise ValueError("at least one messenger process is needed")
        self.messengers = messengers
        super().__init__(*args, **kwargs)

    def _plan_services(self) -> list[ServiceProcess]:
        services = super()._plan_services()
        messenger = next(service for service in services if service.name == "messenger")
        extra = {
            # The scheduler asks the messenger to check templates before activation.
            "scheduler": {
                "PARLEY_TICK_INTERVAL_SECONDS": "0",
                "PARLEY_MESSENGER_URL": messenger.url,
            },
            "sandbox": {
                "PARLEY_SANDBOX_TWILIO_STATUS_CALLBACKS": "false",
                "PARLEY_SANDBOX_LOG_LEVEL": "WARNING",
            },
        }
        for service in services:
            service.env.update(extra.get(service.name, {}))
        for number in range(2, self.messengers + 1):
            port = free_port()
            services.append(
                replace(
                    messenger,
                    name=f"messenger-{number}",
                    port=port,
                    env={**messenger.env, "PARLEY_HTTP_PORT": str(port)},
                    log_path=self.logs / f"messenger-{number}.log",
                    process=None,
                )
            )
        return services


@dataclass
class Acceptances:
    """What the stand-ins recorded, read incrementally from ``/_sandbox/messages``."""

    by_address: Counter[str] = field(default_factory=Counter)
    received_at: dict[str, datetime] = field(default_factory=dict)
    last_sequence: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_address.values())

    async def poll(self, client: httpx.AsyncClient, sandbox_url: str) -> int:
        response = await client.get(
            sandbox_url + "/_sandbox/messages", params={"after": self.last_sequence}
        )
        response.raise_for_status()
        messages = response.json()
        for message in messages:
            self.last_sequence = max(self.last_sequence, message["sequence"])
            for address in message["to"]:
                self.by_address[address] += 1
                self.received_at.setdefault(address, datetime.fromisoformat(message["received_at"]))
        return len(messages)


async def wait_for_acceptances(
    client: httpx.AsyncClient,
    sandbox_url: str,
    seen: Acceptances,
    expected: set[str],
    progress: Progress,
    stall_seconds: float = 180.0,
) -> None:
    """Polls until every expected address was accepted; fails after ``stall_seconds``
    without a new acceptance."""
    last_change = time.monotonic()
    last_report = 0.0
    started = time.monotonic()
    while True:
        new = await seen.poll(client, sandbox_url)
        done = sum(1 for address in expected if address in seen.by_address)
        if done >= len(expected):
            return
        now = time.monotonic()
        if new:
            last_change = now
        elif now - last_change > stall_seconds:
            raise RuntimeError(
                f"stalled: {done:,} of {len(expected):,} accepted, none for {stall_seconds:.0f} s"
            )
        if now - last_report >= 10:
            elapsed = now - started
            progress(f"  accepted {done:,}/{len(expected):,} ({done / max(elapsed, 1e-9):,.0f}/s)")
            last_report = now
        await asyncio.sleep(0.5)


def exactly_once(seen: Acceptances, expected: set[str]) -> dict[str, int]:
    missing = sum(1 for address in expected if address not in seen.by_address)
    duplicated = sum(1 for address in expected if seen.by_address[address] > 1)
    return {"missing": missing, "duplicated": duplicated}


async def import_accounts(
    client: httpx.AsyncClient, scheduler_url: str, rows: list[Debtor], progress: Progress
) -> float:
    started = time.perf_counter()
    for start in range(0, len(rows), IMPORT_ROWS_PER_REQUEST):
        part = rows[start : start + IMPORT_ROWS_PER_REQUEST]
        response = await client.post(
            scheduler_url + "/v1/accounts/imports",
            params={"first_row": start + 2},
            content=accounts_csv(part).encode(),
            headers={"content-type": "text/csv"},
        )
        response.raise_for_status()
        report = response.json()
        if report["rejected"]:
            raise RuntimeError(f"the scheduler rejected rows: {report['rejected'][:3]}")
        progress(f"  imported {start + len(part):,}/{len(rows):,} accounts")
    return time.perf_counter() - started


def cpu_seconds(stack: LocalStack) -> dict[str, float]:
    """CPU time (user + system) each service process has used so far: a cost per reminder
    that other load on the machine disturbs much less than wall time."""
    used: dict[str, float] = {}
    for service in stack.services:
        if service.process is not None and service.process.poll() is None:
            times = psutil.Process(service.process.pid).cpu_times()
            # Replicas of one service ("messenger-2") count as that service.
            name = service.name.split("-")[0]
            used[name] = used.get(name, 0.0) + times.user + times.system
    return used


def machine_busy_seconds() -> float:
    """CPU time the whole machine spent busy so far, summed over its cores: with the
    services' own, it shows what the broker, PostgreSQL and this bench took, and how
    close to all cores the run came."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


async def throughput(
    stack: LocalStack, count: int, progress: Progress, first: int = 0
) -> dict[str, Any]:
    """Imports ``count`` accounts (numbered from ``first``), makes sure both campaigns are
    active (the first call creates them; later imports join them) and runs one tick."""
    scheduler, sandbox = stack.url_of("scheduler"), stack.url_of("sandbox")
    rows = debtors(count, "e2e", first)
    expected = {debtor.address for debtor in rows}
    async with httpx.AsyncClient(timeout=httpx.Timeout(None)) as client:
        import_seconds = await import_accounts(client, scheduler, rows, progress)
        for source in CAMPAIGNS.values() if first == 0 else ():
            created = await client.post(
                scheduler + "/v1/campaigns",
                content=source.encode(),
                headers={"content-type": "application/yaml"},
            )
            created.raise_for_status()
            activated = await client.post(
                scheduler + f"/v1/campaigns/{created.json()['id']}/activate"
            )
            activated.raise_for_status()
        seen = Acceptances()
        progress(f"  tick: planning and publishing {count:,} proposals")
        cpu_before = cpu_seconds(stack)
        busy_before = machine_busy_seconds()
        started_wall = datetime.now(UTC)
        started = time.perf_counter()
        # The tick answers once every proposal is stored and acknowledged by the broker;
        # consent and messenger are already working on the first ones meanwhile.
        tick = asyncio.create_task(client.post(scheduler + "/v1/ticks"))
        answered: list[float] = []
        tick.add_done_callback(lambda _: answered.append(time.perf_counter() - started))
        await wait_for_acceptances(client, sandbox, seen, expected, progress)
        waited = time.perf_counter() - started
        cpu_after = cpu_seconds(stack)
        busy = machine_busy_seconds() - busy_before
        tick_response = await tick
        tick_response.raise_for_status()
        published = tick_response.json()["published"]
        tick_seconds = answered[0] if answered else time.perf_counter() - started
        await asyncio.sleep(2.0)  # a late duplicate would show up here
        await seen.poll(client, sandbox)
    last = max(seen.received_at[address] for address in expected)
    first = min(seen.received_at[address] for address in expected)
    seconds = (last - started_wall).total_seconds()
    check = exactly_once(seen, expected)
    services_cpu = {
        name: 1000 * (cpu_after[name] - cpu_before.get(name, 0.0)) / count for name in cpu_after
    }
    return {
        "reminders": count,
        "published": published,
        "accepted": sum(1 for a in expected if a in seen.by_address),
        "missing": check["missing"],
        "duplicated": check["duplicated"],
        "stand_in_records": seen.total,
        "seconds": seconds,
        "wait_seconds": waited,
        "tick_seconds": tick_seconds,
        "first_acceptance_seconds": (first - started_wall).total_seconds(),
        "per_second": count / seconds,
        "import_seconds": import_seconds,
        "cpu_ms_per_reminder": services_cpu,
        # Everything else the machine did meanwhile: the broker, PostgreSQL, this bench.
        "other_cpu_ms_per_reminder": max(0.0, 1000 * busy / count - sum(services_cpu.values())),
        "busy_cores": busy / waited,
        "cores": psutil.cpu_count(),
    }


def _traceparent() -> str:
    return f"00-{random.getrandbits(128):032x}-{random.getrandbits(64):016x}-01"


async def latency(
    stack: LocalStack, count: int, rate: float, progress: Progress, first: int
) -> dict[str, Any]:
    """Publishes ``count`` proposals at ``rate`` per second straight to the proposals topic
    and measures proposal → acceptance for each (debtors numbered from ``first``)."""
    rows = debtors(count, "lat", first)
    campaign = parse_campaign(CAMPAIGNS["sms"].replace("bench-e2e-sms", "bench-latency-sms"))
    email = parse_campaign(CAMPAIGNS["email"].replace("bench-e2e-email", "bench-latency-email"))
    accounts = [(account_of(debtor), debtor) for debtor in rows]
    topic = Topics.for_prefix("").proposals
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.broker.bootstrap_servers,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
    )
    await producer.start()
    sent_at: dict[str, datetime] = {}
    expected = {debtor.address for debtor in rows}
    seen = Acceptances()
    pending = []
    progress(f"  publishing {count:,} proposals at {rate:,.0f}/s")
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(None)) as client:
            await seen.poll(client, stack.url_of("sandbox"))  # skip what came before
            seen = Acceptances(last_sequence=seen.last_sequence)
            started = time.perf_counter()
            for index, (account, debtor) in enumerate(accounts):
                due = started + index / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                chosen = campaign if debtor.channel == "sms" else email
                proposal = build_proposal(chosen, 0, account, datetime.now(UTC))
                assert isinstance(proposal, ReminderProposed)
                sent_at[debtor.address] = proposal.occurred_at
                headers = [
                    ("x-parley-event-type", ReminderProposed.event_type.encode()),
                    ("traceparent", _traceparent().encode()),
                ]
                pending.append(
                    await producer.send(
                        topic,
                        proposal.model_dump_json().encode(),
                        key=proposal.kafka_key(),
                        headers=headers,
                    )
                )
            await asyncio.gather(*pending)
            offered = count / (time.perf_counter() - started)
            await wait_for_acceptances(client, stack.url_of("sandbox"), seen, expected, progress)
            await asyncio.sleep(2.0)
            await seen.poll(client, stack.url_of("sandbox"))
    finally:
        await producer.stop()
    latencies = sorted(
        (seen.received_at[address] - sent_at[address]).total_seconds() for address in expected
    )
    check = exactly_once(seen, expected)
    return {
        "reminders": count,
        "target_rate": rate,
        "offered_rate": offered,
        "missing": check["missing"],
        "duplicated": check["duplicated"],
        "p50_ms": 1000 * percentile(latencies, 0.50),
        "p95_ms": 1000 * percentile(latencies, 0.95),
        "p99_ms": 1000 * percentile(latencies, 0.99),
        "max_ms": 1000 * latencies[-1],
        "mean_ms": 1000 * statistics.fmean(latencies),
        "latencies_ms": [round(1000 * value, 2) for value in latencies],
    }


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def measure(
    stack: LocalStack,
    sizes: list[int],
    latency_seconds: float,
    load_fraction: float,
    progress: Progress,
) -> dict[str, Any]:
    """Each size in turn (baseline, then Parley), then latency for ``latency_seconds`` at
    a fraction of the throughput measured at the largest size (at least 40 reminders)."""
    runs = []
    first = 0
    for size in sorted(sizes):
        progress(f"raw broker pass-through of {size:,} messages (baseline)")
        base = await raw_pass_through(stack.broker.bootstrap_servers, size)
        progress(f"  {base.per_second:,.0f} msg/s")
        progress(f"end to end: {size:,} reminders through scheduler, consent and messenger")
        result = await throughput(stack, size, progress, first)
        first += size
        progress(f"  {result['per_second']:,.0f} reminders/s ({result['seconds']:.1f} s)")
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in sorted(result["cpu_ms_per_reminder"].items()))
        progress(
            f"  CPU ms per reminder: {cpu}, broker + PostgreSQL + bench"
            f" {result['other_cpu_ms_per_reminder']:.2f};"
            f" {result['busy_cores']:.2f} of {result['cores']} cores busy"
        )
        runs.append(
            {
                "reminders": size,
                "baseline": {
                    "messages": base.messages,
                    "seconds": base.seconds,
                    "per_second": base.per_second,
                },
                "throughput": result,
                "ratio_to_baseline": result["per_second"] / base.per_second,
            }
        )
    rate = max(1.0, load_fraction * runs[-1]["throughput"]["per_second"])
    progress(f"latency at a fixed load of {rate:,.0f}/s ({load_fraction:.0%} of the throughput)")
    count = max(40, round(rate * latency_seconds))
    timing = await latency(stack, count, rate, progress, first=first)
    progress(f"  p50 {timing['p50_ms']:,.0f} ms, p99 {timing['p99_ms']:,.0f} ms")
    return {"runs": runs, "latency": timing, "load_fraction": load_fraction}


def run(
    reminders: list[int],
    latency_seconds: float,
    load_fraction: float = 0.5,
    progress: Progress = print,
    workdir: Path | None = None,
    messengers: int = DEFAULT_MESSENGERS,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="parley-e2e-", dir=workdir) as directory:
        stack = BenchStack(
            Path(directory),
            simulated_start=SIMULATED_START,
            progress=lambda _: None,
            messengers=messengers,
        )
        progress(
            "starting the local stack (broker, PostgreSQL, stand-ins, three services;"
            f" {messengers} messenger process{'es' if messengers > 1 else ''})"
        )
        stack.start()
        try:
            measured = asyncio.run(
                measure(stack, reminders, latency_seconds, load_fraction, progress)
            )
            return {**measured, "messenger_processes": messengers}
        except BaseException:
            progress(f"failed; service logs were in {stack.logs}")
            for log in sorted(stack.logs.glob("*.log")):
                tail = log.read_text(errors="replace").splitlines()[-5:]
                progress(f"--- {log.name} (last lines)\n" + "\n".join(tail))
            raise
        finally:
            stack.stop(remove_data=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--reminders", type=int, nargs="+", default=[100_000], help="one or more sizes"
    )
    parser.add_argument(
        "--latency-seconds", type=float, default=60.0, help="how long the fixed load runs"
    )
    parser.add_argument(
        "--load", type=float, default=0.5, help="offered load as a fraction of the throughput"
    )
    parser.add_argument(
        "--messengers",
        type=int,
        default=DEFAULT_MESSENGERS,
        help="messenger processes in the consumer group (the costliest service per reminder)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = parser.parse_args()
    results = run(args.reminders, args.latency_seconds, args.load, messengers=args.messengers)
    summary = {**results, "latency": dict(results["latency"])}
    del summary["latency"]["latencies_ms"]
    print(json.dumps(summary, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
