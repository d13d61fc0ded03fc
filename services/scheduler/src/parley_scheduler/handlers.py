"""The scheduler's use cases: each takes its input plus the store, publisher and clock."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Protocol

from parley_shared.clock import Clock
from parley_shared.events import ContactDecision, DeliveryReported, ReminderProposed

from parley_scheduler.adapters.database import ImportCounts, SchedulerStore, StoredCampaign
from parley_scheduler.adapters.publisher import OutgoingProposal
from parley_scheduler.domain.accounts import Account, RowProblem, parse_accounts, read_accounts
from parley_scheduler.domain.campaign import CampaignError, parse_campaign
from parley_scheduler.domain.lifecycle import Action, CampaignStatus, check_allowed
from parley_scheduler.domain.planning import (
    Unreachable,
    build_proposal,
    plan_first_step,
    repropose,
)
from parley_scheduler.domain.templates import (
    TemplateChecker,
    TemplateProblem,
    check_campaign_templates,
)

log = logging.getLogger(__name__)

# Accounts per database round trip when importing or planning.
BATCH = 5000


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


async def record_decision(decision: ContactDecision, store: SchedulerStore) -> None:
    if not await store.record_decision(decision):
        log.debug("decision for proposal %s was already recorded", decision.proposal_id)


async def record_delivery(report: DeliveryReported, store: SchedulerStore) -> None:
    await store.record_delivery(report)


# Ticks ---------------------------------------------------------------------------------------


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
            # aclosing: leaving the loop early returns the streaming connection at once.
            async with aclosing(store.due_for_step(stored, index, now, BATCH)) as batches:
                async for batch in batches:
                    # Checked per batch: pausing stops a large campaign's tick part-way too.
                    if not await store.is_active(campaign.id):
                        break
                    planned = [
                        proposal
                        for proposal in (
                            build_proposal(campaign, index, c.account, now) for c in batch
                        )
                        if isinstance(proposal, ReminderProposed)
                    ]
                    report.planned += len(planned)
                    new = await store.add_and_publish(planned, publisher.publish, now)
                    report.new += new
                    report.published += new
                    report.by_campaign[campaign.id] = report.by_campaign.get(campaign.id, 0) + new
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
