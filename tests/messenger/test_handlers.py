"""The deliver use case with in-memory fakes: the at-most-once logic, quickly."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from parley_messenger.adapters.templates import TemplateRenderer
from parley_messenger.domain.model import OutboundMessage, ProviderOutcome, SendRecord, SendStatus
from parley_messenger.domain.retry import RetryPolicy
from parley_messenger.domain.suppression import SuppressionChange, address_scope
from parley_messenger.handlers import Deps, deliver
from parley_shared.events import (
    Channel,
    ConsentChanged,
    ConsentChangeKind,
    DeliveryReported,
    DeliveryStatus,
    Verdict,
)

from tests.messenger.factories import NOW, a_decision

RATE_LIMITED = ProviderOutcome.refused_for_now("20429", "Twilio refused for now (429)")
SENT = ProviderOutcome.sent("SM" + "2" * 32)


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


class FakeSuppressions:
    def __init__(self) -> None:
        self.scopes: dict[str, SuppressionChange] = {}

    async def apply(self, changes: list[SuppressionChange]) -> bool:
        newly = False
        for change in changes:
            before = self.scopes.get(change.scope)
            newly = newly or (change.suppressed and not (before and before.suppressed))
            self.scopes[change.scope] = change
        return newly

    async def first_suppressing(self, scopes: tuple[str, ...]) -> str | None:
        hits = [self.scopes[s] for s in scopes if s in self.scopes and self.scopes[s].suppressed]
        return f"{hits[0].reason} ({hits[0].source})" if hits else None


class FakeSender:
    """Answers with the given outcomes in turn (the last one repeats)."""

    def __init__(self, *outcomes: ProviderOutcome | Exception) -> None:
        self.outcomes = list(outcomes)
        self.sent: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> ProviderOutcome:
        self.sent.append(message)
        outcome = self.outcomes[min(len(self.sent), len(self.outcomes)) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


class Signer:
    def sign(self, proposal_id: uuid.UUID) -> str:
        return "signed"


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.instant = now

    def now(self) -> datetime:
        return self.instant


class Harness:
    def __init__(self, *outcomes: ProviderOutcome | Exception) -> None:
        self.ledger = FakeLedger()
        self.sender = FakeSender(*(outcomes or (ProviderOutcome.sent("SM" + "1" * 32),)))
        self.published: list[DeliveryReported] = []
        self.consent: list[ConsentChanged] = []
        self.suppressions = FakeSuppressions()
        self.sleeps: list[float] = []
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
            suppressions=self.suppressions,
            publish_consent=self._publish_consent,
            link_signer=Signer(),
            retry=RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=8.0),
            sleep=self._sleep,
        )

    async def _publish(self, report: DeliveryReported) -> None:
        self.published.append(report)

    async def _publish_consent(self, change: ConsentChanged) -> None:
        self.consent.append(change)

    async def _sleep(self, seconds: float) -> None:
        # Time passes on the fake clock instead of the test's.
        self.sleeps.append(seconds)
        self.clock.instant += timedelta(seconds=seconds)


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
    harness = Harness(RuntimeError("bug in the adapter"), SENT)
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


async def test_a_rate_limited_send_is_retried_with_growing_jittered_waits() -> None:
    harness = Harness(RATE_LIMITED, RATE_LIMITED, SENT)
    report = await deliver(a_decision(), harness.deps)
    assert report is not None
    assert (report.status, report.provider_message_id) == (DeliveryStatus.SENT, "SM" + "2" * 32)
    assert len(harness.sender.sent) == 3
    # Full jitter: each wait is drawn below a ceiling that doubles (1 s, then 2 s).
    assert len(harness.sleeps) == 2
    assert 0 <= harness.sleeps[0] <= 1.0
    assert 0 <= harness.sleeps[1] <= 2.0


async def test_retries_stop_after_the_last_attempt_with_the_providers_code() -> None:
    harness = Harness(RATE_LIMITED)
    report = await deliver(a_decision(), harness.deps)
    assert report is not None
    assert (report.status, report.error_code) == (DeliveryStatus.FAILED, "20429")
    assert "gave up after 4 attempts" in (report.detail or "")
    assert len(harness.sender.sent) == 4


async def test_no_retry_would_start_after_the_lawful_window() -> None:
    # The provider asks for a one-second wait; with 1.5 s left, the wait plus the
    # one-second margin passes the window.
    asks_to_wait = ProviderOutcome.refused_for_now("20429", "rate limited", retry_after=1.0)
    harness = Harness(asks_to_wait, SENT)
    decision = a_decision(lawful_until=NOW + timedelta(seconds=1, milliseconds=500))
    report = await deliver(decision, harness.deps)
    assert report is not None
    assert (report.status, report.error_code) == (DeliveryStatus.FAILED, "20429")
    assert len(harness.sender.sent) == 1
    assert harness.sleeps == []


@pytest.mark.parametrize(
    "outcome",
    [
        ProviderOutcome.unknown("no answer from Twilio: timed out waiting for the answer"),
        ProviderOutcome.failed("21211", "Twilio refused (400)"),
    ],
)
async def test_an_unknown_or_final_outcome_is_never_retried(outcome: ProviderOutcome) -> None:
    harness = Harness(outcome, SENT)
    report = await deliver(a_decision(), harness.deps)
    assert report is not None
    assert report.status is not DeliveryStatus.SENT
    assert len(harness.sender.sent) == 1


async def test_an_opt_out_recorded_before_dispatch_stops_the_send() -> None:
    harness = Harness()
    decision = a_decision()
    await harness.suppressions.apply(
        [
            SuppressionChange(
                address_scope(Channel.SMS, decision.proposal.address),
                True,
                "opt_out",
                "sms_reply",
                "inbound SM1",
                NOW,
            )
        ]
    )
    report = await deliver(decision, harness.deps)
    assert report is not None
    assert (report.status, report.error_code) == (DeliveryStatus.FAILED, "opted-out")
    assert harness.sender.sent == []
    assert harness.ledger.rows[decision.proposal_id].status is SendStatus.SUPPRESSED


async def test_an_opt_out_arriving_between_retries_stops_the_next_attempt() -> None:
    harness = Harness(RATE_LIMITED, SENT)
    decision = a_decision()

    async def opt_out_while_waiting(seconds: float) -> None:
        await harness._sleep(seconds)
        change = SuppressionChange(
            address_scope(Channel.SMS, decision.proposal.address),
            True,
            "opt_out",
            "sms_reply",
            "inbound SM2",
            harness.clock.instant,
        )
        await harness.suppressions.apply([change])

    harness.deps = replace(harness.deps, sleep=opt_out_while_waiting)
    report = await deliver(decision, harness.deps)
    assert report is not None
    assert report.error_code == "opted-out"
    assert len(harness.sender.sent) == 1


async def test_21610_becomes_an_opt_out_here_and_for_the_consent_service() -> None:
    harness = Harness(ProviderOutcome.failed("21610", "Twilio refused (400)"))
    decision = a_decision()
    await deliver(decision, harness.deps)
    (change,) = harness.consent
    assert change.kind is ConsentChangeKind.OPT_OUT
    assert (change.channel, change.address) == (Channel.SMS, decision.proposal.address)
    assert change.debtor_id == decision.debtor_id
    later = a_decision(debtor_id="another-debtor")  # same number, another account
    assert await harness.suppressions.first_suppressing(
        (address_scope(Channel.SMS, later.proposal.address),)
    )
    # Redelivered: the same event again (same id), never a second send.
    await deliver(decision, harness.deps)
    assert [c.event_id for c in harness.consent] == [change.event_id] * 2
    assert len(harness.sender.sent) == 1


async def test_21211_marks_the_address_invalid() -> None:
    harness = Harness(ProviderOutcome.failed("21211", "Twilio refused (400)"))
    await deliver(a_decision(), harness.deps)
    assert [c.kind for c in harness.consent] == [ConsentChangeKind.ADDRESS_INVALID]
