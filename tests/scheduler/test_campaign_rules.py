"""Campaign schema errors, account import validation, cadence planning: pure rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from parley_scheduler.domain.accounts import parse_accounts
from parley_scheduler.domain.campaign import CampaignError, parse_campaign
from parley_scheduler.domain.lifecycle import (
    Action,
    CampaignStatus,
    LifecycleError,
    definition_changes,
    status_after,
)
from parley_scheduler.domain.planning import (
    DebtorProgress,
    audience_matches,
    build_proposal,
    due_steps,
    proposal_id,
    repropose,
)
from parley_shared.events import Channel, ReminderProposed

FULL = """\
id: late-payers
name: Late payers, SMS first
audience:
  min_days_past_due: 30
  max_balance: 5000
  jurisdictions: [US-NY, GB]
  flags_excluded: [dispute]
steps:
  - day_offset: 0
    channel: sms
    template: first-notice
  - day_offset: 0
    channel: email
    template: first-notice
    conditions: [only_if_previous_undelivered]
  - day_offset: 3
    channel: email
    template: first-notice
    conditions: [skip_if_paid]
send_window:
  earliest: "09:00"
  latest: "18:00"
  weekdays: [1, 2, 3, 4, 5]
locales:
  supported: [en, es]
  fallback: en
editors: [alice]
"""

HEADER = (
    "debtor_id,name,phone,email,time_zone,country,region,city,postal_code,locale,balance,"
    "days_past_due,flags,paid,sms_consent_evidence,sms_consented_at,phone_confirmed_at,"
    "email_provenance,email_employer_provided,creditor,reference\n"
)
GOOD_ROW = (
    "d-1,Ann,+12125550101,ann@example.com,America/New_York,US,NY,New York,10001,es,120.00,"
    "45,,false,form-17,2026-01-05,2026-11-01,consumer_used,false,Acme,R1\n"
)


def _problems(text: str) -> list[str]:
    with pytest.raises(CampaignError) as error:
        parse_campaign(text)
    return error.value.problems


def test_a_full_campaign_is_read_with_every_part() -> None:
    campaign = parse_campaign(FULL)
    assert campaign.audience.jurisdictions == ("US-NY", "GB")
    assert [step.conditions for step in campaign.steps][1] == ("only_if_previous_undelivered",)
    assert campaign.send_window.as_event().weekdays == (1, 2, 3, 4, 5)
    assert campaign.locale_for("es-MX") == "es"
    assert campaign.locale_for("fr") == "en"
    assert campaign.may_be_changed_by("alice") and not campaign.may_be_changed_by("bob")


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (
            ("min_days_past_due: 30", "min_days_past_due: -1"),
            "line 4, audience.min_days_past_due: Input should be greater than or equal to 0",
        ),
        (
            ("conditions: [skip_if_paid]", "conditions: [skip_if_rich]"),
            "line 19, steps.2.conditions.0: Input should be 'skip_if_paid' or "
            "'only_if_previous_undelivered'",
        ),
        (
            ('latest: "18:00"', 'latest: "07:00"'),
            "line 20, send_window: earliest must be before latest",
        ),
        (
            ("fallback: en", "fallback: fr"),
            "line 24, locales: fallback must be one of the supported locales",
        ),
        (
            ("  - day_offset: 3", "  - day_offset: -3"),
            "line 16, steps.2.day_offset: Input should be greater than or equal to 0",
        ),
        (
            ("editors: [alice]", "editor: [alice]"),
            "line 27, editor: Extra inputs are not permitted",
        ),
    ],
)
def test_invalid_definitions_name_the_line_and_field(
    broken: tuple[str, str], expected: str
) -> None:
    assert _problems(FULL.replace(*broken)) == [expected]


def test_steps_out_of_order_and_a_first_step_fallback_are_refused() -> None:
    out_of_order = FULL.replace("  - day_offset: 3", "  - day_offset: 0").replace(
        "  - day_offset: 0\n    channel: sms", "  - day_offset: 5\n    channel: sms"
    )
    assert _problems(out_of_order) == ["line 8, steps: steps must be in day_offset order"]
    first_fallback = FULL.replace(
        "    channel: sms\n", "    channel: sms\n    conditions: [only_if_previous_undelivered]\n"
    )
    assert _problems(first_fallback) == [
        "line 8, steps: the first step has no previous step to fall back from"
    ]


def test_the_import_report_names_row_field_and_reason_for_every_bad_row() -> None:
    rows = [
        GOOD_ROW,
        GOOD_ROW.replace("d-1,", "d-2,").replace("+12125550101", "+1212555"),
        GOOD_ROW.replace("d-1,", "d-3,").replace("ann@example.com", "ann@"),
        GOOD_ROW.replace("d-1,", "d-4,").replace("America/New_York", "America/Gotham"),
        GOOD_ROW.replace("d-1,", "d-5,").replace(",45,", ",soon,"),
        GOOD_ROW.replace("d-1,", "d-6,").replace("consumer_used", "found_online"),
        GOOD_ROW.replace("d-1,", "d-7,").replace("form-17", ""),
        GOOD_ROW,
    ]
    report = parse_accounts(HEADER + "".join(rows))
    assert [a.debtor_id for a in report.accounts] == ["d-1", "d-7"]
    assert [(p.row, p.field, p.reason) for p in report.rejected] == [
        (3, "phone", "not a valid phone number"),
        (4, "email", "not a valid email address"),
        (5, "time_zone", "unknown IANA time zone"),
        (6, "days_past_due", "must be a whole number of days, 0 or more"),
        (
            7,
            "email_provenance",
            "must be one of consumer_used, consumer_consented, creditor_notice, "
            "prior_collector, unknown",
        ),
        (9, "debtor_id", "appears twice in the file"),
    ]
    assert [(p.row, p.field) for p in report.warnings] == [(8, "sms_consent_evidence")]
    assert "missing consent evidence" in report.warnings[0].reason


def test_a_proposal_carries_the_consent_facts_location_and_window() -> None:
    campaign = parse_campaign(FULL)
    account = parse_accounts(HEADER + GOOD_ROW).accounts[0]
    sms = build_proposal(campaign, 0, account, datetime(2026, 11, 24, 15, tzinfo=UTC))
    email = build_proposal(campaign, 1, account, datetime(2026, 11, 24, 15, tzinfo=UTC))
    assert isinstance(sms, ReminderProposed) and isinstance(email, ReminderProposed)
    assert sms.address_facts is not None and sms.address_facts.consent_evidence == "form-17"
    assert sms.address_facts.confirmed_at == datetime(2026, 11, 1, tzinfo=UTC)
    assert email.address_facts is not None and email.address_facts.provenance == "consumer_used"
    assert (sms.region, sms.city, sms.postal_code) == ("NY", "New York", "10001")
    assert sms.location_phones == ("+12125550101",)
    assert sms.send_window is not None and sms.send_window.latest.hour == 18
    assert (sms.locale, email.channel) == ("es", Channel.EMAIL)


def test_the_audience_filters_on_days_balance_jurisdiction_and_flags() -> None:
    audience = parse_campaign(FULL).audience
    assert audience_matches(audience, parse_accounts(HEADER + GOOD_ROW).accounts[0])
    for change in [
        (",45,", ",10,"),
        (",120.00,", ",9000,"),
        (",NY,", ",CA,"),
        (",45,,", ",45,dispute,"),
    ]:
        account = parse_accounts(HEADER + GOOD_ROW.replace(*change)).accounts[0]
        assert not audience_matches(audience, account), change


def test_steps_fall_on_the_debtors_local_date_and_conditions_hold() -> None:
    campaign = parse_campaign(FULL)
    account = parse_accounts(HEADER + GOOD_ROW).accounts[0]
    # Activated 03:00 UTC on the 24th: still the 23rd in New York, so day 0 is the 23rd there.
    started = datetime(2026, 11, 24, 3, tzinfo=UTC)
    nothing = DebtorProgress()
    assert due_steps(campaign, account, started, started, nothing) == [0]
    sms_sent = DebtorProgress(proposed_steps=frozenset({0}))
    # 04:59 UTC on the 26th is 23:59 on the 25th in New York: day 2, step 2 (day 3) not yet.
    assert (
        due_steps(campaign, account, started, datetime(2026, 11, 26, 4, 59, tzinfo=UTC), sms_sent)
        == []
    )
    assert due_steps(
        campaign, account, started, datetime(2026, 11, 26, 5, 0, tzinfo=UTC), sms_sent
    ) == [2]
    undelivered = DebtorProgress(frozenset({0}), undelivered_steps=frozenset({0}))
    assert due_steps(campaign, account, started, started, undelivered) == [1]
    paid = parse_accounts(HEADER + GOOD_ROW.replace(",false,form", ",true,form")).accounts[0]
    assert due_steps(campaign, paid, started, datetime(2026, 12, 1, tzinfo=UTC), sms_sent) == []


def test_ids_are_deterministic_and_a_re_proposal_is_a_new_attempt_with_its_own_id() -> None:
    campaign = parse_campaign(FULL)
    account = parse_accounts(HEADER + GOOD_ROW).accounts[0]
    first = build_proposal(campaign, 0, account, datetime(2026, 11, 24, tzinfo=UTC))
    later = build_proposal(campaign, 0, account, datetime(2027, 1, 1, tzinfo=UTC))
    assert isinstance(first, ReminderProposed) and isinstance(later, ReminderProposed)
    assert first.proposal_id == later.proposal_id == proposal_id("late-payers", 1, 0, "d-1")
    again = repropose(first, datetime(2026, 11, 25, tzinfo=UTC))
    assert again.attempt == 1 and again.proposal_id != first.proposal_id
    assert again.proposal_id == repropose(first, datetime(2026, 12, 25, tzinfo=UTC)).proposal_id
    assert again.proposal_id == proposal_id("late-payers", 1, 0, "d-1", attempt=1)


def test_the_lifecycle_allows_only_its_transitions_and_changes_are_itemised() -> None:
    assert status_after(Action.ACTIVATE, CampaignStatus.DRAFT) is CampaignStatus.ACTIVE
    assert status_after(Action.PAUSE, CampaignStatus.ACTIVE) is CampaignStatus.PAUSED
    assert status_after(Action.ACTIVATE, CampaignStatus.PAUSED) is CampaignStatus.ACTIVE
    with pytest.raises(LifecycleError, match="cannot activate a campaign that is archived"):
        status_after(Action.ACTIVATE, CampaignStatus.ARCHIVED)
    with pytest.raises(LifecycleError):
        status_after(Action.PAUSE, CampaignStatus.DRAFT)
    before = parse_campaign(FULL).model_dump(mode="json")
    after = parse_campaign(FULL.replace("day_offset: 3", "day_offset: 4")).model_dump(mode="json")
    assert definition_changes(before, after) == [
        {"field": "steps.2.day_offset", "before": 3, "after": 4}
    ]
