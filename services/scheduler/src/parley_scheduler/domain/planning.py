"""Turning a campaign and its accounts into proposals, with ids that never change.

The rules here are pure; the store applies the same rules in SQL to plan a million accounts
at once, and the preview applies these functions directly. A test keeps the two in step.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from parley_shared.events import AddressFacts, Channel, DeliveryStatus, ReminderProposed

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


# The fast path of a large tick ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutgoingProposal:
    """A proposal ready for the outbox and the broker: its event as JSON text (serialised
    once, stored and published as is) plus the columns the outbox keeps beside it."""

    proposal_id: str
    debtor_id: str
    campaign_id: str
    channel: str
    attempt: int
    event_json: str
    campaign_version: int
    step: int


def outgoing(proposal: ReminderProposed) -> OutgoingProposal:
    return OutgoingProposal(
        proposal_id=str(proposal.proposal_id),
        debtor_id=proposal.debtor_id,
        campaign_id=proposal.campaign_id,
        channel=proposal.channel.value,
        attempt=proposal.attempt,
        event_json=proposal.model_dump_json(),
        campaign_version=proposal.campaign_version,
        step=proposal.step,
    )


# uuid5 by hand: ``uuid.uuid5`` builds two UUID objects per call, a visible cost a million
# times over. The version and variant are set as RFC 4122 says; a test compares with uuid.uuid5.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _uuid5(namespace: bytes, name: str) -> str:
    """The text of ``uuid.uuid5(UUID(bytes=namespace), name)``."""
    h = hashlib.sha1(namespace + name.encode(), usedforsecurity=False).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def _uuid_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace("-", ""))


# Pydantic writes compact JSON, non-ASCII kept, with the escapes PostgreSQL's JSON text and
# the standard library also use (a test compares the bytes).
_quote: Callable[[str], str] = json.encoder.encode_basestring
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_SAMPLE = Account(debtor_id="sample", phone="+12125550100", email="sample@example.com")
# What a field missing from a stored account reads as: its default, as validation would fill it.
_ACCOUNT_DEFAULTS = {
    name: _JSON.encode(value)
    for name, value in Account(debtor_id="-").model_dump(mode="json").items()
}
_FACT_DEFAULTS = {
    name: _JSON.encode(value) for name, value in AddressFacts().model_dump(mode="json").items()
}
_FACT_FIELDS = tuple(_FACT_DEFAULTS)
_FACTS_FORMAT = "{{" + ",".join(f'"{name}":{{}}' for name in _FACT_FIELDS) + "}}"
# The account fields a proposal copies, read from the store as JSON text (each value exactly
# as pydantic wrote it when the account was stored).
_COPIED = (
    "time_zone",
    "country",
    "locale",
    "name",
    "balance",
    "creditor",
    "reference",
    "region",
    "city",
    "postal_code",
    "phone",
    "other_phones",
)
_NO_PHONE = frozenset({"null", '""'})


class StepEncoder:
    """``build_proposal(...).model_dump_json()`` for one campaign step at one instant,
    without building models: the event text is put together from the stored account's
    fields as JSON text (``paths`` names them; the store reads them). The parts every
    proposal of the step shares are cut from one proposal built the validated way, so they
    read exactly as it writes them; a test compares the two paths byte for byte."""

    def __init__(self, campaign: Campaign, step_index: int, now: datetime) -> None:
        self._campaign = campaign
        self._step_index = step_index
        step = campaign.steps[step_index]
        self._channel = step.channel.value
        sms = step.channel is Channel.SMS
        address = "phone" if sms else "email"
        facts = "sms_facts" if sms else "email_facts"
        #: JSON paths into a stored account, read as JSON text; ``encode`` takes them in
        #: this order after the debtor id.
        self.paths: tuple[tuple[str, ...], ...] = (
            (address,),
            *((name,) for name in _COPIED),
            (facts,),
            *((facts, name) for name in _FACT_FIELDS),
        )
        self._defaults = (
            _ACCOUNT_DEFAULTS[address],
            *(_ACCOUNT_DEFAULTS[name] for name in _COPIED),
            _ACCOUNT_DEFAULTS[facts],
            *_FACT_DEFAULTS.values(),
        )
        self._version = campaign.effective_version
        self._name_prefix = f"{campaign.id}/{self._version}/{step_index}/"
        sample = build_proposal(campaign, step_index, _SAMPLE, now)
        assert isinstance(sample, ReminderProposed)
        shared = sample.model_dump(mode="json")

        def part(*names: str) -> str:
            return ",".join(f"{_quote(name)}:{_JSON.encode(shared[name])}" for name in names)

        # The event's fields in the order ReminderProposed declares them: runs of shared
        # parts around the debtor's own values.
        self._after_event_id = '",' + part("schema_version", "occurred_at") + ',"debtor_id":'
        self._after_proposal_id = (
            '",' + part("campaign_id", "campaign_version", "step", "channel") + ',"address":'
        )
        self._after_country = "," + part("template") + ',"locale":'
        self._tail = "," + part("send_window", "message_kind", "attempt") + "}"
        self._locales: dict[str, str] = {}

    def encode(self, row: Sequence[str | None]) -> OutgoingProposal | Unreachable:
        """``row``: the debtor id, then the JSON text at each of ``paths`` (None where the
        stored account has no such field)."""
        debtor_id = row[0]
        assert debtor_id is not None
        values: Sequence[str]
        if None in row:
            values = tuple(
                default if value is None else value
                for value, default in zip(row[1:], self._defaults, strict=True)
            )
        else:
            values = cast("Sequence[str]", row[1:])
        (
            address,
            time_zone,
            country,
            locale,
            name,
            balance,
            creditor,
            reference,
            region,
            city,
            postal_code,
            phone,
            others,
            facts,
            *fact_fields,
        ) = values
        if address == "null":
            return Unreachable(debtor_id, f"no {self._channel} address")
        if facts != "null":
            facts = _FACTS_FORMAT.format(*fact_fields)
        if others == "[]":
            phones = "" if phone in _NO_PHONE else phone
        else:
            numbers = (json.loads(phone), *json.loads(others))
            phones = ",".join(map(_quote, dict.fromkeys(p for p in numbers if p)))
        chosen = self._locales.get(locale)
        if chosen is None:
            chosen = self._locales[locale] = _quote(self._campaign.locale_for(json.loads(locale)))
        pid = _uuid5(PROPOSAL_NAMESPACE.bytes, self._name_prefix + debtor_id)
        event_id = _uuid5(_uuid_bytes(pid), "proposed")
        event_json = "".join(
            (
                '{"event_id":"',
                event_id,
                self._after_event_id,
                _quote(debtor_id),
                ',"proposal_id":"',
                pid,
                self._after_proposal_id,
                address,
                ',"time_zone":',
                time_zone,
                ',"country":',
                country,
                self._after_country,
                chosen,
                ',"variables":{"name":',
                name,
                ',"balance":',
                balance,
                ',"creditor":',
                creditor,
                ',"reference":',
                reference,
                '},"region":',
                region,
                ',"city":',
                city,
                ',"postal_code":',
                postal_code,
                ',"location_phones":[',
                phones,
                '],"address_facts":',
                facts,
                self._tail,
            )
        )
        return OutgoingProposal(
            pid,
            debtor_id,
            self._campaign.id,
            self._channel,
            0,
            event_json,
            self._version,
            self._step_index,
        )
