"""The evaluate interface: one JSON case in, the decision JSON out.

A case is everything ``decide`` needs, written down so an auditor can ask "could we
contact this debtor now, on this channel, and if not, why and when?" without a
database: the proposal, the debtor's recorded state, past contacts and ``now``. The
JSON Schemas in ``docs/schemas`` are generated from the models here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from parley_shared.events import (
    AwareDatetime,
    Channel,
    ConsentChangeKind,
    ContactPreferences,
    DecisionReason,
    HoldKind,
    MessageKind,
    ReminderProposed,
    Verdict,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from parley_consent.domain.consent_state import ConsentRecord, ConsentState, address_key
from parley_consent.domain.debtor_state import DebtorState, Hold, PastContact
from parley_consent.domain.decision import Decision, decide
from parley_consent.domain.rules import RuleSet, default_rule_set

__all__ = ["Case", "CaseDecision", "InvalidCase", "decide_case", "evaluate_case"]


class InvalidCase(ValueError):
    """A case that cannot be evaluated; the message names the offending field."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class _CaseModel(BaseModel):
    # Unknown fields are refused: a misspelt hold or opt-out must not silently vanish.
    model_config = ConfigDict(frozen=True, extra="forbid")


class OptChange(_CaseModel):
    """An opt-out or opt-in. No channel and no address: all contact; a channel: that
    medium; an address: that number or mailbox, for every debtor who uses it."""

    occurred_at: AwareDatetime
    channel: Channel | None = None
    address: str | None = Field(default=None, min_length=1)
    debtor_id: str | None = Field(
        default=None,
        description="Who made the change; defaults to the proposal's debtor. Another "
        "debtor's address opt-out still covers this debtor when the address is the same.",
    )


class CaseHold(_CaseModel):
    kind: HoldKind
    starts_at: AwareDatetime | None = Field(default=None, description="Omitted: already in force.")
    ends_at: AwareDatetime | None = Field(default=None, description="Omitted: no end date.")


class DebtorFacts(_CaseModel):
    """The debtor's recorded consent state; anything omitted means nothing is recorded."""

    opt_outs: list[OptChange] = Field(default_factory=list)
    opt_ins: list[OptChange] = Field(default_factory=list)
    holds: list[CaseHold] = Field(default_factory=list)
    preferences: ContactPreferences | None = None
    invalid_addresses: list[str] = Field(default_factory=list)


class HistoryEntry(_CaseModel):
    """A message that left for this debtor; one entry per proposal counts once."""

    channel: Channel
    sent_at: AwareDatetime
    proposal_id: uuid.UUID
    message_kind: MessageKind | None = None


class Case(_CaseModel):
    proposal: ReminderProposed
    debtor: DebtorFacts = Field(default_factory=DebtorFacts)
    history: list[HistoryEntry] = Field(default_factory=list)
    now: AwareDatetime

    def debtor_state(self) -> DebtorState:
        debtor_id = self.proposal.debtor_id

        def record(kind: ConsentChangeKind, change: OptChange) -> ConsentRecord:
            return ConsentRecord(
                debtor_id=change.debtor_id or debtor_id,
                kind=kind,
                channel=change.channel,
                address_key=address_key(change.address) if change.address else None,
                occurred_at=change.occurred_at,
            )

        return DebtorState(
            consent=ConsentState(
                (
                    *(record(ConsentChangeKind.OPT_OUT, c) for c in self.debtor.opt_outs),
                    *(record(ConsentChangeKind.OPT_IN, c) for c in self.debtor.opt_ins),
                )
            ),
            holds=tuple(
                Hold(kind=hold.kind, starts_at=hold.starts_at, ends_at=hold.ends_at)
                for hold in self.debtor.holds
            ),
            preferences=self.debtor.preferences,
            invalid_address_keys=frozenset(address_key(a) for a in self.debtor.invalid_addresses),
        )

    def past_contacts(self) -> list[PastContact]:
        return [
            PastContact(
                proposal_id=entry.proposal_id,
                channel=entry.channel,
                sent_at=entry.sent_at,
                message_kind=entry.message_kind,
            )
            for entry in self.history
        ]


class CaseDecision(BaseModel):
    """The decision on a case."""

    model_config = ConfigDict(frozen=True)

    verdict: Verdict
    reasons: list[DecisionReason] = Field(description="Every rule that applied, with a sentence.")
    defer_until: AwareDatetime | None = Field(
        description="When deferred: the earliest instant that satisfies every rule at once."
    )
    lawful_until: AwareDatetime | None = Field(
        description="When approved: the message must not leave at or after this instant."
    )
    rule_set_version: str
    evidence: dict[str, Any] = Field(
        description="What the decision used: jurisdictions, zones considered and their "
        "sources, the effective window, contact counts per cap, holds, exceptions used."
    )

    @classmethod
    def from_decision(cls, decision: Decision) -> CaseDecision:
        return cls(
            verdict=decision.verdict,
            reasons=[
                DecisionReason(rule_id=reason.rule_id, explanation=reason.explanation)
                for reason in decision.reasons
            ],
            defer_until=decision.defer_until,
            lawful_until=decision.lawful_until,
            rule_set_version=decision.rule_set_version,
            evidence=decision.evidence,
        )


def parse_case(case: Mapping[str, Any]) -> Case:
    if not isinstance(case, Mapping):
        raise InvalidCase("case", "a case must be a JSON object")
    try:
        return Case.model_validate(dict(case))
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "case"
        raise InvalidCase(field, first["msg"]) from None


def decide_case(case: Case, rules: RuleSet | None = None) -> Decision:
    return decide(
        case.proposal,
        case.debtor_state(),
        case.past_contacts(),
        case.now,
        rules or default_rule_set(),
    )


def evaluate_case(case: Mapping[str, Any], rules: RuleSet | None = None) -> dict[str, Any]:
    """Evaluate one documented JSON case; raises ``InvalidCase`` naming the bad field."""
    decision = decide_case(parse_case(case), rules)
    return CaseDecision.from_decision(decision).model_dump(mode="json")
