"""Properties of ``decide`` over random zones, instants (DST changes, leap days, year
ends), holds, preferences and contact histories."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parley_consent.domain import DebtorState, Decision, Hold, PastContact
from parley_consent.domain.consent_state import ConsentRecord, ConsentState
from parley_shared.events import (
    Channel,
    ConsentChangeKind,
    ContactPreferences,
    HoldKind,
    ReminderProposed,
    Verdict,
)

from tests.consent.builders import decide_now, eligible_facts, proposal

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Instants where calendars and clocks misbehave; random offsets around them.
AWKWARD = [
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # US spring forward
    datetime(2026, 11, 1, 6, 0, tzinfo=UTC),  # US fall back
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # UK spring forward
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),  # UK fall back
    datetime(2028, 2, 29, 12, 0, tzinfo=UTC),  # leap day
    datetime(2026, 12, 31, 23, 0, tzinfo=UTC),  # year end
]
instants = st.one_of(
    st.datetimes(
        min_value=datetime(2025, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
    ),
    st.builds(
        lambda base, minutes: base + timedelta(minutes=minutes),
        st.sampled_from(AWKWARD),
        st.integers(min_value=-3 * 24 * 60, max_value=3 * 24 * 60),
    ),
)

# Where the debtor is: an explicit zone, a ZIP and phone that disagree, or nothing at all.
PLACES: list[dict[str, Any]] = [
    {"time_zone": "America/New_York"},
    {"time_zone": "America/Phoenix"},
    {"time_zone": "Pacific/Honolulu"},
    {"time_zone": "America/Anchorage"},
    {"time_zone": None, "postal_code": "90001"},
    {"time_zone": None, "postal_code": "99501", "location_phones": ("+12125550100",)},
    {"time_zone": None, "region": "MA", "postal_code": "02108"},
    {"time_zone": "America/Los_Angeles", "region": "WA"},
    {"time_zone": "America/New_York", "region": "NY", "city": "Brooklyn"},
    {"time_zone": None},
    {"time_zone": "Europe/London", "country": "GB", "address": "+447700900123"},
]


@st.composite
def situations(
    draw: st.DrawFn,
) -> tuple[ReminderProposed, DebtorState, list[PastContact], datetime]:
    now = draw(instants)
    place = dict(draw(st.sampled_from(PLACES)))
    channel = draw(st.sampled_from([Channel.SMS, Channel.EMAIL]))
    if channel is Channel.EMAIL:
        place.pop("address", None)
    reminder = proposal(
        channel=channel, address_facts=eligible_facts(now - timedelta(days=1)), **place
    )
    holds = tuple(
        Hold(
            kind=draw(
                st.sampled_from([HoldKind.HARDSHIP, HoldKind.BREATHING_SPACE, HoldKind.DISPUTE])
            ),
            starts_at=now + timedelta(hours=draw(st.integers(-200, 100))),
            ends_at=now + timedelta(hours=draw(st.integers(101, 900))),
        )
        for _ in range(draw(st.integers(0, 1)))
    )
    preferences = draw(
        st.one_of(
            st.none(),
            st.builds(
                lambda earliest, span, weekdays: ContactPreferences(
                    earliest=time(earliest),
                    latest=time(min(earliest + span, 23)),
                    weekdays=weekdays,
                ),
                st.integers(6, 18),
                st.integers(1, 6),
                st.one_of(
                    st.none(),
                    st.lists(st.integers(1, 7), min_size=1, max_size=7, unique=True).map(tuple),
                ),
            ),
        )
    )
    history = [
        PastContact(
            uuid.uuid4(),
            draw(st.sampled_from([Channel.SMS, Channel.EMAIL])),
            now - timedelta(minutes=draw(st.integers(1, 10 * 24 * 60))),
        )
        for _ in range(draw(st.integers(0, 5)))
    ]
    return reminder, DebtorState(holds=holds, preferences=preferences), history, now


def lawful_everywhere(decision: Decision, instant: datetime) -> bool:
    """Within 08:00-21:00 (the loosest lawful hours any rule file has, after WA's 07:30 is
    narrowed by federal 08:00) in every zone the decision considered."""
    for name in decision.evidence["zones"]:
        wall = instant.astimezone(ZoneInfo(name)).time()
        if not time(8) <= wall < time(21):
            return False
    return True


@FAST
@given(situations())
def test_nothing_is_ever_allowed_outside_the_lawful_window(
    situation: tuple[ReminderProposed, DebtorState, list[PastContact], datetime],
) -> None:
    reminder, debtor, history, now = situation
    decision = decide_now(reminder, now, debtor, history)
    if decision.verdict is Verdict.APPROVED:
        assert decision.lawful_until is not None and decision.lawful_until > now
        assert lawful_everywhere(decision, now)
        assert lawful_everywhere(decision, decision.lawful_until - timedelta(microseconds=1))


@FAST
@given(situations())
def test_a_deferral_evaluated_again_at_its_time_is_allowed(
    situation: tuple[ReminderProposed, DebtorState, list[PastContact], datetime],
) -> None:
    reminder, debtor, history, now = situation
    decision = decide_now(reminder, now, debtor, history)
    if decision.verdict is Verdict.DEFERRED:
        assert decision.defer_until is not None and decision.defer_until > now
        again = decide_now(reminder, decision.defer_until, debtor, history)
        assert again.verdict is Verdict.APPROVED, again.reasons


restrictions = st.sampled_from(["opt_out", "hold", "contact"])


@FAST
@given(situations(), restrictions, st.integers(0, 5 * 24 * 60))
def test_adding_an_opt_out_a_hold_or_a_past_contact_never_turns_a_refusal_into_an_allow(
    situation: tuple[ReminderProposed, DebtorState, list[PastContact], datetime],
    restriction: str,
    minutes_ago: int,
) -> None:
    reminder, debtor, history, now = situation
    before = decide_now(reminder, now, debtor, history)
    earlier = now - timedelta(minutes=minutes_ago + 1)
    if restriction == "opt_out":
        opt_out = ConsentRecord(
            reminder.debtor_id, ConsentChangeKind.OPT_OUT, reminder.channel, None, earlier
        )
        debtor = DebtorState(
            consent=ConsentState((*debtor.consent.records, opt_out)),
            holds=debtor.holds,
            preferences=debtor.preferences,
        )
    elif restriction == "hold":
        hold = Hold(HoldKind.HARDSHIP, starts_at=earlier, ends_at=now + timedelta(days=2))
        debtor = DebtorState(holds=(*debtor.holds, hold), preferences=debtor.preferences)
    else:
        history = [*history, PastContact(uuid.uuid4(), reminder.channel, earlier)]
    after = decide_now(reminder, now, debtor, history)
    if before.verdict is not Verdict.APPROVED:
        assert after.verdict is not Verdict.APPROVED
    if before.verdict is Verdict.VETOED:
        assert after.verdict is Verdict.VETOED
    if after.verdict is Verdict.DEFERRED and before.verdict is Verdict.DEFERRED:
        assert after.defer_until is not None and before.defer_until is not None
        assert after.defer_until >= before.defer_until
