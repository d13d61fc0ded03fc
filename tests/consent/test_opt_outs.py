"""Opt-outs and opt-ins: which contact they stop, what lifts them, and that a veto wins."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from parley_consent.domain import DebtorState, Decision, decide, decision_id_for
from parley_shared.events import Channel, ConsentChanged, Verdict

from tests.consent.builders import EMAIL, PHONE, RULES, decide_now, opt_in, opt_out, proposal

# 16:00Z is 12:00 in New York: inside the window, so only consent decides.
NOON_EASTERN = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)
EARLIER = NOON_EASTERN - timedelta(days=3)
LATER = NOON_EASTERN - timedelta(days=1)


def decide_with(changes: list[ConsentChanged], **overrides: Any) -> Decision:
    reminder = proposal(**overrides)
    return decide_now(reminder, NOON_EASTERN, DebtorState.from_events(reminder.debtor_id, changes))


def test_no_opt_outs_is_approved() -> None:
    assert decide_with([]).verdict is Verdict.APPROVED


def test_debtor_wide_opt_out_vetoes_every_channel() -> None:
    changes = [opt_out(EARLIER)]
    for channel in Channel:
        decision = decide_with(changes, channel=channel)
        assert decision.verdict is Verdict.VETOED
        assert [reason.rule_id for reason in decision.reasons] == ["US-F-MEDIUM"]
        assert decision.reasons[0].explanation.startswith("The debtor opted out of all contact")


def test_email_opt_out_sent_by_sms_stops_email_only() -> None:
    # contact-rules.md worked example 4: "stop emailing me" received by SMS.
    changes = [opt_out(EARLIER, channel=Channel.EMAIL)]
    assert decide_with(changes, channel=Channel.EMAIL).verdict is Verdict.VETOED
    assert decide_with(changes, channel=Channel.SMS).verdict is Verdict.APPROVED


def test_address_opt_out_stops_that_address_only() -> None:
    changes = [opt_out(EARLIER, channel=Channel.SMS, address=PHONE)]
    vetoed = decide_with(changes, address=PHONE)
    assert vetoed.verdict is Verdict.VETOED
    assert vetoed.reasons[0].explanation.startswith("This sms address was opted out")
    assert decide_with(changes, address="+12125550199").verdict is Verdict.APPROVED


def test_address_opt_out_covers_every_debtor_using_that_address() -> None:
    changes = [opt_out(EARLIER, debtor_id="d-1", address=PHONE)]
    decision = decide_with(changes, debtor_id="d-2", address=PHONE)
    assert decision.verdict is Verdict.VETOED


def test_addresses_match_however_they_are_written() -> None:
    changes = [
        opt_out(EARLIER, address="+1 (212) 555-0100"),
        opt_out(EARLIER, address="  Dana.Debtor@Example.COM "),
    ]
    assert decide_with(changes, address=PHONE).verdict is Verdict.VETOED
    assert decide_with(changes, channel=Channel.EMAIL, address=EMAIL).verdict is Verdict.VETOED


def test_another_debtors_channel_opt_out_does_not_apply() -> None:
    changes = [
        opt_out(EARLIER, debtor_id="d-2"),
        opt_out(EARLIER, debtor_id="d-2", channel=Channel.SMS),
    ]
    assert decide_with(changes, debtor_id="d-1").verdict is Verdict.APPROVED


def test_opt_in_after_an_opt_out_lifts_it() -> None:
    changes = [opt_in(LATER, channel=Channel.SMS), opt_out(EARLIER, channel=Channel.SMS)]
    assert decide_with(changes).verdict is Verdict.APPROVED


def test_opt_in_before_an_opt_out_does_not_lift_it() -> None:
    changes = [opt_in(EARLIER, channel=Channel.SMS), opt_out(LATER, channel=Channel.SMS)]
    assert decide_with(changes).verdict is Verdict.VETOED


def test_opt_in_at_the_same_instant_leaves_the_opt_out_standing() -> None:
    changes = [opt_out(EARLIER), opt_in(EARLIER)]
    assert decide_with(changes).verdict is Verdict.VETOED


def test_opt_in_to_sms_after_stop_all_allows_sms_but_not_email() -> None:
    changes = [opt_out(EARLIER), opt_in(LATER, channel=Channel.SMS)]
    assert decide_with(changes, channel=Channel.SMS).verdict is Verdict.APPROVED
    assert decide_with(changes, channel=Channel.EMAIL).verdict is Verdict.VETOED


def test_start_from_the_address_lifts_its_opt_out_for_everyone() -> None:
    changes = [
        opt_out(EARLIER, debtor_id="d-1", address=PHONE),
        opt_in(LATER, debtor_id="d-2", address=PHONE),
    ]
    assert decide_with(changes, debtor_id="d-1").verdict is Verdict.APPROVED
    assert decide_with(changes, debtor_id="d-2").verdict is Verdict.APPROVED


def test_another_debtors_preferences_do_not_lift_a_stop_of_a_shared_address() -> None:
    changes = [
        opt_out(EARLIER, debtor_id="d-1", address=PHONE),
        opt_in(LATER, debtor_id="d-2"),
    ]
    assert decide_with(changes, debtor_id="d-2").verdict is Verdict.VETOED


def test_the_debtor_who_stopped_an_address_can_opt_back_in() -> None:
    changes = [opt_out(EARLIER, debtor_id="d-1", address=PHONE), opt_in(LATER, debtor_id="d-1")]
    assert decide_with(changes, debtor_id="d-1").verdict is Verdict.APPROVED


def test_a_later_opt_out_after_an_opt_in_vetoes_again() -> None:
    changes = [
        opt_out(EARLIER - timedelta(days=1)),
        opt_in(EARLIER),
        opt_out(LATER, channel=Channel.SMS),
    ]
    assert decide_with(changes).verdict is Verdict.VETOED


def test_veto_takes_precedence_over_deferral() -> None:
    ten_at_night_eastern = datetime(2026, 6, 11, 2, 0, tzinfo=UTC)
    decision = decide_now(
        proposal(), ten_at_night_eastern, DebtorState.from_events("d-1", [opt_out(EARLIER)])
    )
    assert decision.verdict is Verdict.VETOED
    assert decision.defer_until is None
    assert [reason.rule_id for reason in decision.reasons] == ["US-F-MEDIUM"]


def test_uk_opt_out_cites_conc_7_9() -> None:
    decision = decide_with(
        [opt_out(EARLIER)], country="GB", time_zone="Europe/London", address="+447700900123"
    )
    assert decision.verdict is Verdict.VETOED
    assert [reason.rule_id for reason in decision.reasons] == ["UK-CONC79"]


def test_explanations_hold_no_personal_data() -> None:
    changes = [opt_out(EARLIER, address=PHONE), opt_out(EARLIER, channel=Channel.EMAIL)]
    decisions = [
        decide_with(changes),
        decide_with(changes, channel=Channel.EMAIL),
        decide_with([]),
        decide_now(proposal(time_zone=None), NOON_EASTERN),
    ]
    personal = [PHONE, "2125550100", EMAIL, "Dana", "120"]
    for decision in decisions:
        for reason in decision.reasons:
            assert not [value for value in personal if value in reason.explanation], reason


def test_a_decision_records_its_proposal_rules_version_and_a_stable_id() -> None:
    reminder = proposal()
    rules = dataclasses.replace(RULES, version="2026.11-test")
    decision = decide(reminder, DebtorState(), [], NOON_EASTERN, rules).to_event(
        reminder, NOON_EASTERN
    )
    later = NOON_EASTERN + timedelta(minutes=5)
    again = decide(reminder, DebtorState(), [], later, rules).to_event(reminder, later)
    assert decision.proposal == reminder
    assert decision.proposal_id == reminder.proposal_id
    assert decision.debtor_id == reminder.debtor_id
    assert decision.rule_set_version == "2026.11-test"
    assert decision.occurred_at == NOON_EASTERN
    assert decision.event_id == again.event_id == decision_id_for(reminder.proposal_id)
