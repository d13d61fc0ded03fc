"""The lawful window (08:00-21:00 at the debtor's location), pure and fast."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from parley_consent.domain import DebtorState, Decision
from parley_shared.events import Channel, ContactPreferences, Verdict

from tests.consent.builders import decide_now, eligible_facts, proposal

NEW_YORK = ZoneInfo("America/New_York")
LOS_ANGELES = ZoneInfo("America/Los_Angeles")
LONDON = ZoneInfo("Europe/London")
# An email with no zone, ZIP or phone: nothing says where the debtor is.
NOWHERE: dict[str, Any] = {"time_zone": None, "channel": Channel.EMAIL}


def local(text: str, zone: ZoneInfo = NEW_YORK) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def decide_at(now: datetime, debtor: DebtorState | None = None, **overrides: Any) -> Decision:
    # The number was confirmed the day before, whatever the date of the test.
    overrides.setdefault("address_facts", eligible_facts(now - timedelta(days=1)))
    return decide_now(proposal(**overrides), now, debtor)


# --- window edges, New York in summer (EDT, UTC-4) ---


def test_a_minute_before_eight_is_deferred_to_eight() -> None:
    decision = decide_at(local("2026-06-10T07:59"))
    assert decision.verdict is Verdict.DEFERRED
    assert decision.defer_until == local("2026-06-10T08:00")
    assert decision.lawful_until is None
    assert [reason.rule_id for reason in decision.reasons] == ["US-F-TIME"]


def test_seconds_before_eight_defer_to_the_whole_minute() -> None:
    decision = decide_at(local("2026-06-10T07:59:30"))
    assert decision.defer_until == local("2026-06-10T08:00")


def test_eight_exactly_is_approved_until_nine_in_the_evening() -> None:
    decision = decide_at(local("2026-06-10T08:00"))
    assert decision.verdict is Verdict.APPROVED
    assert decision.lawful_until == local("2026-06-10T21:00")
    assert decision.defer_until is None


def test_a_minute_before_nine_in_the_evening_is_approved() -> None:
    decision = decide_at(local("2026-06-10T20:59"))
    assert decision.verdict is Verdict.APPROVED
    assert decision.lawful_until == local("2026-06-10T21:00")


def test_nine_in_the_evening_is_deferred_to_eight_next_morning() -> None:
    decision = decide_at(local("2026-06-10T21:00"))
    assert decision.verdict is Verdict.DEFERRED
    assert decision.defer_until == local("2026-06-11T08:00")


def test_just_after_midnight_is_deferred_to_eight_that_morning() -> None:
    decision = decide_at(local("2026-06-11T00:10"))
    assert decision.defer_until == local("2026-06-11T08:00")


def test_timestamps_are_utc_on_the_decision() -> None:
    decision = decide_at(local("2026-06-10T21:00"))
    assert decision.defer_until is not None
    assert decision.defer_until.utcoffset() is not None
    assert decision.defer_until == utc("2026-06-11T12:00")


# --- daylight saving (contact-rules.md worked example 2) ---


def test_dst_start_saturday_job_at_1230z_is_0730_est_and_deferred_to_1300z() -> None:
    decision = decide_at(utc("2026-03-07T12:30"))
    assert decision.verdict is Verdict.DEFERRED
    assert decision.defer_until == utc("2026-03-07T13:00")


def test_dst_start_sunday_job_at_1230z_is_0830_edt_and_allowed() -> None:
    decision = decide_at(utc("2026-03-08T12:30"))
    assert decision.verdict is Verdict.APPROVED
    assert decision.lawful_until == utc("2026-03-09T01:00")  # 21:00 EDT


def test_the_night_before_dst_starts_defers_to_eight_on_the_new_offset() -> None:
    # 22:00 EST on Saturday; the clocks go forward overnight, so 08:00 is 12:00Z, not 13:00Z.
    decision = decide_at(local("2026-03-07T22:00"))
    assert decision.defer_until == utc("2026-03-08T12:00")


def test_the_night_before_dst_ends_defers_to_eight_on_the_new_offset() -> None:
    # 22:00 EDT on Saturday 2026-10-31; clocks go back overnight, so 08:00 EST is 13:00Z.
    decision = decide_at(local("2026-10-31T22:00"))
    assert decision.defer_until == utc("2026-11-01T13:00")


# --- unknown zone: every candidate zone must agree (US-F-TZ) ---


def test_unknown_us_zone_needs_a_time_lawful_from_new_york_to_honolulu() -> None:
    # The US candidates run from Eastern to Hawaii (UTC-10, no DST). In summer the common
    # window is 08:00 Hawaii (18:00Z = 14:00 EDT) until 21:00 Eastern (01:00Z).
    decision = decide_at(local("2026-06-10T10:30"), **NOWHERE)
    assert decision.verdict is Verdict.DEFERRED
    assert decision.defer_until == local("2026-06-10T14:00")
    assert decision.defer_until == local("2026-06-10T08:00", ZoneInfo("Pacific/Honolulu"))
    assert [reason.rule_id for reason in decision.reasons] == ["US-F-TZ", "US-F-TIME"]


def test_unknown_us_zone_in_winter_opens_at_1300_eastern() -> None:
    # Eastern is UTC-5 in winter while Hawaii stays UTC-10: 08:00 Hawaii is 13:00 EST.
    decision = decide_at(local("2026-01-14T10:30"), **NOWHERE)
    assert decision.defer_until == local("2026-01-14T13:00")


def test_unknown_us_zone_is_approved_until_nine_in_the_evening_eastern() -> None:
    decision = decide_at(local("2026-06-10T15:00"), **NOWHERE)
    assert decision.verdict is Verdict.APPROVED
    assert decision.lawful_until == local("2026-06-10T21:00")
    assert [reason.rule_id for reason in decision.reasons] == ["US-F-TZ", "US-F-TIME"]


def test_an_unrecognised_zone_counts_as_unknown() -> None:
    decision = decide_at(local("2026-06-10T10:30"), **{**NOWHERE, "time_zone": "Mars/Olympus_Mons"})
    assert decision.defer_until == local("2026-06-10T14:00")
    assert decision.reasons[0].rule_id == "US-F-TZ"


# --- conflicting location evidence (contact-rules.md worked example 1) ---


def test_new_york_phone_and_los_angeles_address_window_is_eleven_to_nine_eastern() -> None:
    where: dict[str, Any] = {"time_zone": None, "address": "+12125550100", "postal_code": "90001"}
    early = decide_at(local("2026-06-10T10:30"), **where)
    assert early.verdict is Verdict.DEFERRED
    assert early.defer_until == local("2026-06-10T11:00")
    assert sorted(early.evidence["zones"]) == ["America/Los_Angeles", "America/New_York"]
    late = decide_at(local("2026-06-10T21:05"), **where)
    assert late.defer_until == local("2026-06-11T11:00")
    assert [reason.rule_id for reason in late.reasons] == ["US-F-TZ", "US-F-TIME"]
    opening = decide_at(local("2026-06-10T11:00"), **where)
    assert opening.verdict is Verdict.APPROVED
    assert opening.lawful_until == local("2026-06-10T21:00")


def test_preferred_hours_outside_the_lawful_window_leave_no_time_and_veto() -> None:
    debtor = DebtorState(preferences=ContactPreferences(earliest=time(6), latest=time(7, 30)))
    decision = decide_at(local("2026-06-10T12:00"), debtor)
    assert decision.verdict is Verdict.VETOED
    assert decision.defer_until is None
    # Both sources of hours take part: the preference and the lawful window never meet.
    assert [reason.rule_id for reason in decision.reasons] == ["US-F-PREF", "US-F-TIME"]


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        decide_now(proposal(), datetime(2026, 6, 10, 12))


# --- the United Kingdom (UK-CONC79) and countries without rules ---


def test_uk_debtor_before_eight_is_deferred_under_conc_7_9() -> None:
    decision = decide_at(local("2026-06-10T07:30", LONDON), country="GB", time_zone="Europe/London")
    assert decision.verdict is Verdict.DEFERRED
    assert decision.defer_until == local("2026-06-10T08:00", LONDON)
    assert [reason.rule_id for reason in decision.reasons] == ["UK-CONC79"]


def test_uk_debtor_without_a_zone_uses_london_and_cites_no_us_rule() -> None:
    decision = decide_at(
        local("2026-12-01T20:59", LONDON),
        country="GB",
        time_zone=None,
        address="+447700900123",
    )
    assert decision.verdict is Verdict.APPROVED
    assert decision.lawful_until == local("2026-12-01T21:00", LONDON)
    assert [reason.rule_id for reason in decision.reasons] == ["UK-CONC79"]


def test_a_country_without_rules_is_vetoed() -> None:
    decision = decide_at(local("2026-06-10T12:00"), country="FR", time_zone="Europe/Paris")
    assert decision.verdict is Verdict.VETOED
    assert [reason.rule_id for reason in decision.reasons] == ["PARLEY-NO-JURISDICTION"]


def test_email_follows_the_same_window() -> None:
    decision = decide_at(local("2026-06-10T06:00"), channel=Channel.EMAIL)
    assert decision.defer_until == local("2026-06-10T08:00")
