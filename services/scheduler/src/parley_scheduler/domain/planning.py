"""Turning a campaign and its accounts into proposals, with ids that never change.

The rules here are pure; the store applies the same rules in SQL to plan a million accounts
at once, and the preview applies these functions directly. A test keeps the two in step.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from parley_shared.events import Channel, DeliveryStatus, ReminderProposed

from parley_scheduler.domain.accounts import Account
from parley_scheduler.domain.campaign import Audience, Campaign, StepCondition

# Fixed namespace: the same campaign step for the same debtor always gets the same id, across
# restarts and across scheduler instances, which is what makes proposing idempotent.
PROPOSAL_NAMESPACE = uuid.UUID("6f1c2d7e-3b0a-5c4e-9f21-7a8b9c0d1e2f")
# Outcomes that make an "only if the previous step was undelivered" step due.
UNDELIVERED = frozenset({DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED, DeliveryStatus.EXPIRED})
# Debtors whose zone is unknown are planned on UTC dates; the consent rules still judge the hour.
PLANNING_ZONE_FALLBACK = "UTC"


def proposal_id(
    campaign_id: str, version: int, step: int, debtor_id: str, attempt: int = 0
) -> uuid.UUID:
    name = f"{campaign_id}/{version}/{step}/{debtor_id}"
    # Attempt 0 keeps the walking skeleton's ids, so stores written by it stay consistent.
    return uuid.uuid5(PROPOSAL_NAMESPACE, name if attempt == 0 else f"{name}/{attempt}")


def local_date(instant: datetime, zone: str | None) -> date:
    return instant.astimezone(ZoneInfo(zone or PLANNING_ZONE_FALLBACK)).date()


@dataclass(frozen=True)
class Unreachable:
    debtor_id: str
    reason: str


@dataclass(frozen=True)
class Plan:
    proposals: tuple[ReminderProposed, ...]
    unreachable: tuple[Unreachable, ...]


def audience_matches(audience: Audience, account: Account) -> bool:
    days = account.days_past_due
    balance = account.balance_amount
    if audience.min_days_past_due is not None and (
        days is None or days < audience.min_days_past_due
    ):
        return False
    if audience.max_days_past_due is not None and (
        days is None or days > audience.max_days_past_due
    ):
        return False
    if audience.min_balance is not None and (balance is None or balance < audience.min_balance):
        return False
    if audience.max_balance is not None and (balance is None or balance > audience.max_balance):
        return False
    if audience.jurisdictions and not (
        account.country in audience.jurisdictions or account.jurisdiction in audience.jurisdictions
    ):
        return False
    if not set(audience.flags_required) <= set(account.flags):
        return False
    return not set(audience.flags_excluded) & set(account.flags)


@dataclass(frozen=True)
class DebtorProgress:
    """What already happened to one debtor in one campaign."""

    proposed_steps: frozenset[int] = frozenset()
    # The worst-known outcome per step: whether any message of that step was undelivered.
    undelivered_steps: frozenset[int] = frozenset()


def due_steps(
    campaign: Campaign,
    account: Account,
    started_at: datetime,
    now: datetime,
    progress: DebtorProgress,
) -> list[int]:
    """Steps to propose now: their day has come on the debtor's local calendar, they were
    never proposed, and their conditions hold."""
    today = local_date(now, account.time_zone)
    first_day = local_date(started_at, account.time_zone)
    due = []
    for index, step in enumerate(campaign.steps):
        if index in progress.proposed_steps:
            continue
        if today < first_day + timedelta(days=step.day_offset):
            break
        if StepCondition.SKIP_IF_PAID in step.conditions and account.paid:
            continue
        if StepCondition.ONLY_IF_PREVIOUS_UNDELIVERED in step.conditions and (
            index - 1 not in progress.undelivered_steps
        ):
            continue
        due.append(index)
    return due


def address_for(channel: Channel, account: Account) -> str | None:
    return account.phone if channel is Channel.SMS else account.email


def build_proposal(
    campaign: Campaign,
    step_index: int,
    account: Account,
    now: datetime,
    attempt: int = 0,
) -> ReminderProposed | Unreachable:
    step = campaign.steps[step_index]
    address = address_for(step.channel, account)
    if address is None:
        return Unreachable(account.debtor_id, f"no {step.channel.value} address")
    version = campaign.effective_version
    pid = proposal_id(campaign.id, version, step_index, account.debtor_id, attempt)
    phones = tuple(dict.fromkeys(p for p in (account.phone, *account.other_phones) if p))
    return ReminderProposed(
        # The event id follows the proposal id, so a republished proposal is the same event.
        event_id=uuid.uuid5(pid, "proposed"),
        occurred_at=now,
        debtor_id=account.debtor_id,
        proposal_id=pid,
        campaign_id=campaign.id,
        campaign_version=version,
        step=step_index,
        channel=step.channel,
        address=address,
        time_zone=account.time_zone,
        country=account.country,
        region=account.region,
        city=account.city,
        postal_code=account.postal_code,
        location_phones=phones,
        address_facts=account.sms_facts if step.channel is Channel.SMS else account.email_facts,
        send_window=campaign.send_window.as_event(),
        message_kind=step.message_kind,
        attempt=attempt,
        template=step.template,
        locale=campaign.locale_for(account.locale),
        variables={
            "name": account.name,
            "balance": account.balance,
            "creditor": account.creditor,
            "reference": account.reference,
        },
    )


def repropose(deferred: ReminderProposed, now: datetime) -> ReminderProposed:
    """The same step for the same debtor once more, as the next attempt, with its own
    deterministic id (so two schedulers re-proposing it produce one proposal)."""
    attempt = deferred.attempt + 1
    pid = proposal_id(
        deferred.campaign_id, deferred.campaign_version, deferred.step, deferred.debtor_id, attempt
    )
    return deferred.model_copy(
        update={
            "proposal_id": pid,
            "event_id": uuid.uuid5(pid, "proposed"),
            "attempt": attempt,
            "occurred_at": now,
        }
    )


def plan_first_step(campaign: Campaign, accounts: Iterable[Account], now: datetime) -> Plan:
    proposals: list[ReminderProposed] = []
    unreachable: list[Unreachable] = []
    for account in accounts:
        planned = build_proposal(campaign, 0, account, now)
        if isinstance(planned, Unreachable):
            unreachable.append(planned)
        else:
            proposals.append(planned)
    return Plan(tuple(proposals), tuple(unreachable))
