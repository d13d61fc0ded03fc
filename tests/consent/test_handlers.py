"""Use cases with an in-memory store: idempotency, durability order, trace ids."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from opentelemetry.sdk.trace import TracerProvider
from parley_consent.handlers import apply_consent_change, decide_on_proposal
from parley_shared.events import Channel, Verdict

from tests.consent.builders import PHONE, RULES, opt_out, proposal
from tests.consent.fakes import FixedClock, InMemoryConsentStore

NOON_EASTERN = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)
RULES_1 = dataclasses.replace(RULES, version="r1")
RULES_2 = dataclasses.replace(RULES, version="r2")


async def test_a_decision_is_stored_and_returned() -> None:
    store = InMemoryConsentStore()
    reminder = proposal()
    decision = await decide_on_proposal(
        reminder, store=store, clock=FixedClock(NOON_EASTERN), rules=RULES_1
    )
    assert decision.verdict is Verdict.APPROVED
    assert decision.rule_set_version == "r1"
    assert store.decisions[reminder.proposal_id].decision == decision


async def test_a_redelivered_proposal_gets_the_stored_decision_unchanged() -> None:
    store = InMemoryConsentStore()
    reminder = proposal()
    first = await decide_on_proposal(
        reminder, store=store, clock=FixedClock(NOON_EASTERN), rules=RULES_1
    )
    # Later, the debtor opted out and the rules changed: the proposal was still decided
    # before, so the redelivery republishes exactly that decision.
    await apply_consent_change(opt_out(NOON_EASTERN), store=store)
    again = await decide_on_proposal(
        reminder,
        store=store,
        clock=FixedClock(NOON_EASTERN + timedelta(hours=10)),
        rules=RULES_2,
    )
    assert again == first
    assert again.event_id == first.event_id
    assert store.saves == 1


async def test_an_opt_out_recorded_first_vetoes_the_next_proposal() -> None:
    store = InMemoryConsentStore()
    await apply_consent_change(
        opt_out(NOON_EASTERN - timedelta(minutes=1), address=PHONE, channel=Channel.SMS),
        store=store,
    )
    decision = await decide_on_proposal(
        proposal(debtor_id="d-other"),
        store=store,
        clock=FixedClock(NOON_EASTERN),
        rules=RULES_1,
    )
    assert decision.verdict is Verdict.VETOED


async def test_a_consent_change_is_recorded_once_by_event_id() -> None:
    store = InMemoryConsentStore()
    change = opt_out(NOON_EASTERN)
    first = await apply_consent_change(change, store=store)
    replay = await apply_consent_change(
        change.model_copy(update={"evidence": "something else"}), store=store
    )
    assert first.newly_recorded
    assert not replay.newly_recorded
    assert replay.change == change
    assert len(store.changes) == 1


async def test_the_trace_id_of_the_current_span_is_stored_with_the_decision() -> None:
    store = InMemoryConsentStore()
    reminder = proposal()
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("consume") as span:
        await decide_on_proposal(
            reminder, store=store, clock=FixedClock(NOON_EASTERN), rules=RULES_1
        )
    expected = format(span.get_span_context().trace_id, "032x")
    assert store.decisions[reminder.proposal_id].trace_id == expected


async def test_outside_a_trace_no_trace_id_is_stored() -> None:
    store = InMemoryConsentStore()
    reminder = proposal()
    await decide_on_proposal(reminder, store=store, clock=FixedClock(NOON_EASTERN), rules=RULES_1)
    assert store.decisions[reminder.proposal_id].trace_id is None
