"""The fault harness: reminders through the real stack (Tansu on s3 storage, PostgreSQL, the
provider stand-ins and the three services as processes) while the services are killed with
``kill -9`` and restarted, the broker crashes, PostgreSQL restarts, Twilio's stand-in has an
outage, bad events and forged webhooks arrive and debtors text STOP. Afterwards, from the
stand-ins' own records and the services' stores: nothing sent twice, nothing approved left
without an outcome, every acknowledged opt-out honoured, bad input dead-lettered with its
reason, every service healthy.

Size: ``PARLEY_FAULTS_REMINDERS`` (default 50,000); seed: ``PARLEY_FAULTS_SEED`` (default
random, printed). Run alone with ``pytest -m faults -s``.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka.errors import KafkaError
from parley_cli.local.synthetic import Debtor, accounts_csv

from tests.faults.harness import (
    CAMPAIGNS,
    SIMULATED_START,
    FaultStack,
    Injected,
    StandInRecords,
    Stores,
    WebhookProbe,
    consumer_lags,
    dead_letters_logged,
    inject_malformed,
    make_debtors,
    malformed_webhooks,
    opt_out_by_text,
    read_dead_letters,
    sign_up_timed_outage,
    wait_ready,
)

REMINDERS = int(os.environ.get("PARLEY_FAULTS_REMINDERS", "50000"))
SEED = int(os.environ.get("PARLEY_FAULTS_SEED", str(random.SystemRandom().randrange(10**6))))
SERVICE_KILLS = 12  # four per service
OPT_OUTS = max(10, min(300, REMINDERS // 100))
# No new outcome for this long means the pipeline is stuck: stop waiting and report.
STALL_SECONDS = 240.0
FINAL = ("sent", "failed", "expired", "unknown", "suppressed")

# A stuck pipeline is caught by STALL_SECONDS; this bound is for a slow machine, where the
# 50,000-reminder run (the broker's log on moto S3 is the slow part) once took 27 minutes.
pytestmark = [pytest.mark.faults, pytest.mark.timeout(2700)]


@dataclass(order=True)
class Step:
    """A fault, due once this fraction of the reminders has reached the stand-ins."""

    at: float
    kind: str
    target: str = ""


@dataclass
class Run:
    rng: random.Random
    stack: FaultStack
    debtors: list[Debtor]
    records: StandInRecords = field(default_factory=StandInRecords)
    kills: Counter[str] = field(default_factory=Counter)
    recoveries: list[tuple[str, float]] = field(default_factory=list)
    injected: list[Injected] = field(default_factory=list)
    probes: list[WebhookProbe] = field(default_factory=list)
    opt_outs: dict[str, datetime] = field(default_factory=dict)
    opt_out_refusals: int = 0
    poll_errors: Counter[str] = field(default_factory=Counter)
    victims: list[Debtor] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def progress(self) -> float:
        return len(self.records.accepted) / len(self.debtors)


def plan(rng: random.Random) -> list[Step]:
    services = ("scheduler", "consent", "messenger")
    steps = [Step(rng.uniform(0.02, 0.85), "kill", services[n % 3]) for n in range(SERVICE_KILLS)]
    steps += [
        Step(rng.uniform(0.25, 0.6), "crash broker"),
        Step(rng.uniform(0.25, 0.6), "restart postgres"),
        Step(rng.uniform(0.1, 0.35), "provider outage"),
        Step(rng.uniform(0.05, 0.2), "malformed events", "early"),
        Step(rng.uniform(0.5, 0.8), "malformed events", "late"),
        Step(rng.uniform(0.05, 0.7), "malformed webhooks"),
    ]
    return sorted(steps)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[FaultStack]:
    started = FaultStack(tmp_path / "stack", simulated_start=SIMULATED_START)
    started.start()
    try:
        yield started
    finally:
        started.stop(remove_data=True)


async def load(client: httpx.AsyncClient, scheduler: str, debtors: list[Debtor]) -> None:
    for start in range(0, len(debtors), 25_000):
        part = debtors[start : start + 25_000]
        response = await client.post(
            scheduler + "/v1/accounts/imports",
            params={"first_row": start + 2},
            content=accounts_csv(part).encode(),
            headers={"content-type": "text/csv"},
        )
        response.raise_for_status()
        assert response.json()["rejected"] == []
    for source in CAMPAIGNS:
        created = await client.post(
            scheduler + "/v1/campaigns",
            content=source.encode(),
            headers={"content-type": "application/yaml"},
        )
        created.raise_for_status()
        activated = await client.post(scheduler + f"/v1/campaigns/{created.json()['id']}/activate")
        activated.raise_for_status()


async def follow_stand_ins(run: Run, client: httpx.AsyncClient) -> None:
    """Keeps ``run.records`` current: the faults are timed by it. A failed poll (a pooled
    connection the stand-in closed as it was reused) is retried a second later; ending
    here would freeze the progress, and every later fault would wait out STALL_SECONDS."""
    sandbox = run.stack.url_of("sandbox")
    while not run.done.is_set():
        try:
            await run.records.poll(client, sandbox)
        except httpx.HTTPError as error:
            run.poll_errors[type(error).__name__] += 1
        await asyncio.sleep(1.0)


async def until_progress(run: Run, at: float, started: float) -> None:
    last, last_change = -1, time.monotonic()
    while run.progress < at and not run.done.is_set():
        count = len(run.records.accepted)
        if count != last:
            last, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > STALL_SECONDS:
            return  # stuck: do the fault anyway, the final checks will say what is missing
        await asyncio.sleep(0.5)


async def drive_faults(run: Run, client: httpx.AsyncClient, steps: list[Step]) -> None:
    stack, started = run.stack, time.monotonic()
    for step in steps:
        await until_progress(run, step.at, started)
        moment = f"{time.monotonic() - started:6.1f}s {run.progress:5.1%}"
        if step.kind == "kill":
            service = stack.service(step.target)
            service.kill()  # SIGKILL
            run.kills[step.target] += 1
            await asyncio.sleep(run.rng.uniform(0.1, 2.0))
            service.start()
            run.recoveries.append((step.target, await wait_ready(service)))
        elif step.kind == "crash broker":
            await asyncio.to_thread(stack.broker.kill)
            run.kills["broker"] += 1
            await asyncio.sleep(run.rng.uniform(0.5, 3.0))
            await asyncio.to_thread(stack.broker.restart)
            for service in stack.services[1:]:
                run.recoveries.append((f"{service.name} after broker", await wait_ready(service)))
        elif step.kind == "restart postgres":
            await asyncio.to_thread(stack.postgres.stop)
            run.kills["postgres"] += 1
            await asyncio.sleep(run.rng.uniform(0.5, 3.0))
            await asyncio.to_thread(stack.postgres.start)
            for service in stack.services[1:]:
                run.recoveries.append((f"{service.name} after postgres", await wait_ready(service)))
        elif step.kind == "provider outage":
            await sign_up_timed_outage(client, stack.url_of("sandbox"))
        elif step.kind == "malformed events":
            run.injected += await inject_malformed(stack.broker.bootstrap_servers, step.target)
        elif step.kind == "malformed webhooks":
            await wait_ready(stack.service("messenger"))
            victims = run.rng.sample([d for d in run.debtors if d.channel == "sms"], 5)
            run.probes += await malformed_webhooks(client, stack.url_of("messenger"), victims)
            run.victims += victims
        print(f"  {moment} {step.kind} {step.target}", flush=True)


async def send_opt_outs(run: Run, client: httpx.AsyncClient, chosen: list[Debtor]) -> None:
    moments = sorted(run.rng.uniform(0.0, 0.9) for _ in chosen)
    sandbox = run.stack.url_of("sandbox")
    for debtor, at in zip(chosen, moments, strict=True):
        await until_progress(run, at, time.monotonic())
        for _ in range(5):  # the messenger may be down at this moment: the debtor tries again
            acknowledged = await opt_out_by_text(client, sandbox, debtor.address)
            if acknowledged is not None:
                run.opt_outs[debtor.address] = acknowledged
                break
            run.opt_out_refusals += 1
            await asyncio.sleep(1.0)


async def settle(run: Run, stores: Stores, client: httpx.AsyncClient) -> dict[str, int]:
    """Waits until every proposal is decided, every approval has a final outcome, the
    downstream consumers (the scheduler's decisions and deliveries, consent's contact
    counts) have every outcome and nothing has moved for a while, or nothing has moved for
    STALL_SECONDS."""
    last: tuple[int, ...] = ()
    last_change = time.monotonic()
    while True:
        (row,) = await stores.rows(
            """
            select
              (select count(*) from scheduler.proposals),
              (select count(*) from consent.decisions),
              (select count(*) from consent.decisions d left join messenger.sends s
                 using (proposal_id)
               where d.verdict = 'approved' and (s.status is null or s.status = 'claimed')),
              (select count(*) from messenger.sends),
              (select count(*) from messenger.sends where status = 'sent'),
              (select count(*) from scheduler.decisions),
              (select count(*) from scheduler.deliveries),
              (select count(*) from consent.contacts)
            """
        )
        counts = dict(
            zip(
                (
                    "proposals",
                    "decisions",
                    "waiting",
                    "sends",
                    "sent",
                    "scheduler_decisions",
                    "scheduler_deliveries",
                    "consent_contacts",
                ),
                (int(value) for value in row),
                strict=True,
            )
        )
        now = (*counts.values(), len(run.records.accepted))
        if now != last:
            last, last_change = now, time.monotonic()
        quiet = time.monotonic() - last_change
        if (
            counts["proposals"] >= len(run.debtors)
            and counts["decisions"] >= counts["proposals"]
            and counts["waiting"] == 0
            and counts["scheduler_decisions"] >= counts["decisions"]
            and counts["scheduler_deliveries"] >= counts["sends"]
            and counts["consent_contacts"] >= counts["sent"]
            and quiet > 10.0  # a late duplicate or a lagging consumer would show up here
        ) or quiet > STALL_SECONDS:
            await run.records.poll(client, run.stack.url_of("sandbox"))
            return counts
        await asyncio.sleep(2.0)


@pytest.mark.faults
async def test_nothing_twice_nothing_lost_under_faults(stack: FaultStack) -> None:
    rng = random.Random(SEED)
    print(f"\nfault harness: {REMINDERS:,} reminders, seed {SEED}", flush=True)
    debtors = make_debtors(REMINDERS)
    by_address = {debtor.address: debtor for debtor in debtors}
    run = Run(rng, stack, debtors)
    stores = Stores(stack.postgres.url())
    steps = plan(rng)
    chosen = rng.sample([d for d in debtors if d.channel == "sms"], OPT_OUTS)
    began = time.monotonic()
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client:
        await load(client, stack.url_of("scheduler"), debtors)
        loaded = time.monotonic() - began
        print(f"  {loaded:6.1f}s accounts imported, campaigns active", flush=True)
        follower = asyncio.create_task(follow_stand_ins(run, client))
        opt_outs = asyncio.create_task(send_opt_outs(run, client, chosen))
        try:
            await drive_faults(run, client, steps)
            await opt_outs
            outcome = await settle(run, stores, client)
        finally:
            run.done.set()
            await follower
            opt_outs.cancel()
        await run.records.poll(client, stack.url_of("sandbox"))
        health = {
            service.name: (await client.get(service.url + service.health_path)).status_code
            for service in stack.services
        }
    elapsed = time.monotonic() - began

    verdicts = await stores.counts("select verdict, count(*) from consent.decisions group by 1")
    statuses = await stores.counts("select status, count(*) from messenger.sends group by 1")
    undecided = await stores.rows(
        "select p.proposal_id from scheduler.proposals p left join consent.decisions d"
        " using (proposal_id) where d.proposal_id is null limit 20"
    )
    lost = await stores.rows(
        "select d.proposal_id, d.debtor_id, s.status from consent.decisions d"
        " left join messenger.sends s using (proposal_id)"
        " where d.verdict = 'approved' and (s.status is null or s.status = 'claimed') limit 20"
    )
    unapproved_sends = await stores.rows(
        "select s.proposal_id, s.status from messenger.sends s left join consent.decisions d"
        " using (proposal_id) where d.verdict is distinct from 'approved' limit 20"
    )
    send_rows = {
        str(address): (str(debtor_id), str(status))
        for address, debtor_id, status in await stores.rows(
            "select address, debtor_id, status from messenger.sends"
        )
    }
    lags: dict[str, int] | str
    try:  # a diagnostic only: it must not fail the run
        lags = await asyncio.wait_for(consumer_lags(stack.broker.bootstrap_servers), 120)
    except (TimeoutError, KafkaError) as error:
        lags = f"not read ({type(error).__name__})"
    dead_letters = await read_dead_letters(
        stack.broker.bootstrap_servers, {injected.key for injected in run.injected}
    )
    await stores.dispose()

    accepted = run.records.by_address()
    duplicates = {address: n for address, n in accepted.items() if n > 1}
    strangers = [address for address in accepted if address not in by_address]
    # The stand-in accepted it, yet the messenger's record says it never left.
    misreported = [
        (by_address[a].debtor_id, send_rows.get(a, ("", "no row"))[1])
        for a in accepted
        if a in by_address and send_rows.get(a, ("", ""))[1] not in ("sent", "unknown")
    ]
    # The messenger says the provider took it, yet the stand-in has no record of it.
    phantom = [a for a, (_, status) in send_rows.items() if status == "sent" and a not in accepted]
    late_sends = []
    for item in run.records.accepted:
        acknowledged = run.opt_outs.get(item.address)
        if acknowledged is not None and item.received_at > acknowledged + timedelta(seconds=1):
            late_sends.append((by_address[item.address].debtor_id, item.received_at - acknowledged))
    missing_letters = [
        injected
        for injected in run.injected
        if not any(
            letter.key == injected.key and letter.source == injected.topic and letter.reason
            for letter in dead_letters
        )
    ]
    victims_suppressed = [
        v.debtor_id for v in run.victims if send_rows.get(v.address, ("", ""))[1] == "suppressed"
    ]
    alive = {service.name: not service.exited() for service in stack.services}
    logged_letters = {
        name: dict(counts) for name, counts in dead_letters_logged(stack.services).items() if counts
    }

    print(
        f"\nfault harness summary (seed {SEED}, {REMINDERS:,} reminders, "
        f"{elapsed:.0f} s in all, {loaded:.0f} s of it loading accounts)\n"
        f"  consent verdicts: {dict(verdicts)}\n"
        f"  messenger outcomes: {dict(statuses)}\n"
        f"  stand-in acceptances: {sum(accepted.values()):,} for {len(accepted):,} addresses\n"
        f"  kills: {dict(run.kills)}; slowest recovery: "
        f"{max((s for _, s in run.recoveries), default=0):.1f} s\n"
        f"  opt-outs acknowledged: {len(run.opt_outs)} of {OPT_OUTS} "
        f"({run.opt_out_refusals} attempts refused while the messenger was down)\n"
        f"  bad events injected: {len(run.injected)}, dead letters: {len(dead_letters)} "
        f"{dict(Counter(letter.source for letter in dead_letters))}; "
        f"logged by the services: {logged_letters}\n"
        f"  forged/broken webhooks: {Counter(p.status for p in run.probes)}\n"
        f"  stand-in polls retried: {dict(run.poll_errors)}\n"
        f"  settled: {outcome}; health: {health}\n"
        f"  consumer lag when settled: {lags}",
        flush=True,
    )

    # A failure names the run's seed on its first line: CI shows little more than that.
    try:
        assert sum(run.kills[s] for s in ("scheduler", "consent", "messenger")) >= 10
        assert run.kills["broker"] == 1 and run.kills["postgres"] == 1
        assert duplicates == {}, f"sent twice: {len(duplicates)} addresses"
        assert strangers == []
        assert outcome["proposals"] == REMINDERS
        assert outcome["scheduler_decisions"] == outcome["decisions"], (
            "the scheduler missed decisions"
        )
        assert undecided == [], "proposals consent never decided"
        assert outcome["scheduler_deliveries"] == outcome["sends"], (
            "final outcomes the scheduler never recorded"
        )
        assert outcome["consent_contacts"] == outcome["sent"], (
            "sends consent never counted towards its frequency caps"
        )
        assert lost == [], "approved reminders without a final outcome"
        assert unapproved_sends == [], "sends without an approval"
        assert set(statuses) <= set(FINAL)
        assert misreported == [], "accepted by the provider but recorded as not sent"
        assert phantom == [], "recorded as sent but never accepted by the provider"
        assert len(run.opt_outs) >= OPT_OUTS // 2
        assert late_sends == [], "sent more than 1 s after an acknowledged opt-out"
        assert run.injected
        assert [(m.topic, m.what) for m in missing_letters] == [], (
            f"not dead-lettered with a reason: {[(m.key, m.what) for m in missing_letters]}; "
            f"the topic holds {dict(Counter(letter.source for letter in dead_letters))}, "
            f"the services logged {logged_letters}"
        )
        assert [p for p in run.probes if p.status != p.expected] == []
        assert run.victims and victims_suppressed == [], "a forged STOP suppressed a debtor"
        assert all(alive.values()), alive
        assert set(health.values()) == {200}, health
    except AssertionError as failure:
        raise AssertionError(f"seed {SEED}, {REMINDERS:,} reminders: {failure}") from None
