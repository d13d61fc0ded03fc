"""The scheduler's pure rules: campaign and account validation, deterministic planning."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from parley_scheduler.domain.accounts import parse_accounts
from parley_scheduler.domain.campaign import CampaignError, parse_campaign
from parley_scheduler.domain.planning import plan_first_step

NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)

CAMPAIGN = """\
id: first-notice
version: 1
name: First notice
steps:
  - day_offset: 0
    channel: sms
    template: first-notice
"""

ACCOUNTS = """\
debtor_id,name,phone,email,time_zone,country,locale,balance,creditor,reference
d-1,Ann,+12125550101,,America/New_York,US,en,120.00,Acme,R1
d-2,Bob,(415) 555-0102,bob@example.com,America/Los_Angeles,US,es,80.50,Acme,R2
d-3,Cat,,cat@example.com,Europe/London,GB,en,10.00,Acme,R3
"""


def test_a_campaign_with_a_bad_channel_is_refused_naming_the_line_and_field() -> None:
    broken = CAMPAIGN.replace("channel: sms", "channel: pigeon")
    with pytest.raises(CampaignError) as error:
        parse_campaign(broken)
    assert error.value.problems == ["line 6, steps.0.channel: Input should be 'sms' or 'email'"]


def test_a_campaign_that_is_not_yaml_says_where() -> None:
    with pytest.raises(CampaignError, match="line 2"):
        parse_campaign("id: x\n  version: [1\n")


def test_accounts_are_normalised_and_bad_rows_reported_with_row_and_field() -> None:
    text = ACCOUNTS + "d-4,Dan,not-a-phone,,America/Chicago,US,en,1,Acme,R4\n"
    text += "d-5,Eve,,eve@,,US,en,1,Acme,R5\n"
    text += "d-6,Fay,+12125550106,,Mars/Olympus,US,en,1,Acme,R6\n"
    text += "d-1,Dup,+12125550107,,,US,en,1,Acme,R7\n"
    parsed = parse_accounts(text)
    assert [a.debtor_id for a in parsed.accounts] == ["d-1", "d-2", "d-3"]
    assert parsed.accounts[1].phone == "+14155550102"
    assert [(r.row, r.field, r.reason) for r in parsed.rejected] == [
        (5, "phone", "not a valid phone number"),
        (6, "email", "not a valid email address"),
        (7, "time_zone", "unknown IANA time zone"),
        (8, "debtor_id", "appears twice in the file"),
    ]


def test_planning_twice_gives_the_same_proposal_ids() -> None:
    campaign = parse_campaign(CAMPAIGN)
    accounts = parse_accounts(ACCOUNTS).accounts
    first = plan_first_step(campaign, accounts, NOW)
    second = plan_first_step(campaign, accounts, datetime(2027, 1, 1, tzinfo=UTC))
    assert [p.proposal_id for p in first.proposals] == [p.proposal_id for p in second.proposals]
    assert [p.event_id for p in first.proposals] == [p.event_id for p in second.proposals]
    assert len({p.proposal_id for p in first.proposals}) == 2


def test_a_new_campaign_version_gets_new_ids() -> None:
    accounts = parse_accounts(ACCOUNTS).accounts
    v1 = plan_first_step(parse_campaign(CAMPAIGN), accounts, NOW)
    v2 = plan_first_step(
        parse_campaign(CAMPAIGN.replace("version: 1", "version: 2")), accounts, NOW
    )
    assert not {p.proposal_id for p in v1.proposals} & {p.proposal_id for p in v2.proposals}


def test_accounts_without_an_address_for_the_channel_are_reported_not_dropped() -> None:
    plan = plan_first_step(parse_campaign(CAMPAIGN), parse_accounts(ACCOUNTS).accounts, NOW)
    assert [p.debtor_id for p in plan.proposals] == ["d-1", "d-2"]
    assert [(u.debtor_id, u.reason) for u in plan.unreachable] == [("d-3", "no sms address")]
    assert plan.proposals[1].locale == "es"
    assert plan.proposals[0].time_zone == "America/New_York"
