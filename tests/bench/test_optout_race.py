"""Invariant 2 under load, on the real stack: opt-outs sent by text (STOP) and on the
preference page while approved reminders are being delivered are honoured within 1 s of
their acknowledgement, and are on record.

Runs ``bench/optout_race.py`` at a small size: 1,000 reminders, 100 opt-outs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from tests.bench.race_support import load_bench

race = load_bench("optout_race")


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with race.running_stack(
        tmp_path_factory.mktemp("optout-race"), progress=lambda _: None
    ) as stack:
        # Judged by when the messenger started each send (right after its opt-out check):
        # on a loaded test machine the stand-in may take a while to stamp an arrival.
        yield asyncio.run(race.run_race(stack, 1000, 100, judge="start", say=lambda _: None))


@pytest.mark.timeout(900)
def test_every_opt_out_is_acknowledged_through_both_endpoints(result: Any) -> None:
    refused = [(o.path, o.status, o.error) for o in result.opt_outs if o.acknowledged_at is None]
    assert refused == []
    summary = result.summary()
    assert summary["opt_outs_sms_stop"] == 50
    assert summary["opt_outs_preference_page"] == 50


@pytest.mark.timeout(900)
def test_the_opt_outs_raced_deliveries_in_flight(result: Any) -> None:
    summary = result.summary()
    # Every approved reminder has an outcome, and the opt-outs landed mid-delivery: some
    # opted-out debtors had already been sent to, and some approved sends were stopped.
    assert summary["approved"] == 1000
    assert summary["delivery_outcomes"] == 1000
    assert summary["addresses_with_any_send"] > 0
    assert summary["approved_sends_stopped_by_opt_out"] > 0


@pytest.mark.timeout(900)
def test_no_send_starts_more_than_a_second_after_an_acknowledged_opt_out(result: Any) -> None:
    debtor_of = {o.debtor.address: o.debtor.debtor_id for o in result.opt_outs}
    late = {debtor_of[address]: round(delta, 3) for address, delta in result.violations.items()}
    assert late == {}
    # The start of every send was found in the messenger's log: none went unjudged.
    assert {a for a, d in result.deltas.items() if d is not None} == {
        a for a, d in result.starts.items() if d is not None
    }
    # Stopped sends plus sends the stand-ins accepted account for every approved reminder.
    summary = result.summary()
    assert summary["accepted_by_stand_ins"] + summary["approved_sends_stopped_by_opt_out"] == 1000


@pytest.mark.timeout(900)
def test_every_acknowledged_opt_out_is_on_record(result: Any) -> None:
    summary = result.summary()
    # The messenger's send-time check has every one; consent, which owns consent, has
    # every preference-page choice (recorded there before the page answered).
    assert summary["suppressions_recorded"] == 100
    assert summary["consent_opt_outs_recorded_preference_page"] == 50
