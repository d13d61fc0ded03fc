"""The scheduler's use cases: each takes its input plus the store, publisher and clock."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from parley_shared.clock import Clock
from parley_shared.events import ContactDecision, ReminderProposed

from parley_scheduler.adapters.database import SchedulerStore
from parley_scheduler.domain.accounts import RejectedRow, parse_accounts
from parley_scheduler.domain.campaign import parse_campaign
from parley_scheduler.domain.planning import Unreachable, plan_first_step

log = logging.getLogger(__name__)


class Publisher(Protocol):
    async def publish(self, proposals: list[ReminderProposed]) -> None: ...


@dataclass(frozen=True)
class RunReport:
    campaign_id: str
    campaign_version: int
    accounts: int
    rejected_rows: tuple[RejectedRow, ...]
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
    """Propose a campaign's first step for every usable account.

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
        campaign.version,
        len(plan.proposals),
        new,
        published,
        len(accounts.rejected),
    )
    return RunReport(
        campaign_id=campaign.id,
        campaign_version=campaign.version,
        accounts=len(accounts.accounts),
        rejected_rows=accounts.rejected,
        unreachable=plan.unreachable,
        planned=len(plan.proposals),
        new=new,
        published=published,
    )


async def publish_pending(store: SchedulerStore, publisher: Publisher, clock: Clock) -> int:
    """Publish every stored proposal not yet published; marks them only after the broker
    acknowledged them (a crash in between republishes, and consumers are idempotent)."""
    published = 0
    while pending := await store.unpublished(limit=1000):
        await publisher.publish(pending)
        await store.mark_published([proposal.proposal_id for proposal in pending], clock.now())
        published += len(pending)
    return published


async def record_decision(decision: ContactDecision, store: SchedulerStore) -> None:
    if not await store.record_decision(decision):
        log.debug("decision for proposal %s was already recorded", decision.proposal_id)
