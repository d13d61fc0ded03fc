"""The messenger's use case: deliver one approved decision, at most once.

The ``sends`` row is claimed and committed before the provider is called. Whoever finds
the row already there (a redelivered decision, a restart, a second consumer) sends
nothing and republishes the stored outcome instead. Between the claim and each provider
call the opt-outs and the lawful window are checked again; a refusal that provably left
nothing at the provider (429, 5xx, nobody listening) is retried within the window.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from opentelemetry import trace
from parley_shared.clock import Clock
from parley_shared.events import (
    Channel,
    ConsentChanged,
    ConsentChangeKind,
    ConsentSource,
    ContactDecision,
    DeliveryReported,
    Verdict,
)

from parley_messenger.domain.dispatch import validity_period_seconds, why_not_dispatchable
from parley_messenger.domain.model import (
    OutboundMessage,
    ProviderOutcome,
    SendRecord,
    SendStatus,
    provider_for,
    report_for,
)
from parley_messenger.domain.rendering import (
    MessageLinks,
    RenderedContent,
    RenderError,
    compose,
    preferences_url,
    status_callback_url,
    unsubscribe_url,
)
from parley_messenger.domain.retry import RetryPolicy
from parley_messenger.domain.suppression import (
    SuppressionChange,
    scopes_for_send,
    suppression_change,
)

log = logging.getLogger(__name__)


class Sender(Protocol):
    """A provider adapter. ``send`` maps every provider answer and transport error it
    knows to an outcome; only bugs raise."""

    async def send(self, message: OutboundMessage) -> ProviderOutcome: ...


class Renderer(Protocol):
    def render(
        self, template: str, channel: Channel, locale: str, variables: Mapping[str, str]
    ) -> RenderedContent: ...


class SendLedger(Protocol):
    async def claim(self, record: SendRecord) -> SendRecord | None: ...

    async def finish(self, record: SendRecord) -> bool: ...

    async def give_up_on_claim(
        self, proposal_id: uuid.UUID, finished_at: datetime, detail: str
    ) -> SendRecord | None: ...


class Suppressions(Protocol):
    async def apply(self, changes: list[SuppressionChange]) -> bool: ...

    async def first_suppressing(self, scopes: tuple[str, ...]) -> str | None: ...


class LinkSigner(Protocol):
    def sign(self, proposal_id: uuid.UUID) -> str: ...


class PreferenceLinkSigner(Protocol):
    def sign(self, debtor_id: str) -> str: ...


# Event ids of the consent changes the messenger announces derive from their evidence,
# so announcing one twice (a provider's retry, a redelivery) is one event to consumers.
CONSENT_NAMESPACE = uuid.UUID("5a0c7e52-2b8f-4b53-9f0e-3c1d2a4b6e71")

# Provider refusals that say something about the address, not about this one message.
_ADDRESS_FACTS: dict[str, ConsentChangeKind] = {
    "21610": ConsentChangeKind.OPT_OUT,  # the number texted STOP to our sender
    "21211": ConsentChangeKind.ADDRESS_INVALID,  # not a phone number
    "21614": ConsentChangeKind.ADDRESS_INVALID,  # not a mobile number
}


@dataclass(frozen=True)
class Deps:
    sends: SendLedger
    senders: Mapping[Channel, Sender]
    renderer: Renderer
    publish: Callable[[DeliveryReported], Awaitable[None]]
    clock: Clock
    public_base_url: str
    suppressions: Suppressions
    publish_consent: Callable[[ConsentChanged], Awaitable[None]]
    link_signer: LinkSigner
    max_sms_segments: int = 6
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    # Signs the preference page link each message carries; None leaves it out.
    preference_links: PreferenceLinkSigner | None = None


async def deliver(decision: ContactDecision, deps: Deps) -> DeliveryReported | None:
    """Send the message of an approved decision, unless this proposal was handled before.
    Returns the report published, or None when there was nothing to do."""
    if decision.verdict is not Verdict.APPROVED:
        return None
    proposal = decision.proposal
    now = deps.clock.now()
    claim = SendRecord(
        proposal_id=proposal.proposal_id,
        debtor_id=proposal.debtor_id,
        channel=proposal.channel,
        status=SendStatus.CLAIMED,
        provider=provider_for(proposal.channel),
        claimed_at=now,
        trace_id=_current_trace_id(),
        span_id=_current_span_id(),
        address=proposal.address,
        proposed_at=proposal.occurred_at,
    )

    reason = why_not_dispatchable(now, decision.lawful_until)
    if reason is not None:
        return await _conclude_unsent(claim, SendStatus.EXPIRED, None, reason, deps)
    try:
        content = deps.renderer.render(
            proposal.template, proposal.channel, proposal.locale, proposal.variables
        )
        links = MessageLinks(
            unsubscribe=unsubscribe_url(
                deps.public_base_url,
                proposal.proposal_id,
                deps.link_signer.sign(proposal.proposal_id),
            ),
            status_callback=status_callback_url(deps.public_base_url, proposal.proposal_id),
            preferences=None
            if deps.preference_links is None
            else preferences_url(
                deps.public_base_url, deps.preference_links.sign(proposal.debtor_id)
            ),
        )
        message = compose(
            decision, content, now=now, links=links, max_sms_segments=deps.max_sms_segments
        )
    except RenderError as error:
        return await _conclude_unsent(claim, SendStatus.FAILED, "template", str(error), deps)

    existing = await deps.sends.claim(claim)
    if existing is not None:
        return await _settle_existing(existing, deps)

    # The decision is approved only until lawful_until (checked above, so not None).
    assert decision.lawful_until is not None
    finished = await _send_within_window(claim, message, decision.lawful_until, deps)
    await deps.sends.finish(finished)
    return await _report(finished, deps)


async def _send_within_window(
    claim: SendRecord, message: OutboundMessage, lawful_until: datetime, deps: Deps
) -> SendRecord:
    """Call the provider, again only while it provably took nothing and the window is
    open; each attempt starts right after the opt-outs and the window were checked."""
    attempt = 1
    while True:
        opted_out = await deps.suppressions.first_suppressing(
            scopes_for_send(claim.debtor_id, claim.channel, message.to)
        )
        now = deps.clock.now()  # after the lookup: the window is judged as late as possible
        if opted_out is not None:
            return _concluded(claim, SendStatus.SUPPRESSED, "opted-out", opted_out, deps)
        closed = why_not_dispatchable(now, lawful_until)
        if closed is not None:
            return _concluded(claim, SendStatus.EXPIRED, None, closed, deps)
        if message.validity_period is not None:
            message = replace(message, validity_period=validity_period_seconds(now, lawful_until))
        # The start of every attempt, right after its opt-out check: the evidence for
        # the 1 s rule (bench/optout_race.py judges sends by this line).
        log.info(
            "sending proposal %s (debtor %s) by %s, attempt %d",
            claim.proposal_id,
            claim.debtor_id,
            claim.provider,
            attempt,
        )
        # Only bugs raise here; the claim then stays and a redelivery reports it unknown.
        outcome = await deps.senders[claim.channel].send(message)
        delay = (
            deps.retry.delay_before(
                attempt + 1,
                now=deps.clock.now(),
                lawful_until=lawful_until,
                retry_after=outcome.retry_after,
            )
            if outcome.retryable
            else None
        )
        if delay is None:
            detail = outcome.detail
            if outcome.retryable and attempt > 1:
                detail = f"{detail}; gave up after {attempt} attempts"
            return replace(
                claim,
                status=outcome.status,
                provider_message_id=outcome.provider_message_id,
                error_code=outcome.error_code,
                detail=detail,
                finished_at=deps.clock.now(),
            )
        log.info(
            "proposal %s: %s not accepted (%s); retrying in %.2fs",
            claim.proposal_id,
            claim.provider,
            outcome.error_code,
            delay,
        )
        await deps.sleep(delay)
        attempt += 1


def _concluded(
    claim: SendRecord, status: SendStatus, error_code: str | None, detail: str, deps: Deps
) -> SendRecord:
    return replace(
        claim, status=status, error_code=error_code, detail=detail, finished_at=deps.clock.now()
    )


async def _announce_address_fact(record: SendRecord, kind: ConsentChangeKind, deps: Deps) -> None:
    """A refusal that means an opt-out or a dead address is a consent fact: stop later
    sends here at once, and tell the consent service, which owns consent state."""
    if record.address is None:
        return
    evidence = f"{record.provider} error {record.error_code} for proposal {record.proposal_id}"
    change = ConsentChanged(
        event_id=uuid.uuid5(CONSENT_NAMESPACE, evidence),
        occurred_at=record.finished_at or record.claimed_at,
        debtor_id=record.debtor_id,
        kind=kind,
        channel=record.channel,
        address=record.address,
        source=ConsentSource.PROVIDER,
        evidence=evidence,
    )
    await apply_consent_change(change, deps.suppressions)
    await deps.publish_consent(change)


async def apply_consent_change(change: ConsentChanged, suppressions: Suppressions) -> bool:
    """Record what a consent change means for the send-time check (consent.changes, and
    the messenger's own opt-out endpoints). True when a scope became suppressed."""
    effect = suppression_change(change)
    if effect is None:
        return False
    return await suppressions.apply([effect])


async def _conclude_unsent(
    claim: SendRecord,
    status: SendStatus,
    error_code: str | None,
    detail: str,
    deps: Deps,
) -> DeliveryReported | None:
    """Record an outcome reached without calling the provider; the row still makes any
    later delivery of this proposal a no-op."""
    concluded = replace(
        claim, status=status, error_code=error_code, detail=detail, finished_at=claim.claimed_at
    )
    existing = await deps.sends.claim(concluded)
    if existing is not None:
        return await _settle_existing(existing, deps)
    return await _report(concluded, deps)


async def _settle_existing(existing: SendRecord, deps: Deps) -> DeliveryReported | None:
    if existing.status is not SendStatus.CLAIMED:
        log.info(
            "proposal %s (debtor %s) was already %s; republishing, not sending",
            existing.proposal_id,
            existing.debtor_id,
            existing.status,
        )
        return await _report(existing, deps)
    # Claimed but never concluded: the process stopped between claim and outcome, or the
    # provider call raised. The message may have left, so it is never sent again.
    log.warning(
        "proposal %s (debtor %s) was claimed with no outcome recorded; reporting unknown",
        existing.proposal_id,
        existing.debtor_id,
    )
    settled = await deps.sends.give_up_on_claim(
        existing.proposal_id, deps.clock.now(), "claimed earlier; outcome never recorded"
    )
    if settled is None or settled.status is SendStatus.CLAIMED:
        return None
    return await _report(settled, deps)


async def _report(record: SendRecord, deps: Deps) -> DeliveryReported:
    if record.status is SendStatus.FAILED and record.error_code in _ADDRESS_FACTS:
        # Here rather than right after the send, so a redelivery repeats it too.
        await _announce_address_fact(record, _ADDRESS_FACTS[record.error_code], deps)
    report = report_for(record)
    # After the commit: a crash here redelivers the decision, which republishes this.
    await deps.publish(report)
    log.info(
        "proposal %s (debtor %s): %s%s",
        record.proposal_id,
        record.debtor_id,
        record.status,
        f" ({record.error_code})" if record.error_code else "",
    )
    return report


def _current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def _current_span_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.span_id, "016x") if context.is_valid else None
