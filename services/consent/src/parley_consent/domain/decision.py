"""The verdict on one proposed contact: vetoed, deferred or approved, with the rules cited.

``decide`` is pure: the proposal, the debtor's recorded state, past contacts, the instant
and the rule set all come in as arguments. Constraints that end (lawful hours, holds with
an end date, caps over rolling days, a number's confirmation) are turned into UTC
intervals; the earliest instant inside all of them at once is the deferral, and a
constraint that never ends vetoes.

Explanations are plain sentences for operators and debtors; they never contain personal
data (no address, name or amount), only rule facts, zone names and times.
"""

from __future__ import annotations

import functools
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from parley_shared.events import (
    AddressFacts,
    AddressProvenance,
    Channel,
    ContactDecision,
    DecisionReason,
    MessageKind,
    ReminderProposed,
    Verdict,
)

from parley_consent.domain.consent_state import ConsentRecord
from parley_consent.domain.debtor_state import DebtorState, Hold, PastContact
from parley_consent.domain.lawful_window import (
    BEGINNING,
    FOREVER,
    Interval,
    ceil_to_minute,
    daily_windows,
    intersect,
    local_days,
    subtract,
    union,
)
from parley_consent.domain.rules import (
    ADDRESS_INVALID,
    CAMPAIGN_WINDOW,
    NO_RULES_FOR_COUNTRY,
    AddressRule,
    Cap,
    Jurisdiction,
    RuleSet,
)
from parley_consent.domain.zones import ZoneEvidence, candidate_zones, postal_place, zone_info

# Decision ids derive from proposal ids: one proposal has exactly one decision, and two
# consumers racing on a redelivered proposal produce the same id.
_DECISION_NAMESPACE = uuid.UUID("5b0f4f8e-2c55-4c1e-9a59-6f1d1f0c3e21")

# Days of lawful hours looked at first; enough for any mix of zones whose hours overlap
# and for most caps. Longer holds and caps extend the search to their end.
_SEARCH_DAYS = 9
_MAX_SEARCH_DAYS = 800
_ALL_WEEKDAYS = frozenset(range(1, 8))
_LAWFUL_PROVENANCE_TEXT = {
    AddressProvenance.CONSUMER_USED: "the consumer used it",
    AddressProvenance.CONSUMER_CONSENTED: "the consumer consented to it",
    AddressProvenance.CREDITOR_NOTICE: "the creditor gave notice with an opt-out period",
    AddressProvenance.PRIOR_COLLECTOR: "a prior collector used it lawfully",
    AddressProvenance.UNKNOWN: "its provenance is unknown",
}


_NO_FACTS = AddressFacts()


