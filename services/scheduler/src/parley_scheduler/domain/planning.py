"""Turning a campaign and its accounts into proposals, with ids that never change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from parley_shared.events import Channel, ReminderProposed

from parley_scheduler.domain.accounts import Account
from parley_scheduler.domain.campaign import Campaign

# Fixed namespace: the same campaign step for the same debtor always gets the same id, across
# restarts and across scheduler instances, which is what makes proposing idempotent.
PROPOSAL_NAMESPACE = uuid.UUID("6f1c2d7e-3b0a-5c4e-9f21-7a8b9c0d1e2f")


def proposal_id(campaign: Campaign, step: int, debtor_id: str) -> uuid.UUID:
    return uuid.uuid5(PROPOSAL_NAMESPACE, f"{campaign.id}/{campaign.version}/{step}/{debtor_id}")


@dataclass(frozen=True)
class Unreachable:
    debtor_id: str
    reason: str


@dataclass(frozen=True)
class Plan:
    proposals: tuple[ReminderProposed, ...]
    unreachable: tuple[Unreachable, ...]


def plan_first_step(campaign: Campaign, accounts: tuple[Account, ...], now: datetime) -> Plan:
    step_index = 0
    step = campaign.steps[step_index]
    proposals: list[ReminderProposed] = []
    unreachable: list[Unreachable] = []
    for account in accounts:
        address = account.phone if step.channel is Channel.SMS else account.email
        if address is None:
            unreachable.append(Unreachable(account.debtor_id, f"no {step.channel.value} address"))
            continue
        pid = proposal_id(campaign, step_index, account.debtor_id)
        proposals.append(
            ReminderProposed(
                # The event id follows the proposal id, so a republished proposal is the same event.
                event_id=uuid.uuid5(pid, "proposed"),
                occurred_at=now,
                debtor_id=account.debtor_id,
                proposal_id=pid,
                campaign_id=campaign.id,
                campaign_version=campaign.version,
                step=step_index,
                channel=step.channel,
                address=address,
                time_zone=account.time_zone,
                country=account.country,
                template=step.template,
                locale=account.locale,
                variables={
                    "name": account.name,
                    "balance": account.balance,
                    "creditor": account.creditor,
                    "reference": account.reference,
                },
            )
        )
    return Plan(tuple(proposals), tuple(unreachable))
