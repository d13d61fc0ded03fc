"""The messenger's use case: deliver one approved decision, at most once.

The ``sends`` row is claimed and committed before the provider is called. Whoever finds
the row already there (a redelivered decision, a restart, a second consumer) sends
nothing and republishes the stored outcome instead.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from opentelemetry import trace
from parley_shared.clock import Clock
from parley_shared.events import Channel, ContactDecision, DeliveryReported, Verdict

from parley_messenger.domain.dispatch import why_not_dispatchable
from parley_messenger.domain.model import (
    OutboundMessage,
    ProviderOutcome,
    SendRecord,
    SendStatus,
    provider_for,
    report_for,
)
from parley_messenger.domain.rendering import RenderedContent, RenderError, compose

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


@dataclass(frozen=True)
class Deps:
    sends: SendLedger
    senders: Mapping[Channel, Sender]
    renderer: Renderer
    publish: Callable[[DeliveryReported], Awaitable[None]]
    clock: Clock
    public_base_url: str


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
    )

    reason = why_not_dispatchable(now, decision.lawful_until)
    if reason is not None:
        return await _conclude_unsent(claim, SendStatus.EXPIRED, None, reason, deps)
    try:
        content = deps.renderer.render(
            proposal.template, proposal.channel, proposal.locale, proposal.variables
        )
        message = compose(decision, content, now=now, public_base_url=deps.public_base_url)
    except RenderError as error:
        return await _conclude_unsent(claim, SendStatus.FAILED, "template", str(error), deps)

    existing = await deps.sends.claim(claim)
    if existing is not None:
        return await _settle_existing(existing, deps)

    log.info(
        "sending proposal %s (debtor %s) by %s", claim.proposal_id, claim.debtor_id, claim.provider
    )
    # Only bugs raise here; the claim then stays and a redelivery reports it unknown.
    outcome = await deps.senders[proposal.channel].send(message)
    finished = replace(
        claim,
        status=outcome.status,
        provider_message_id=outcome.provider_message_id,
        error_code=outcome.error_code,
        detail=outcome.detail,
        finished_at=deps.clock.now(),
    )
    await deps.sends.finish(finished)
    return await _report(finished, deps)


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