def decision_id_for(proposal_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(_DECISION_NAMESPACE, str(proposal_id))


class Reason(NamedTuple):
    rule_id: str
    explanation: str


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[Reason, ...]
    rule_set_version: str
    defer_until: datetime | None = None
    lawful_until: datetime | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def rule_ids(self) -> list[str]:
        return list(dict.fromkeys(reason.rule_id for reason in self.reasons))

    def to_event(self, proposal: ReminderProposed, now: datetime) -> ContactDecision:
        return ContactDecision(
            event_id=decision_id_for(proposal.proposal_id),
            occurred_at=now,
            debtor_id=proposal.debtor_id,
            proposal_id=proposal.proposal_id,
            verdict=self.verdict,
            reasons=tuple(
                DecisionReason(rule_id=reason.rule_id, explanation=reason.explanation)
                for reason in self.reasons
            ),
            defer_until=self.defer_until,
            lawful_until=self.lawful_until,
            rule_set_version=self.rule_set_version,
            proposal=proposal,
            evidence=self.evidence,
        )


class _TimeConstraint(NamedTuple):
    """One source of allowed local hours and weekdays; the effective window is all of them."""

    rule_id: str
    opens: time
    closes: time
    weekdays: frozenset[int]
    what: str

    def excludes(self, local: datetime) -> bool:
        wall = local.time()
        return local.isoweekday() not in self.weekdays or wall < self.opens or wall >= self.closes


class _Block(NamedTuple):
    """Time during which one rule forbids contact."""

    rule_id: str
    intervals: list[Interval]
    explanation: str


def decide(
    proposal: ReminderProposed,
    debtor: DebtorState,
    history: Sequence[PastContact],
    now: datetime,
    rules: RuleSet,
) -> Decision:
    """Decide on ``proposal`` at instant ``now``. A veto takes precedence over a deferral."""
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    now = now.astimezone(UTC)
    version = rules.version
    place = postal_place(proposal.country, proposal.postal_code)
    jurisdiction = rules.jurisdiction_for(
        proposal.country,
        proposal.region or (place.state if place else None),
        proposal.city or (place.city if place else None),
    )
    if jurisdiction is None:
        return Decision(
            Verdict.VETOED,
            (
                Reason(
                    NO_RULES_FOR_COUNTRY,
                    f"No contact rules are configured for country {proposal.country.upper()!r}, "
                    "so contact cannot be shown to be lawful.",
                ),
            ),
            version,
        )
    evidence: dict[str, Any] = {"jurisdictions": jurisdiction.ids}
    exceptions: list[Reason] = []
    # Past contacts, once per proposal; this proposal's own delivery never counts against it.
    contacts = (
        list(
            {
                contact.proposal_id: contact
                for contact in sorted(history, key=lambda contact: contact.sent_at)
                if contact.proposal_id != proposal.proposal_id
            }.values()
        )
        if history
        else []
    )

    vetoes: list[Reason] = []
    if debtor.invalid_address_keys and debtor.has_invalid(proposal.address):
        vetoes.append(
            Reason(
                ADDRESS_INVALID, f"This {proposal.channel.value} address is known to be invalid."
            )
        )
    vetoes.extend(_opt_out_vetoes(proposal, debtor, contacts, jurisdiction, exceptions))
    address_vetoes, address_blocks = _address_checks(proposal, now, jurisdiction)
    vetoes.extend(address_vetoes)
    hold_vetoes, blocks, hold_caps = _hold_checks(proposal, debtor, now, jurisdiction, exceptions)
    vetoes.extend(hold_vetoes)
    blocks.extend(address_blocks)
    evidence["holds"] = [
        {
            "kind": hold.kind.value,
            "rule_id": jurisdiction.hold_rule(hold.kind).rule_id,
            "starts_at": _iso(hold.starts_at),
            "ends_at": _iso(hold.ends_at),
        }
        for hold in debtor.holds
        if hold.ends_at is None or hold.ends_at > now
    ]
    if exceptions:
        evidence["exceptions_used"] = [reason.rule_id for reason in exceptions]
    if vetoes:
        return Decision(Verdict.VETOED, tuple(vetoes), version, evidence=evidence)

    phones = list(proposal.location_phones)
    if proposal.channel is Channel.SMS:
        phones.insert(0, proposal.address)
    zone_evidence = candidate_zones(
        time_zone=proposal.time_zone,
        country=proposal.country,
        postal_code=proposal.postal_code,
        phones=phones,
        country_zones=jurisdiction.country.zones,
    )
    zones = [info for name in zone_evidence.zones if (info := zone_info(name)) is not None]
    evidence["zones"] = list(zone_evidence.zones)
    evidence["zone_sources"] = zone_evidence.sources
    preamble = _zone_reasons(zone_evidence, jurisdiction)

    constraints = _time_constraints(proposal, debtor, jurisdiction)
    opens = max(constraint.opens for constraint in constraints)
    closes = min(constraint.closes for constraint in constraints)
    weekdays = frozenset.intersection(*(constraint.weekdays for constraint in constraints))
    hours = f"{opens.isoformat('minutes')}-{closes.isoformat('minutes')}"
    evidence["window"] = hours

    caps = [*jurisdiction.caps_for(proposal.channel), *hold_caps]
    cap_blocks, counts = _cap_blocks(caps, contacts, zones, now)
    blocks.extend(cap_blocks)
    if counts:
        evidence["counts"] = counts

    blocked = union(interval for block in blocks for interval in block.intervals)
    # Most decisions are settled by today and tomorrow; search further only when needed.
    windows, allowed = _allowed(zones, now, opens, closes, weekdays, blocked, 2)
    current = next(((start, end) for start, end in allowed if end > now), None)
    if current is None:
        days = _search_days(now, blocked)
        windows, allowed = _allowed(zones, now, opens, closes, weekdays, blocked, days)
        current = next(((start, end) for start, end in allowed if end > now), None)
    where = zones[0].key if len(zones) == 1 else f"every one of the {len(zones)} candidate zones"
    if current is not None and current[0] <= now:
        return Decision(
            Verdict.APPROVED,
            (
                *preamble,
                Reason(
                    constraints[0].rule_id,
                    f"Within the lawful hours of {hours} local time in {where} "
                    f"until {_utc(current[1])}.",
                ),
                *exceptions,
            ),
            version,
            lawful_until=current[1],
            evidence=evidence,
        )
    failing = _failing_now(constraints, zones, now) + [
        Reason(block.rule_id, block.explanation)
        for block in blocks
        if any(start <= now < end for start, end in block.intervals)
    ]
    if current is None:
        # The blocks that take away lawful hours are the ones to blame for there being none.
        lasting = [
            Reason(block.rule_id, block.explanation)
            for block in blocks
            if intersect(windows, block.intervals)
        ]
        vetoing = failing + [r for r in lasting if r not in failing]
        if not windows:
            # No shared hours at all: every source of hours takes part in the refusal.
            cited = {reason.rule_id for reason in vetoing}
            vetoing.extend(
                Reason(
                    constraint.rule_id,
                    f"No time is within {constraint.what} ({constraint.opens:%H:%M}-"
                    f"{constraint.closes:%H:%M}) together with every other window "
                    f"in {where}.",
                )
                for constraint in constraints
                if constraint.rule_id not in cited
            )
        if not vetoing:
            vetoing = [
                Reason(
                    constraints[0].rule_id,
                    f"No time is within {hours} local time in {where} and free of every "
                    "hold and cap.",
                )
            ]
        return Decision(Verdict.VETOED, (*preamble, *vetoing), version, evidence=evidence)
    start, end = current
    defer_until = ceil_to_minute(start)
    if defer_until >= end:
        defer_until = start
    deferral: tuple[Reason, ...]
    if failing:
        deferral = (*preamble, *failing[:-1], _then(failing[-1], defer_until))
    else:
        deferral = (
            *preamble,
            Reason(
                constraints[0].rule_id,
                f"Contact may start at {_utc(defer_until)}, the earliest time that "
                "satisfies every rule at once.",
            ),
        )
    return Decision(Verdict.DEFERRED, deferral, version, defer_until=defer_until, evidence=evidence)


def _then(reason: Reason, defer_until: datetime) -> Reason:
    return Reason(reason.rule_id, f"{reason.explanation} Contact may start at {_utc(defer_until)}.")


def _opt_out_vetoes(
    proposal: ReminderProposed,
    debtor: DebtorState,
    contacts: list[PastContact],
    jurisdiction: Jurisdiction,
    exceptions: list[Reason],
) -> list[Reason]:
    opt_outs = debtor.consent.standing_opt_outs(
        proposal.debtor_id, proposal.channel, proposal.address
    )
    if not opt_outs:
        return []
    if proposal.message_kind is MessageKind.OPT_OUT_CONFIRMATION:
        latest = max(opt_out.occurred_at for opt_out in opt_outs)
        confirmed = any(
            contact.message_kind is MessageKind.OPT_OUT_CONFIRMATION and contact.sent_at >= latest
            for contact in contacts
        )
        if not confirmed:
            exceptions.append(
                Reason(
                    jurisdiction.opt_out_rule,
                    "Permitted exception used: one confirmation of the opt-out may be sent.",
                )
            )
            return []
    return [_opt_out_reason(jurisdiction.opt_out_rule, opt_out) for opt_out in _distinct(opt_outs)]


def _distinct(opt_outs: tuple[ConsentRecord, ...]) -> list[ConsentRecord]:
    """One reason per kind of scope: repeated opt-outs of the same scope say nothing new."""
    seen: dict[tuple[bool, object], ConsentRecord] = {}
    for opt_out in opt_outs:
        seen.setdefault((opt_out.address_key is not None, opt_out.channel), opt_out)
    return list(seen.values())


def _opt_out_reason(rule_id: str, opt_out: ConsentRecord) -> Reason:
    when = _utc(opt_out.occurred_at)
    if opt_out.address_key is not None:
        medium = f"{opt_out.channel.value} " if opt_out.channel else ""
        return Reason(rule_id, f"This {medium}address was opted out of contact at {when}.")
    if opt_out.channel is not None:
        return Reason(
            rule_id, f"The debtor opted out of {opt_out.channel.value} contact at {when}."
        )
    return Reason(rule_id, f"The debtor opted out of all contact at {when}.")


def _address_checks(
    proposal: ReminderProposed, now: datetime, jurisdiction: Jurisdiction
) -> tuple[list[Reason], list[_Block]]:
    facts = proposal.address_facts or _NO_FACTS
    vetoes: list[Reason] = []
    blocks: list[_Block] = []
    for rule in jurisdiction.address_rules_for(proposal.channel):
        problem = _address_problem(rule, facts, proposal.channel)
        if problem is not None:
            vetoes.append(Reason(rule.rule_id, problem))
            continue
        if rule.confirmed_within_days is not None:
            confirmed_at = facts.confirmed_at
            if confirmed_at is None:
                vetoes.append(
                    Reason(
                        rule.rule_id,
                        f"The number has no recorded confirmation; it must have been confirmed "
                        f"within the last {rule.confirmed_within_days} days.",
                    )
                )
                continue
            expires = min(confirmed_at, now) + timedelta(days=rule.confirmed_within_days)
            explanation = (
                f"The number was last confirmed at {_utc(confirmed_at)}; a confirmation "
                f"counts for {rule.confirmed_within_days} days, until {_utc(expires)}."
            )
            if expires <= now:
                vetoes.append(Reason(rule.rule_id, explanation))
            else:
                blocks.append(_Block(rule.rule_id, [(expires, FOREVER)], explanation))
    return vetoes, blocks


def _address_problem(rule: AddressRule, facts: AddressFacts, channel: Channel) -> str | None:
    medium = "email address" if channel is Channel.EMAIL else "number"
    if rule.provenance is not None and facts.provenance not in rule.provenance:
        return (
            f"The {medium} may not be used: {_LAWFUL_PROVENANCE_TEXT[facts.provenance]}, and only "
            f"addresses with provenance {', '.join(p.value for p in rule.provenance)} qualify."
        )
    if (
        facts.employer_provided
        and rule.employer_provided_needs is not None
        and facts.provenance not in rule.employer_provided_needs
        and facts.consent_evidence is None
    ):
        return (
            f"The {medium} was provided by the debtor's employer, and the debtor has "
            "neither used it nor consented to it."
        )
    if rule.written_consent_required and facts.consent_evidence is None:
        return f"Written consent is needed before contact on this {medium}; none is recorded."
    if (
        rule.consent_required
        and facts.consent_evidence is None
        and facts.provenance is not AddressProvenance.CONSUMER_USED
    ):
        return (
            f"The debtor has neither consented to contact on this {medium} "
            "nor used it to contact us."
        )
    return None


def _hold_checks(
    proposal: ReminderProposed,
    debtor: DebtorState,
    now: datetime,
    jurisdiction: Jurisdiction,
    exceptions: list[Reason],
) -> tuple[list[Reason], list[_Block], list[Cap]]:
    vetoes: list[Reason] = []
    blocks: list[_Block] = []
    caps: list[Cap] = []
    for hold in debtor.holds:
        if hold.ends_at is not None and hold.ends_at <= now:
            continue
        rule = jurisdiction.hold_rule(hold.kind)
        name = hold.kind.value.replace("_", " ")
        if proposal.message_kind in rule.permitted:
            if hold.active_at(now):
                exceptions.append(
                    Reason(
                        rule.rule_id,
                        f"Permitted exception used: a "
                        f"{proposal.message_kind.value.replace('_', ' ')} "
                        f"message is allowed during a {name} hold.",
                    )
                )
            continue
        if rule.automated_cap is not None and rule.automated_cap.max > 0:
            if hold.active_at(now):
                caps.append(
                    Cap(
                        rule_id=rule.rule_id,
                        max=rule.automated_cap.max,
                        days=rule.automated_cap.days,
                    )
                )
            continue
        explanation = _hold_explanation(hold, name)
        if hold.active_at(now) and hold.ends_at is None:
            vetoes.append(Reason(rule.rule_id, explanation))
        else:
            blocks.append(
                _Block(
                    rule.rule_id,
                    [(hold.starts_at or BEGINNING, hold.ends_at or FOREVER)],
                    explanation,
                )
            )
    return vetoes, blocks, caps


def _hold_explanation(hold: Hold, name: str) -> str:
    since = f" from {_utc(hold.starts_at)}" if hold.starts_at else ""
    until = f" until {_utc(hold.ends_at)}" if hold.ends_at else " with no end date"
    return f"A {name} hold stops this contact{since}{until}."


def _time_constraints(
    proposal: ReminderProposed, debtor: DebtorState, jurisdiction: Jurisdiction
) -> list[_TimeConstraint]:
    constraints = [
        _TimeConstraint(rule.rule_id, rule.opens, rule.closes, _ALL_WEEKDAYS, "the lawful hours")
        for rule in jurisdiction.time_rules
    ]
    window = proposal.send_window
    if window is not None:
        constraints.append(
            _TimeConstraint(
                CAMPAIGN_WINDOW,
                window.earliest,
                window.latest,
                frozenset(window.weekdays),
                "the campaign's send window",
            )
        )
    preferences = debtor.preferences
    if preferences is not None and (
        preferences.earliest or preferences.latest or preferences.weekdays is not None
    ):
        constraints.append(
            _TimeConstraint(
                jurisdiction.preference_rule,
                preferences.earliest or time(0),
                preferences.latest or time.max,
                _ALL_WEEKDAYS if preferences.weekdays is None else frozenset(preferences.weekdays),
                "the debtor's preferred times",
            )
        )
    return constraints


def _failing_now(
    constraints: list[_TimeConstraint], zones: Sequence[Any], now: datetime
) -> list[Reason]:
    reasons: list[Reason] = []
    for constraint in constraints:
        excluded = [zone.key for zone in zones if constraint.excludes(now.astimezone(zone))]
        if excluded:
            days = (
                ""
                if constraint.weekdays == _ALL_WEEKDAYS
                else f" on ISO weekdays {','.join(str(d) for d in sorted(constraint.weekdays))}"
            )
            reasons.append(
                Reason(
                    constraint.rule_id,
                    f"Outside {constraint.what} of {constraint.opens:%H:%M}-"
                    f"{constraint.closes:%H:%M}{days} local time in {', '.join(excluded)}.",
                )
            )
    return reasons


def _cap_blocks(
    caps: list[Cap], contacts: list[PastContact], zones: Sequence[Any], now: datetime
) -> tuple[list[_Block], list[dict[str, Any]]]:
    """Per cap, the local calendar days from today on that already hold ``max`` contacts
    in their rolling window (in any candidate zone's calendar), and today's counts."""
    blocks: list[_Block] = []
    counts: list[dict[str, Any]] = []
    for cap in caps:
        sent_at = [contact.sent_at for contact in contacts if cap.covers(contact.channel)]
        intervals: list[Interval] = []
        busiest = 0
        for zone in zones if sent_at else ():
            today = now.astimezone(zone).date()
            # Only days this close to today can fall in the window of today or a later day.
            oldest = today - timedelta(days=cap.days - 1)
            per_day = Counter(
                day for instant in sent_at if (day := instant.astimezone(zone).date()) >= oldest
            )
            busiest = max(busiest, sum(n for day, n in per_day.items() if day <= today))
            if sum(per_day.values()) < cap.max:
                continue
            last = max(per_day)
            blocked_days = [
                today + timedelta(days=offset)
                for offset in range((last - today).days + cap.days)
                if _count_in_window(per_day, today + timedelta(days=offset), cap.days) >= cap.max
            ]
            intervals.extend(local_days(zone, blocked_days))
        counts.append(
            {
                "rule_id": cap.rule_id,
                "count": busiest,
                "max": cap.max,
                "days": cap.days,
                "media": "all" if cap.channels is None else [c.value for c in cap.channels],
            }
        )
        if intervals:
            blocks.append(
                _Block(
                    cap.rule_id,
                    union(intervals),
                    f"{busiest} {cap.describe_media()} in the last {cap.days} local calendar "
                    f"days; at most {cap.max} are allowed.",
                )
            )
    return blocks, counts


def _count_in_window(per_day: Counter[date], day: date, days: int) -> int:
    first = day - timedelta(days=days - 1)
    return sum(count for sent, count in per_day.items() if first <= sent <= day)


def _search_days(now: datetime, blocked: list[Interval]) -> int:
    """Days to search: past the end of the longest finite block, plus a margin."""
    finite_ends = [end for _, end in blocked if end < FOREVER]
    horizon = max([now, *finite_ends]) - now + timedelta(days=_SEARCH_DAYS)
    return min(horizon.days + 1, _MAX_SEARCH_DAYS)


def _allowed(
    zones: Sequence[ZoneInfo],
    now: datetime,
    opens: time,
    closes: time,
    weekdays: frozenset[int],
    blocked: list[Interval],
    days: int,
) -> tuple[list[Interval], list[Interval]]:
    """The hours lawful in every zone, and those of them outside every block, from before
    ``now`` over at least ``days`` days. Each day's window is complete, so the first
    interval found after ``now`` is the earliest there is."""
    if opens >= closes or not weekdays:
        return [], []
    common = list(_common_windows(tuple(zones), now.date(), days, opens, closes, weekdays))
    return common, subtract(common, blocked)


# Memoised: many decisions share their zones, their UTC day and their hours.
@functools.lru_cache(maxsize=1 << 14)
def _common_windows(
    zones: tuple[ZoneInfo, ...],
    utc_day: date,
    days: int,
    opens: time,
    closes: time,
    weekdays: frozenset[int],
) -> tuple[Interval, ...]:
    # Two days back covers every zone's local "yesterday" whatever its offset from UTC.
    first = utc_day - timedelta(days=2)
    last = utc_day + timedelta(days=days)
    common: list[Interval] | None = None
    for zone in zones:
        windows = list(daily_windows(zone, first, last, opens, closes, weekdays))
        common = windows if common is None else intersect(common, windows)
    return tuple(common or ())


def _zone_reasons(zone_evidence: ZoneEvidence, jurisdiction: Jurisdiction) -> list[Reason]:
    if len(zone_evidence.zones) < 2:
        return []
    rule_id = jurisdiction.country.unknown_zone_rule or jurisdiction.country.id
    if not zone_evidence.located:
        return [
            Reason(
                rule_id,
                "The debtor's location is unknown, so only hours lawful in all "
                f"{len(zone_evidence.zones)} {jurisdiction.country.country} time zones are used.",
            )
        ]
    return [
        Reason(
            rule_id,
            "The location evidence points to several time zones "
            f"({', '.join(zone_evidence.zones)}), so only hours lawful in all of them are used.",
        )
    ]


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="minutes")[:16] + "Z"


def _iso(instant: datetime | None) -> str | None:
    return None if instant is None else instant.astimezone(UTC).isoformat()
