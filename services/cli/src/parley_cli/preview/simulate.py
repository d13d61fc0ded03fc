"""A campaign run on a simulated clock, against the real consent rules, sending nothing.

The simulation ticks like the scheduler does (same planning functions, same re-proposal of
deferred proposals) and asks the consent rules in-process (``evaluate_case``) instead of
over Kafka. It assumes every approved message is sent at the instant it was approved and
delivered, so steps that only run after an undelivered message are never predicted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from parley_scheduler.domain.accounts import RowProblem, parse_accounts
from parley_scheduler.domain.campaign import Campaign, parse_campaign
from parley_scheduler.domain.planning import (
    DebtorProgress,
    Unreachable,
    audience_matches,
    build_proposal,
    due_steps,
    repropose,
)
from parley_shared.events import ReminderProposed

Evaluator = Callable[[Mapping[str, Any]], dict[str, Any]]
TICK = timedelta(hours=1)


@dataclass
class DayTally:
    day: date
    proposals: int = 0
    approved: int = 0
    vetoed: int = 0
    deferred: int = 0
    vetoes_by_rule: Counter[str] = field(default_factory=Counter)
    deferrals_by_rule: Counter[str] = field(default_factory=Counter)
    sends_by_channel: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Sample:
    debtor_id: str
    step: int
    channel: str
    locale: str
    template: str
    variables: dict[str, str]


@dataclass
class PreviewResult:
    campaign: Campaign
    start: datetime
    days: list[DayTally]
    accounts: int
    in_audience: int
    rejected_rows: tuple[RowProblem, ...]
    warnings: tuple[RowProblem, ...]
    unreachable: list[Unreachable]
    samples: list[Sample]
    rule_set_version: str = ""

    def totals(self) -> DayTally:
        total = DayTally(self.start.date())
        for day in self.days:
            total.proposals += day.proposals
            total.approved += day.approved
            total.vetoed += day.vetoed
            total.deferred += day.deferred
            total.vetoes_by_rule.update(day.vetoes_by_rule)
            total.deferrals_by_rule.update(day.deferrals_by_rule)
            total.sends_by_channel.update(day.sends_by_channel)
        return total


def simulate(
    campaign_text: str,
    accounts_text: str,
    *,
    days: int,
    start: datetime,
    evaluate: Evaluator,
    sample_count: int = 3,
) -> PreviewResult:
    """Raises ``CampaignError`` for an invalid campaign, as loading it would."""
    campaign = parse_campaign(campaign_text).model_copy(update={"version": 1})
    accounts_file = parse_accounts(accounts_text)
    audience = [a for a in accounts_file.accounts if audience_matches(campaign.audience, a)]
    end = start + timedelta(days=days)
    tallies = {
        (start + timedelta(days=offset)).date(): DayTally((start + timedelta(days=offset)).date())
        for offset in range(days + 1)
    }
    proposed: defaultdict[str, set[int]] = defaultdict(set)
    history: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    waiting: list[tuple[datetime, ReminderProposed]] = []
    unreachable: dict[tuple[str, int], Unreachable] = {}
    samples: list[Sample] = []
    versions: set[str] = set()

    def decide(proposal: ReminderProposed, now: datetime) -> None:
        tally = tallies[now.date()]
        tally.proposals += 1
        answer = evaluate(
            {
                "proposal": proposal.model_dump(mode="json"),
                "debtor": {},
                "history": history[proposal.debtor_id],
                "now": now.isoformat(),
            }
        )
        versions.add(str(answer["rule_set_version"]))
        rules = [str(reason["rule_id"]) for reason in answer["reasons"]]
        if answer["verdict"] == "approved":
            tally.approved += 1
            tally.sends_by_channel[proposal.channel.value] += 1
            history[proposal.debtor_id].append(
                {
                    "channel": proposal.channel.value,
                    "sent_at": now.isoformat(),
                    "proposal_id": str(proposal.proposal_id),
                    "message_kind": proposal.message_kind.value,
                }
            )
            if len(samples) < sample_count and not any(
                s.step == proposal.step and s.locale == proposal.locale for s in samples
            ):
                samples.append(_sample(proposal))
        elif answer["verdict"] == "deferred":
            tally.deferred += 1
            tally.deferrals_by_rule.update(rules)
            waiting.append((datetime.fromisoformat(str(answer["defer_until"])), proposal))
        else:
            tally.vetoed += 1
            tally.vetoes_by_rule.update(rules)

    now = start
    while now < end:
        for account in audience:
            progress = DebtorProgress(proposed_steps=frozenset(proposed[account.debtor_id]))
            for index in due_steps(campaign, account, start, now, progress):
                proposed[account.debtor_id].add(index)
                planned = build_proposal(campaign, index, account, now)
                if isinstance(planned, Unreachable):
                    unreachable[(account.debtor_id, index)] = planned
                    continue
                decide(planned, now)
        due_again = [item for item in waiting if item[0] <= now]
        waiting[:] = [item for item in waiting if item[0] > now]
        for _, deferred in sorted(due_again, key=lambda item: item[0]):
            decide(repropose(deferred, now), now)
        now += TICK
    return PreviewResult(
        campaign=campaign,
        start=start,
        days=[tally for day, tally in sorted(tallies.items()) if day <= (end - TICK).date()],
        accounts=len(accounts_file.accounts),
        in_audience=len(audience),
        rejected_rows=accounts_file.rejected,
        warnings=accounts_file.warnings,
        unreachable=list(unreachable.values()),
        samples=samples,
        rule_set_version=", ".join(sorted(versions)),
    )


def _sample(proposal: ReminderProposed) -> Sample:
    return Sample(
        debtor_id=proposal.debtor_id,
        step=proposal.step,
        channel=proposal.channel.value,
        locale=proposal.locale,
        template=proposal.template,
        variables=dict(proposal.variables),
    )
