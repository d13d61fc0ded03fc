"""The deliver use case with in-memory fakes: the at-most-once logic, quickly."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from parley_messenger.adapters.templates import TemplateRenderer
from parley_messenger.domain.model import OutboundMessage, ProviderOutcome, SendRecord, SendStatus
from parley_messenger.handlers import Deps, deliver
from parley_shared.events import Channel, DeliveryReported, DeliveryStatus, Verdict

from tests.messenger.factories import NOW, a_decision


class FakeLedger:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, SendRecord] = {}

    async def claim(self, record: SendRecord) -> SendRecord | None:
        if record.proposal_id in self.rows:
            return self.rows[record.proposal_id]
        self.rows[record.proposal_id] = record
        return None

    async def finish(self, record: SendRecord) -> bool:
        current = self.rows[record.proposal_id]
        if current.status not in (SendStatus.CLAIMED, SendStatus.UNKNOWN):
            return False
        self.rows[record.proposal_id] = record
        return True

    async def give_up_on_claim(
        self, proposal_id: uuid.UUID, finished_at: datetime, detail: str
    ) -> SendRecord | None:
        current = self.rows[proposal_id]
        if current.status is SendStatus.CLAIMED:
            self.rows[proposal_id] = replace(
                current, status=SendStatus.UNKNOWN, finished_at=finished_at, detail=detail
            )
        return self.rows[proposal_id]


class FakeSender:
    def __init__(self, outcome: ProviderOutcome | Exception) -> None:
        self.outcome = outcome
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> ProviderOutcome:
        self.sent.append(message)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.instant = now

    def now(self) -> datetime:
        return self.instant


class Harness:
    def __init__(self, outcome: ProviderOutcome | Exception | None = None) -> None:
        self.ledger = FakeLedger()
        self.sender = FakeSender(outcome or ProviderOutcome.sent("SM" + "1" * 32))
        self.published: list[DeliveryReported] = []
        self.clock = FixedClock(NOW)
        senders: Mapping[Channel, FakeSender] = {
            Channel.SMS: self.sender,
            Channel.EMAIL: self.sender,
        }
        self.deps = Deps(
            sends=self.ledger,
            senders=senders,
            renderer=TemplateRenderer(),
            publish=self._publish,
            clock=self.clock,
            public_base_url="https://parley.example",
        )

    async def _publish(self, report: DeliveryReported) -> None:
        self.published.append(report)


async def test_an_approved_decision_is_sent_once_and_reported() -> None:
    harness = Harness()
    decision = a_decision()
    report = await deliver(decision, harness.deps)
    assert report is not None
    assert report.status is DeliveryStatus.SENT
    assert report.provider_message_id == "SM" + "1" * 32
    assert len(harness.sender.sent) == 1
    assert harness.ledger.rows[decision.proposal_id].status is SendStatus.SENT
    assert harness.published == [report]


async def test_a_redelivered_decision_republishes_and_sends_nothing() -> None:
    harness = Harness()
    decision = a_decision()
    first = await deliver(decision, harness.deps)
    second = await deliver(decision, harness.deps)
    assert len(harness.sender.sent) == 1
    assert second == first  # same event id: consumers see a duplicate, not a new fact


async def test_a_redelivery_after_the_window_closed_still_reports_the_send() -> None:
    harness = Harness()
    decision = a_decision(lawful_until=NOW + timedelta(minutes=1))
    await deliver(decision, harness.deps)
    harness.clock.instant = NOW + timedelta(hours=1)
    report = await deliver(decision, harness.deps)
    assert report is not None
    assert report.status is DeliveryStatus.SENT
    assert len(harness.sender.sent) == 1


@pytest.mark.parametrize("verdict", [Verdict.VETOED, Verdict.DEFERRED])
async def test_only_approved_decisions_are_delivered(verdict: Verdict) -> None:
    harness = Harness()
    assert await deliver(a_decision(verdict=verdict), harness.deps) is None
    assert harness.sender.sent == []
    assert harness.published == []
    assert harness.ledger.rows == {}


async def test_an_expired_approval_is_reported_expired_and_not_sent() -> None:
    harness = Harness()
    decision = a_decision(lawful_until=NOW - timedelta(seconds=5))
    report = await deliver(decision, harness.deps)
    assert report is not None
    assert report.status is DeliveryStatus.EXPIRED
    assert harness.sender.sent == []
    assert harness.ledger.rows[decision.proposal_id].status is SendStatus.EXPIRED


async def test_a_provider_refusal_is_reported_failed_with_its_code() -> None:
    harness = Harness(ProviderOutcome.failed("21610", "Twilio refused (400)"))
    report = await deliver(a_decision(), harness.deps)
    assert report is not None
    assert (report.status, report.error_code) == (DeliveryStatus.FAILED, "21610")


async def test_a_broken_template_fails_without_calling_the_provider() -> None:
    harness = Harness()
    report = await deliver(a_decision(variables={"name": "Ada"}), harness.deps)
    assert report is not None
    assert (report.status, report.error_code) == (DeliveryStatus.FAILED, "template")
    assert harness.sender.sent == []


async def test_a_claim_without_outcome_is_never_resent_but_reported_unknown() -> None:
    harness = Harness(RuntimeError("bug in the adapter"))
    decision = a_decision()
    with pytest.raises(RuntimeError):
        await deliver(decision, harness.deps)
    assert harness.ledger.rows[decision.proposal_id].status is SendStatus.CLAIMED
    # The decision is redelivered (the handler raised): the message may have left.
    report = await deliver(decision, harness.deps)
    assert report is not None
    assert report.status is DeliveryStatus.UNKNOWN
    assert len(harness.sender.sent) == 1


async def test_a_publish_failure_is_retried_by_republishing() -> None:
    harness = Harness()
    decision = a_decision()
    attempts: list[DeliveryReported] = []

    async def flaky(report: DeliveryReported) -> None:
        attempts.append(report)
        if len(attempts) == 1:
            raise ConnectionError("broker away")

    harness.deps = replace(harness.deps, publish=flaky)
    with pytest.raises(ConnectionError):
        await deliver(decision, harness.deps)
    await deliver(decision, harness.deps)
    assert len(harness.sender.sent) == 1
    assert [a.status for a in attempts] == [DeliveryStatus.SENT, DeliveryStatus.SENT]
    assert attempts[0].event_id == attempts[1].event_id
