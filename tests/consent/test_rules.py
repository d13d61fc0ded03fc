"""Holds, caps, address eligibility, preferences and jurisdiction layers, through ``decide``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from parley_consent.domain import DebtorState, Decision, Hold, PastContact
from parley_consent.domain.rules import RuleSetError, parse_rule_set
from parley_shared.events import (
    AddressFacts,
    AddressProvenance,
    Channel,
    ContactPreferences,
    HoldKind,
    MessageKind,
    SendWindow,
    Verdict,
)

from tests.consent.builders import EMAIL, RULES, decide_now, eligible_facts, proposal

NEW_YORK = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
# Wednesday noon in New York: inside every window, so only the rule under test decides.
NOON = datetime(2026, 6, 10, 12, 0, tzinfo=NEW_YORK)


def eastern(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=NEW_YORK)


def ids(decision: Decision) -> list[str]:
    return [reason.rule_id for reason in decision.reasons]


def with_holds(*holds: Hold, now: datetime = NOON, **overrides: Any) -> Decision:
    return decide_now(proposal(**overrides), now, DebtorState(holds=holds))


def sent(*instants: datetime, channel: Channel = Channel.SMS) -> list[PastContact]:
    return [PastContact(uuid.uuid4(), channel, instant) for instant in instants]


# --- holds ---


@pytest.mark.parametrize(
    ("kind", "rule_id"),
    [
        (HoldKind.DISPUTE, "US-F-DISPUTE"),
        (HoldKind.CEASE, "US-F-CEASE"),
        (HoldKind.ATTORNEY, "US-F-ATTY"),
        (HoldKind.BANKRUPTCY, "US-BK"),
        (HoldKind.DECEASED, "PARLEY-DECEASED"),
    ],
)
def test_an_open_ended_hold_vetoes_collection_citing_its_rule(kind: HoldKind, rule_id: str) -> None:
    decision = with_holds(Hold(kind))
    assert decision.verdict is Verdict.VETOED
    assert ids(decision) == [rule_id]
    assert decision.evidence["holds"][0]["kind"] == kind.value


def test_a_dispute_still_allows_the_verification_and_records_the_exception() -> None:
    decision = with_holds(Hold(HoldKind.DISPUTE), message_kind=MessageKind.VERIFICATION)
    assert decision.verdict is Verdict.APPROVED
    assert "US-F-DISPUTE" in ids(decision)
    assert decision.evidence["exceptions_used"] == ["US-F-DISPUTE"]
    assert "Permitted exception used" in decision.reasons[-1].explanation


@pytest.mark.parametrize(
    "kind",
    [
        MessageKind.CEASE_EFFORTS_ENDING,
        MessageKind.CEASE_REMEDY_MAY_BE_INVOKED,
        MessageKind.CEASE_REMEDY_WILL_BE_INVOKED,
    ],
)
def test_cease_allows_exactly_its_three_message_kinds(kind: MessageKind) -> None:
    assert with_holds(Hold(HoldKind.CEASE), message_kind=kind).verdict is Verdict.APPROVED


def test_cease_refuses_a_validation_notice_and_an_opt_out_confirmation() -> None:
    for kind in (MessageKind.VALIDATION_NOTICE, MessageKind.OPT_OUT_CONFIRMATION):
        assert with_holds(Hold(HoldKind.CEASE), message_kind=kind).verdict is Verdict.VETOED


def test_a_hardship_pause_defers_to_the_first_lawful_minute_after_it_ends() -> None:
    pause = Hold(
        HoldKind.HARDSHIP,
        starts_at=eastern("2026-06-01T00:00"),
        ends_at=eastern("2026-06-20T22:00"),
    )
    decision = with_holds(pause)
    assert decision.verdict is Verdict.DEFERRED
    # The pause ends at 22:00, after the window; the next lawful time is 08:00 next day.
    assert decision.defer_until == eastern("2026-06-21T08:00")
    assert ids(decision) == ["US-F-PREF"]


def test_a_hold_starting_later_today_shortens_the_approval() -> None:
    later = Hold(HoldKind.ATTORNEY, starts_at=eastern("2026-06-10T15:00"))
    decision = with_holds(later)
    assert decision.verdict is Verdict.APPROVED
    assert decision.lawful_until == eastern("2026-06-10T15:00")


def test_a_hold_that_ended_no_longer_counts() -> None:
    ended = Hold(
        HoldKind.HARDSHIP,
        starts_at=eastern("2026-05-01T00:00"),
        ends_at=eastern("2026-06-01T00:00"),
    )
    assert with_holds(ended).verdict is Verdict.APPROVED


def test_uk_breathing_space_uses_the_notice_dates() -> None:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    end = datetime(2026, 7, 31, 12, 0, tzinfo=UTC)
    decision = with_holds(
        Hold(HoldKind.BREATHING_SPACE, starts_at=start, ends_at=end),
        now=datetime(2026, 6, 10, 11, 0, tzinfo=LONDON),
        country="GB",
        time_zone="Europe/London",
    )
    assert decision.verdict is Verdict.DEFERRED
    assert ids(decision) == ["UK-BS"]
    assert decision.defer_until == end  # 13:00 in London, inside 08:00-21:00


def test_uk_vulnerability_limits_automated_contact_to_one_a_fortnight() -> None:
    now = datetime(2026, 6, 10, 11, 0, tzinfo=LONDON)
    debtor = DebtorState(holds=(Hold(HoldKind.VULNERABILITY),))
    reminder = proposal(country="GB", time_zone="Europe/London")
    assert decide_now(reminder, now, debtor).verdict is Verdict.APPROVED
    decision = decide_now(reminder, now, debtor, sent(now - timedelta(days=3)))
    assert decision.verdict is Verdict.DEFERRED
    assert ids(decision) == ["UK-VULN"]
    assert decision.defer_until == datetime(2026, 6, 21, 8, 0, tzinfo=LONDON)


# --- frequency caps ---


def test_a_receipt_seen_twice_counts_once() -> None:
    monday = eastern("2026-06-08T12:00")
    once = PastContact(uuid.uuid4(), Channel.SMS, monday)
    twice = PastContact(once.proposal_id, Channel.SMS, monday + timedelta(minutes=1))
    decision = decide_now(proposal(region="MA"), eastern("2026-06-10T12:00"), None, [once, twice])
    assert decision.verdict is Verdict.APPROVED
    assert {
        "rule_id": "US-MA",
        "count": 1,
        "max": 2,
        "days": 7,
        "media": ["sms"],
    } in decision.evidence["counts"]


def test_massachusetts_caps_texts_but_not_email() -> None:
    history = sent(eastern("2026-06-08T12:00"), eastern("2026-06-09T12:00"))
    now = eastern("2026-06-10T12:00")
    text = decide_now(proposal(region="MA"), now, None, history)
    email = decide_now(proposal(region="MA", channel=Channel.EMAIL), now, None, history)
    assert text.verdict is Verdict.DEFERRED
    assert email.verdict is Verdict.APPROVED


def test_new_york_city_caps_all_media_at_three_a_week() -> None:
    history = [
        *sent(eastern("2026-06-08T12:00"), eastern("2026-06-09T12:00")),
        *sent(eastern("2026-06-09T13:00"), channel=Channel.EMAIL),
    ]
    decision = decide_now(
        proposal(region="NY", city="Brooklyn", channel=Channel.EMAIL), NOON, None, history
    )
    assert decision.verdict is Verdict.DEFERRED
    assert ids(decision) == ["US-NYC"]
    assert decision.defer_until == eastern("2026-06-15T08:00")


def test_caps_count_local_calendar_days_not_168_hour_blocks() -> None:
    # Two texts late on Monday 2026-06-08 local time; the following Monday at 08:00 is
    # fewer than 168 hours later, yet a new local week has begun.
    history = sent(eastern("2026-06-08T20:00"), eastern("2026-06-08T20:30"))
    decision = decide_now(proposal(region="MA"), eastern("2026-06-12T09:00"), None, history)
    assert decision.defer_until == eastern("2026-06-15T08:00")


def test_the_federal_default_caps_texts_and_email_together() -> None:
    history = sent(*(eastern(f"2026-06-0{day}T12:00") for day in range(4, 10)))
    history += sent(eastern("2026-06-09T13:00"), channel=Channel.EMAIL)
    decision = decide_now(proposal(), NOON, None, history)
    assert decision.verdict is Verdict.DEFERRED
    assert ids(decision) == ["US-F-7IN7"]


def test_washington_caps_at_three_a_week() -> None:
    history = sent(
        eastern("2026-06-08T12:00"), eastern("2026-06-09T12:00"), eastern("2026-06-09T13:00")
    )
    decision = decide_now(
        proposal(region="WA", time_zone="America/Los_Angeles"), NOON, None, history
    )
    assert decision.verdict is Verdict.DEFERRED
    assert ids(decision) == ["US-WA"]


def test_the_region_can_come_from_the_zip_code() -> None:
    history = sent(eastern("2026-06-08T12:00"), eastern("2026-06-09T12:00"))
    decision = decide_now(proposal(postal_code="02108"), NOON, None, history)
    assert decision.evidence["jurisdictions"] == ["US", "US-MA"]  # Boston
    assert ids(decision) == ["US-MA"]


# --- address eligibility ---


def test_sms_without_address_facts_is_vetoed_under_us_f_sms() -> None:
    decision = decide_now(proposal(address_facts=None), NOON)
    assert decision.verdict is Verdict.VETOED
    assert ids(decision) == ["US-F-SMS"]


def test_sms_confirmed_61_days_ago_is_vetoed() -> None:
    facts = eligible_facts(NOON - timedelta(days=61))
    decision = decide_now(proposal(address_facts=facts), NOON)
    assert decision.verdict is Verdict.VETOED
    assert ids(decision) == ["US-F-SMS"]


def test_a_confirmation_expiring_this_afternoon_ends_the_approval_then() -> None:
    facts = eligible_facts(eastern("2026-04-11T15:00"))  # 60 days later: 2026-06-10 15:00
    decision = decide_now(proposal(address_facts=facts), NOON)
    assert decision.verdict is Verdict.APPROVED
    assert decision.lawful_until == eastern("2026-06-10T15:00")


def test_a_number_the_debtor_texted_from_needs_no_separate_consent() -> None:
    facts = AddressFacts(
        provenance=AddressProvenance.CONSUMER_USED, confirmed_at=NOON - timedelta(days=1)
    )
    assert decide_now(proposal(address_facts=facts), NOON).verdict is Verdict.APPROVED


def test_email_of_unknown_provenance_is_vetoed_under_us_f_email() -> None:
    decision = decide_now(proposal(channel=Channel.EMAIL, address_facts=None), NOON)
    assert decision.verdict is Verdict.VETOED
    assert ids(decision) == ["US-F-EMAIL"]


def test_an_employer_email_without_the_debtors_consent_is_vetoed() -> None:
    facts = AddressFacts(provenance=AddressProvenance.CREDITOR_NOTICE, employer_provided=True)
    decision = decide_now(proposal(channel=Channel.EMAIL, address_facts=facts), NOON)
    assert ids(decision) == ["US-F-EMAIL"]
    consented = AddressFacts(
        provenance=AddressProvenance.CONSUMER_CONSENTED, employer_provided=True
    )
    assert (
        decide_now(proposal(channel=Channel.EMAIL, address_facts=consented), NOON).verdict
        is Verdict.APPROVED
    )


def test_new_york_state_refuses_creditor_notice_email_that_federal_rules_allow() -> None:
    facts = AddressFacts(provenance=AddressProvenance.CREDITOR_NOTICE)
    federal = decide_now(proposal(channel=Channel.EMAIL, address_facts=facts), NOON)
    state = decide_now(proposal(channel=Channel.EMAIL, address_facts=facts, region="NY"), NOON)
    assert federal.verdict is Verdict.APPROVED
    assert ids(state) == ["US-NYS"]


def test_new_york_city_needs_written_consent_for_texts() -> None:
    facts = AddressFacts(
        provenance=AddressProvenance.CONSUMER_USED, confirmed_at=NOON - timedelta(days=1)
    )
    decision = decide_now(proposal(address_facts=facts, region="NY", city="New York"), NOON)
    assert ids(decision) == ["US-NYC"]


def test_an_address_known_to_be_invalid_is_vetoed() -> None:
    debtor = DebtorState(invalid_address_keys=frozenset({EMAIL}))
    decision = decide_now(proposal(channel=Channel.EMAIL), NOON, debtor)
    assert ids(decision) == ["PARLEY-ADDRESS-INVALID"]


# --- preferences, campaign windows, state windows ---


def test_preferred_hours_narrow_the_window_and_are_cited() -> None:
    debtor = DebtorState(preferences=ContactPreferences(earliest=time(17), latest=time(19)))
    decision = decide_now(proposal(), NOON, debtor)
    assert decision.verdict is Verdict.DEFERRED
    assert ids(decision) == ["US-F-PREF"]
    assert decision.defer_until == eastern("2026-06-10T17:00")


def test_preferred_weekdays_skip_to_the_next_allowed_day() -> None:
    debtor = DebtorState(preferences=ContactPreferences(weekdays=(6, 7)))
    decision = decide_now(proposal(), NOON, debtor)
    assert decision.defer_until == eastern("2026-06-13T08:00")  # Saturday


def test_the_campaign_window_only_narrows() -> None:
    window = SendWindow(earliest=time(6), latest=time(10), weekdays=(1, 2, 3, 4, 5))
    decision = decide_now(proposal(send_window=window), NOON)
    assert decision.verdict is Verdict.DEFERRED
    assert ids(decision) == ["PARLEY-CAMPAIGN-WINDOW"]
    assert decision.defer_until == eastern("2026-06-11T08:00")  # never before 08:00


def test_washington_opens_at_0730_but_federal_eight_still_binds() -> None:
    now = datetime(2026, 6, 10, 7, 45, tzinfo=ZoneInfo("America/Los_Angeles"))
    decision = decide_now(proposal(region="WA", time_zone="America/Los_Angeles"), now)
    assert ids(decision) == ["US-F-TIME"]
    assert decision.defer_until == datetime(
        2026, 6, 10, 8, 0, tzinfo=ZoneInfo("America/Los_Angeles")
    )


# --- the rule files ---


def test_a_rule_file_with_a_bad_window_is_refused_naming_the_file() -> None:
    document = {
        "id": "XX",
        "name": "Nowhere",
        "country": "XX",
        "zones": ["Etc/UTC"],
        "opt_out_rule": "X",
        "preference_rule": "X",
        "time_windows": [{"rule_id": "X", "opens": "21:00", "closes": "08:00"}],
    }
    with pytest.raises(RuleSetError, match=r"(?s)xx\.yaml.*time_windows.*opens must be earlier"):
        parse_rule_set("1", {"xx.yaml": document})


def test_a_rule_file_naming_an_unknown_zone_is_refused() -> None:
    document = {
        "id": "XX",
        "name": "Nowhere",
        "country": "XX",
        "zones": ["Mars/Olympus_Mons"],
        "opt_out_rule": "X",
        "preference_rule": "X",
        "time_windows": [{"rule_id": "X", "opens": "08:00", "closes": "21:00"}],
    }
    with pytest.raises(RuleSetError, match="unknown time zones: Mars/Olympus_Mons"):
        parse_rule_set("1", {"xx.yaml": document})


def test_the_shipped_rule_set_has_a_real_version_and_every_jurisdiction() -> None:
    assert RULES.version != "2026.11-skeleton"
    assert {j.id for j in RULES.jurisdictions} >= {"US", "US-MA", "US-NY", "US-NYC", "US-WA", "GB"}
