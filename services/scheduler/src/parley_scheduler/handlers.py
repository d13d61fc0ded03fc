"""The scheduler's use cases: each takes its input plus the store, publisher and clock."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, cast

from parley_shared.clock import Clock
from parley_shared.events import ContactDecision, DeliveryReported

from parley_scheduler.adapters.database import ImportCounts, SchedulerStore, StoredCampaign
from parley_scheduler.domain.accounts import Account, RowProblem, parse_accounts, read_accounts
from parley_scheduler.domain.campaign import CampaignError, parse_campaign
from parley_scheduler.domain.lifecycle import Action, CampaignStatus, check_allowed
from parley_scheduler.domain.planning import (
    OutgoingProposal,
    StepEncoder,
    Unreachable,
    plan_first_step,
    repropose,
)
from parley_scheduler.domain.templates import (
    TemplateChecker,
    TemplateProblem,
    check_campaign_templates,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Accounts per database round trip when importing or planning.
BATCH = 5000
# Planning batches stored and published at once while the next one is read and encoded.
IN_FLIGHT = 2


class Publisher(Protocol):
    async def publish(self, proposals: Sequence[OutgoingProposal]) -> None: ...


@dataclass(frozen=True)
class RunReport:
    campaign_id: str
    campaign_version: int
    accounts: int
    rejected_rows: tuple[RowProblem, ...]
    unreachable: tuple[Unreachable, ...]
    planned: int
    new: int
    published: int


async def run_first_step(
    campaign_yaml: str,
    accounts_csv: str,
    store: SchedulerStore,
    publisher: Publisher,
    clock: Clock,
) -> RunReport:
    """Propose a campaign's first step for every usable account, at once (the walking
    skeleton's one-shot run, kept for the demo and quick trials).

    Proposal ids are deterministic, so running the same campaign again plans the same ids,
    stores nothing new and publishes nothing new. Proposals are stored before they are
    published (an outbox): a crash in between is repaired by ``publish_pending``.
    """
    campaign = parse_campaign(campaign_yaml)
    accounts = parse_accounts(accounts_csv)
    plan = plan_first_step(campaign, accounts.accounts, clock.now())
    new = await store.add_proposals(plan.proposals)
    published = await publish_pending(store, publisher, clock)
    log.info(
        "campaign %s v%d: %d planned, %d new, %d published, %d rows rejected",
        campaign.id,
        campaign.effective_version,
        len(plan.proposals),
        new,
        published,
        len(accounts.rejected),
    )
    return RunReport(
        campaign_id=campaign.id,
        campaign_version=campaign.effective_version,
        accounts=len(accounts.accounts),
        rejected_rows=accounts.rejected,
        unreachable=plan.unreachable,
        planned=len(plan.proposals),
        new=new,
        published=published,
    )


async def publish_pending(store: SchedulerStore, publisher: Publisher, clock: Clock) -> int:
    """Publish every stored proposal not yet published; each batch is marked published only
    after the broker acknowledged it (a crash in between republishes the same events, with
    the same ids, and consumers are idempotent)."""
    published = 0
    while sent := await store.publish_pending_batch(publisher.publish, clock.now()):
        published += sent
    return published


async def record_decisions(decisions: Sequence[ContactDecision], store: SchedulerStore) -> int:
    """Store a batch of decisions, each once; returns how many were new (a redelivered
    decision changes nothing)."""
    if not decisions:
        return 0
    new = await store.record_decisions(decisions)
    log.debug("recorded %d decisions, %d already recorded", new, len(decisions) - new)
    return new


async def record_deliveries(reports: Sequence[DeliveryReported], store: SchedulerStore) -> int:
    """Store a batch of delivery outcomes, the newest per proposal; returns how many
    proposals' outcomes changed."""
    if not reports:
        return 0
    changed = await store.record_deliveries(reports)
    log.debug("recorded %d delivery reports, %d outcomes changed", len(reports), changed)
    return changed


# Ticks ---------------------------------------------------------------------------------------


