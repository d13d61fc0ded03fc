"""Faults for a period of time rather than a number of calls: what a provider outage looks
like to the messenger (503s for a while, then slow answers, then timeouts)."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from parley_sandbox.faults import FaultPlan, FaultRequest

SID = "AC00000000000000000000000000000001"
TWILIO_PATH = f"/2010-04-01/Accounts/{SID}/Messages.json"
TWILIO_AUTH = (SID, "sandbox-auth-token")
FORM = {"To": "+14155550100", "From": "+15005550006", "Body": "hi"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_timed_faults_follow_each_other_back_to_back() -> None:
    clock = FakeClock()
    plan = FaultPlan(clock)
    plan.add(FaultRequest(provider="twilio", kind="unavailable", for_seconds=30))
    plan.add(FaultRequest(provider="twilio", kind="slow", for_seconds=10, delay_seconds=2))
    plan.add(FaultRequest(provider="twilio", kind="server_error", times=2))
    assert plan.pending() == {"twilio": 4, "sendgrid": 0}

    kinds = []
    for at in (100.0, 110.0, 129.9, 130.0, 139.9, 150.0, 150.0, 150.0):
        clock.now = at
        fault = plan.next_for("twilio")
        kinds.append(fault.kind if fault else None)
    # 30 s of 503s however many calls, then 10 s of slow answers starting exactly when the
    # outage ended (not at the next call), then the two counted errors, then nothing.
    assert kinds == [
        "unavailable",
        "unavailable",
        "unavailable",
        "slow",
        "slow",
        "server_error",
        "server_error",
        None,
    ]
    assert plan.next_for("sendgrid") is None


def test_a_timed_fault_queued_behind_counted_ones_starts_when_they_are_used_up() -> None:
    clock = FakeClock()
    plan = FaultPlan(clock)
    plan.add(FaultRequest(provider="sendgrid", kind="rate_limit"))
    plan.add(FaultRequest(provider="sendgrid", kind="unavailable", for_seconds=5))
    clock.now = 200.0  # long after it was queued: the period has not started yet
    first = plan.next_for("sendgrid")
    assert first is not None and first.kind == "rate_limit"
    clock.now = 204.9
    during = plan.next_for("sendgrid")
    assert during is not None and during.kind == "unavailable"
    clock.now = 205.0
    assert plan.next_for("sendgrid") is None
    assert plan.pending() == {"twilio": 0, "sendgrid": 0}


def test_a_timed_fault_needs_a_positive_period() -> None:
    with pytest.raises(ValueError, match="for_seconds"):
        FaultRequest(provider="twilio", kind="unavailable", for_seconds=0)


async def test_an_outage_answers_503_until_its_period_ends(sandbox_url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url, auth=TWILIO_AUTH) as http:
        queued = await http.post(
            "/_sandbox/faults",
            json={"provider": "twilio", "kind": "unavailable", "for_seconds": 0.6},
        )
        assert queued.json() == {"twilio": 1, "sendgrid": 0}
        started = time.monotonic()
        statuses = []
        while time.monotonic() - started < 0.4:
            statuses.append((await http.post(TWILIO_PATH, data=FORM)).status_code)
        assert len(statuses) >= 3
        assert set(statuses) == {503}
        await asyncio.sleep(0.6)
        after = await http.post(TWILIO_PATH, data=FORM)
        assert after.status_code == 201
        # Only the call after the outage was accepted.
        assert len((await http.get("/_sandbox/messages")).json()) == 1
