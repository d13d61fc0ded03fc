"""The verdict on one proposed contact: vetoed, deferred or approved, with the rules cited.

Explanations are plain sentences for operators and debtors; they never contain personal
data (no address, name or amount), only rule facts, zone names and times.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from parley_shared.events import ContactDecision, DecisionReason, ReminderProposed, Verdict

from parley_consent.domain.consent_state import ConsentRecord, ConsentState
from parley_consent.domain.lawful_window import (
    NoCommonWindow,
    OutsideWindow,
    check_window,
)
from parley_consent.domain.rules import NO_RULES_FOR_COUNTRY, Jurisdiction, jurisdiction_for

# Decision ids derive from proposal ids: one proposal has exactly one decision, and two
# consumers racing on a redelivered proposal produce the same id.
_DECISION_NAMESPACE = uuid.UUID("5b0f4f8e-2c55-4c1e-9a59-6f1d1f0c3e21")


def decision_id_for(proposal_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(_DECISION_NAMESPACE, str(proposal_id))


def decide(
    proposal: ReminderProposed, state: ConsentState, now: datetime, rule_set_version: str
) -> ContactDecision:
    """Decide on ``proposal`` at instant ``now``. A veto takes precedence over a deferral."""
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")

    def verdict(
        kind: Verdict,
        reasons: list[DecisionReason],
        *,
        defer_until: datetime | None = None,
        lawful_until: datetime | None = None,
    ) -> ContactDecision:
        return ContactDecision(
            event_id=decision_id_for(proposal.proposal_id),
            occurred_at=now,
            debtor_id=proposal.debtor_id,
            proposal_id=proposal.proposal_id,
            verdict=kind,
            reasons=tuple(reasons),
            defer_until=defer_until,
            lawful_until=lawful_until,
            rule_set_version=rule_set_version,
            proposal=proposal,
        )

    jurisdiction = jurisdiction_for(proposal.country)
    if jurisdiction is None:
        return verdict(Verdict.VETOED, [_no_rules_reason(proposal.country)])

    opt_outs = state.standing_opt_outs(proposal.debtor_id, proposal.channel, proposal.address)
    if opt_outs:
        return verdict(
            Verdict.VETOED,
            [_opt_out_reason(jurisdiction, opt_out) for opt_out in _distinct_scopes(opt_outs)],
        )

    zones, zone_reasons = _candidate_zones(proposal.time_zone, jurisdiction)
    window = check_window(now, zones, jurisdiction.lawful_hours)
    hours = jurisdiction.lawful_hours.describe()
    where = zones[0].key if len(zones) == 1 else f"every one of the {len(zones)} candidate zones"
    if isinstance(window, NoCommonWindow):
        return verdict(
            Verdict.VETOED,
            [
                *zone_reasons,
                DecisionReason(
                    rule_id=jurisdiction.time_rule_id,
                    explanation=f"No time is within {hours} local time in {where}.",
                ),
            ],
        )
    if isinstance(window, OutsideWindow):
        return verdict(
            Verdict.DEFERRED,
            [
                *zone_reasons,
                DecisionReason(
                    rule_id=jurisdiction.time_rule_id,
                    explanation=(
                        f"Outside the lawful hours of {hours} local time in {where}; "
                        f"contact may start at {_utc(window.lawful_from)}."
                    ),
                ),
            ],
            defer_until=window.lawful_from,
        )
    return verdict(
        Verdict.APPROVED,
        [
            *zone_reasons,
            DecisionReason(
                rule_id=jurisdiction.time_rule_id,
                explanation=(
                    f"Within the lawful hours of {hours} local time in {where} "
                    f"until {_utc(window.lawful_until)}."
                ),
            ),
        ],
        lawful_until=window.lawful_until,
    )


def _candidate_zones(
    time_zone: str | None, jurisdiction: Jurisdiction
) -> tuple[list[ZoneInfo], list[DecisionReason]]:
    """The zones the debtor may be in; an unknown or unrecognised zone means all of the
    country's zones, which must all agree."""
    if time_zone:
        try:
            return [ZoneInfo(time_zone)], []
        except (ZoneInfoNotFoundError, ValueError):
            pass  # An unusable zone tells us nothing about where the debtor is.
    zones = [ZoneInfo(name) for name in jurisdiction.candidate_zones]
    if jurisdiction.unknown_zone_rule_id is None:
        return zones, []
    reason = DecisionReason(
        rule_id=jurisdiction.unknown_zone_rule_id,
        explanation=(
            "The debtor's time zone is unknown, so only hours lawful in all "
            f"{len(zones)} {jurisdiction.country} time zones are used."
        ),
    )
    return zones, [reason]


def _distinct_scopes(opt_outs: tuple[ConsentRecord, ...]) -> list[ConsentRecord]:
    """One reason per kind of scope: repeated opt-outs of the same scope say nothing new."""
    seen: dict[tuple[bool, object], ConsentRecord] = {}
    for opt_out in opt_outs:
        seen.setdefault((opt_out.address_key is not None, opt_out.channel), opt_out)
    return list(seen.values())


def _opt_out_reason(jurisdiction: Jurisdiction, opt_out: ConsentRecord) -> DecisionReason:
    when = _utc(opt_out.occurred_at)
    if opt_out.address_key is not None:
        medium = f"{opt_out.channel.value} " if opt_out.channel else ""
        explanation = f"This {medium}address was opted out of contact at {when}."
    elif opt_out.channel is not None:
        explanation = f"The debtor opted out of {opt_out.channel.value} contact at {when}."
    else:
        explanation = f"The debtor opted out of all contact at {when}."
    return DecisionReason(rule_id=jurisdiction.opt_out_rule_id, explanation=explanation)


def _no_rules_reason(country: str) -> DecisionReason:
    return DecisionReason(
        rule_id=NO_RULES_FOR_COUNTRY,
        explanation=(
            f"No contact rules are configured for country {country.upper()!r}, "
            "so contact cannot be shown to be lawful."
        ),
    )


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
