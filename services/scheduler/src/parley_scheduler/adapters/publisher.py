"""Publishes proposals from the outbox to Kafka, each as the root of its own trace.

Proposals leave in bulk (a campaign tick may publish a million), so they go through a
producer of their own, as the JSON text the outbox stored: no model is rebuilt and nothing
is serialised twice. The publisher is still declared on the service's broker, so the
AsyncAPI document lists the topic and its schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Tracer, set_span_in_context
from parley_shared.events import ReminderProposed
from parley_shared.metrics import metrics_for
from parley_shared.settings import KafkaSettings

_EVENT_TYPE = ReminderProposed.event_type.encode()
_NO_PARENT = otel_context.Context()


@dataclass(frozen=True)
class OutgoingProposal:
    """One outbox row: the stored event text plus the fields a span may name."""

    proposal_id: str
    debtor_id: str
    campaign_id: str
    channel: str
    attempt: int
    event_json: str


class ProposalPublisher:
    def __init__(
        self, broker: KafkaBroker, kafka: KafkaSettings, topic: str, tracer: Tracer
    ) -> None:
        self.topic = topic
        self._tracer = tracer
        self._kafka = kafka
        self._producer: AIOKafkaProducer | None = None
        self._metrics = metrics_for(broker)
        broker.publisher(
            topic,
            title=f"{topic}:ReminderProposed",
            schema=ReminderProposed,
            description="A proposed reminder: one campaign step for one debtor.",
        )

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._kafka.bootstrap_servers,
            client_id="parley-scheduler-proposals",
            # acks=all as everywhere in Parley; idempotence is off for the embedded broker.
            acks="all",
            enable_idempotence=False,
            linger_ms=5,
            max_batch_size=256 * 1024,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish(self, proposals: Sequence[OutgoingProposal]) -> None:
        """Returns once the broker acknowledged every proposal (acks=all)."""
        if self._producer is None:
            raise RuntimeError("the proposal publisher is not started")
        pending = []
        for proposal in proposals:
            # An empty parent context: one trace per reminder, not one per campaign run.
            span = self._tracer.start_span(
                "propose reminder",
                context=_NO_PARENT,
                kind=SpanKind.PRODUCER,
                attributes={
                    "parley.proposal_id": proposal.proposal_id,
                    "parley.debtor_id": proposal.debtor_id,
                    "parley.campaign_id": proposal.campaign_id,
                    "parley.channel": proposal.channel,
                    "parley.attempt": proposal.attempt,
                },
            )
            carrier: dict[str, str] = {}
            # W3C trace context in the headers: the consent service continues this trace.
            propagate.inject(carrier, context=set_span_in_context(span, _NO_PARENT))
            headers = [("x-parley-event-type", _EVENT_TYPE)]
            headers += [(key, value.encode()) for key, value in carrier.items()]
            # Not waiting per message lets the client batch; all are awaited below.
            pending.append(
                await self._producer.send(
                    self.topic,
                    proposal.event_json.encode(),
                    key=proposal.debtor_id.encode(),
                    headers=headers,
                )
            )
            span.end()
        await asyncio.gather(*pending)
        for proposal in proposals:
            self._metrics.proposals.labels(proposal.channel).inc()
