"""Publishes proposals to Kafka, each as the root of its own trace."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind, Tracer
from parley_shared.events import ReminderProposed
from parley_shared.kafka import EventPublisher

# Sends in flight at once: enough for the client to batch, few enough to bound memory.
_CONCURRENCY = 256


class ProposalPublisher:
    def __init__(self, events: EventPublisher, tracer: Tracer) -> None:
        self._events = events
        self._tracer = tracer

    async def publish(self, proposals: Sequence[ReminderProposed]) -> None:
        for start in range(0, len(proposals), _CONCURRENCY):
            chunk = proposals[start : start + _CONCURRENCY]
            await asyncio.gather(*(self._publish_one(proposal) for proposal in chunk))

    async def _publish_one(self, proposal: ReminderProposed) -> None:
        # An empty parent context: one trace per reminder, not one per campaign run.
        with self._tracer.start_as_current_span(
            "propose reminder",
            context=otel_context.Context(),
            kind=SpanKind.INTERNAL,
            attributes={
                "parley.proposal_id": str(proposal.proposal_id),
                "parley.debtor_id": proposal.debtor_id,
                "parley.campaign_id": proposal.campaign_id,
                "parley.channel": proposal.channel.value,
            },
        ):
            await self._events.publish(proposal)