def settle_heap() -> None:
    """Called once the service has started: moves everything alive now (modules, models,
    clients) out of the cyclic garbage collector's sight. A large tick allocates millions
    of short-lived objects; without this, every full collection they trigger walks the
    whole start-up heap again, about a quarter of a tick's time. Only the first call in a
    process freezes (frozen objects are never collected, so freezing again and again, as
    many apps started in one test process would, could keep garbage forever)."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


@dataclass
class TickReport:
    planned: int = 0
    new: int = 0
    reproposed: int = 0
    published: int = 0
    by_campaign: dict[str, int] = field(default_factory=dict)


async def tick(store: SchedulerStore, publisher: Publisher, clock: Clock) -> TickReport:
    """One pass of the scheduler's time: propose every step that fell due on its debtor's
    local date, re-propose deferred proposals whose time has come, publish the outbox.
    Safe to run again, after a crash, or on two instances at once: ids are deterministic
    and stored once."""
    now = clock.now()
    report = TickReport()
    for stored in await store.all_campaigns(CampaignStatus.ACTIVE):
        campaign = stored.campaign
        for index in range(len(campaign.steps)):
            encoder = StepEncoder(campaign, index, now)
            # Leaving the loop early stops the reading and returns its connection at once.
            async with (
                _read_ahead(
                    store.due_for_step(stored, index, now, encoder.paths, BATCH)
                ) as batches,
                _Overlap(IN_FLIGHT) as flights,
            ):
                async for batch in batches:
                    # Checked per batch: pausing stops a large campaign's tick part-way too
                    # (the batches already in flight still finish).
                    if not await store.is_active(campaign.id):
                        break
                    planned = [
                        proposal
                        for proposal in map(encoder.encode, batch)
                        if not isinstance(proposal, Unreachable)
                    ]
                    report.planned += len(planned)
                    # The next batch is read and encoded while this one is stored and sent.
                    await flights.start(store.add_and_publish(planned, publisher.publish, now))
            report.new += flights.done
            report.published += flights.done
            report.by_campaign[campaign.id] = report.by_campaign.get(campaign.id, 0) + flights.done
    while again := await store.repropose_due(now, repropose):
        report.reproposed += again
    report.published += await publish_pending(store, publisher, clock)
    if report.new or report.reproposed:
        log.info(
            "tick at %s: %d new proposals, %d re-proposed, %d published",
            now.isoformat(),
            report.new,
            report.reproposed,
            report.published,
        )
    return report


@dataclass(frozen=True)
class _Failed:
    error: Exception


_END = object()


@asynccontextmanager
async def _read_ahead(batches: AsyncGenerator[T, None]) -> AsyncIterator[AsyncIterator[T]]:
    """The batches of ``batches``, the next one read (by the database) while the current
    one is worked on (by this process); at most two are held ahead."""
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=1)

    async def pump() -> None:
        try:
            async for batch in batches:
                await queue.put(batch)
        except Exception as error:
            await queue.put(_Failed(error))
            return
        finally:
            await batches.aclose()
        await queue.put(_END)

    async def read() -> AsyncIterator[T]:
        while (item := await queue.get()) is not _END:
            if isinstance(item, _Failed):
                raise item.error
            yield cast(T, item)

    reader = asyncio.create_task(pump())
    try:
        yield read()
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


class _Overlap:
    """Runs at most ``limit`` batches at once and adds up what they return. The first
    failure is raised and the others are cancelled (their transactions roll back, so nothing
    is marked published that the broker did not acknowledge)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._running: set[asyncio.Task[int]] = set()
        self.done = 0

    async def __aenter__(self) -> _Overlap:
        return self

    async def __aexit__(self, failure: type[BaseException] | None, *_: object) -> None:
        try:
            while failure is None and self._running:
                await self._collect()
        finally:
            for task in self._running:
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)
            self._running.clear()

    async def start(self, work: Coroutine[Any, Any, int]) -> None:
        while len(self._running) >= self._limit:
            await self._collect()
        self._running.add(asyncio.ensure_future(work))

    async def _collect(self) -> None:
        finished, self._running = await asyncio.wait(
            self._running, return_when=asyncio.FIRST_COMPLETED
        )
        for task in finished:
            self.done += task.result()


# Campaigns -----------------------------------------------------------------------------------


class TemplatesRefused(ValueError):
    def __init__(self, problems: list[TemplateProblem]) -> None:
        super().__init__("; ".join(problem.describe() for problem in problems))
        self.problems = problems


async def save_campaign(
    source: str, actor: str, store: SchedulerStore, clock: Clock, *, campaign_id: str | None
) -> StoredCampaign:
    """Create (``campaign_id`` None) or change a campaign; a change is a new version."""
    campaign = parse_campaign(source)
    if campaign_id is None:
        return await store.create_campaign(campaign, source, actor, clock.now())
    if campaign.id != campaign_id:
        raise CampaignError([f"line 1, id: {campaign.id!r} does not match {campaign_id!r}"])
    return await store.update_campaign(campaign, source, actor, clock.now())


async def change_status(
    campaign_id: str,
    action: Action,
    actor: str,
    store: SchedulerStore,
    checker: TemplateChecker,
    clock: Clock,
) -> StoredCampaign:
    if action is Action.ACTIVATE:
        current = await store.campaign(campaign_id)
        check_allowed(action, current.status)
        # Checked before anything changes: a campaign never starts with unchecked templates.
        problems = await check_campaign_templates(current.campaign, checker)
        if problems:
            raise TemplatesRefused(problems)
    return await store.change_status(campaign_id, action, actor, clock.now())


# Accounts ------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)

    def add(self, counts: ImportCounts) -> None:
        self.inserted += counts.inserted
        self.updated += counts.updated
        self.unchanged += counts.unchanged


async def import_accounts(
    lines: Iterable[str], store: SchedulerStore, clock: Clock, first_row: int = 2
) -> ImportReport:
    """Validate and store accounts as they are read, a batch at a time."""
    report = ImportReport()
    batch: list[Account] = []
    for item in read_accounts(lines, first_row):
        report.rows += 1
        if item.account is None:
            report.rejected.extend(item.problems)
            continue
        report.warnings.extend(item.problems)
        batch.append(item.account)
        if len(batch) >= BATCH:
            report.add(await store.upsert_accounts(batch, clock.now()))
            batch = []
    report.add(await store.upsert_accounts(batch, clock.now()))
    return report
