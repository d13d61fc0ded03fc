"""Publishes a batch of decisions on ``outreach.decisions`` with a producer of its own.

Publishing through FastStream costs two spans, a middleware chain and a task per message,
and its producer's 16 KB batches force a broker round trip every dozen decisions; this
one enqueues every decision of a batch, each in its own reminder's trace, and then
waits for all acknowledgements at once (acks=all), as the scheduler does for proposals.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Tracer, set_span_in_context
from parley_shared.events import ContactDecision
from parley_shared.metrics import EVENT_TYPE_HEADER, metrics_for
from parley_shared.settings import KafkaSettings

_STATIC_HEADERS = [
    # The subscribers' parsers (FastStream's) decode JSON by this header.
    ("content-type", b"application/json"),
    (EVENT_TYPE_HEADER, ContactDecision.event_type.encode()),
]


class DecisionPublisher:
    """Started lazily on first use, because the broker starts its subscribers (which may
    publish at once) before the service's start hooks run; refuses to publish once
    stopped, so a late batch fails and is redelivered rather than silently dropped."""

    def __init__(
        self, broker: KafkaBroker, kafka: KafkaSettings, topic: str, tracer: Tracer
    ) -> None:
        self.topic = topic
        self._kafka = kafka
        self._tracer = tracer
        self._metrics = metrics_for(broker)
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()
        self._stopped = False
        # Declared on the broker so the AsyncAPI document lists what the service publishes.
        broker.publisher(
            topic,
            title=f"{topic}:ContactDecision",
            schema=ContactDecision,
            description="The verdict on each proposed reminder.",
        )

    async def _started(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._stopped:
                raise RuntimeError("the decision publisher is stopped")
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._kafka.bootstrap_servers,
                    client_id="parley-consent-decisions",
                    # acks=all as everywhere in Parley; idempotence is off for the
                    # embedded broker, and redelivered decisions are identical anyway.
                    acks="all",
                    enable_idempotence=False,
                    linger_ms=5,
                    # A whole batch of decisions (about 1.4 KB each) per request.
                    max_batch_size=256 * 1024,
                )
                try:
                    await producer.start()
                except BaseException:
                    # A broker that is away fails this batch (it is redelivered); the
                    # next one tries again with a fresh producer.
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def stop(self) -> None:
        async with self._starting:
            self._stopped = True
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None

    async def publish(
        self, decisions: Sequence[ContactDecision], contexts: Sequence[Context | None]
    ) -> None:
        """Publish each decision in the trace context beside it (None: the current one);
        returns once the broker has acknowledged every one of them."""
        producer = await self._started()
        pending = []
        for decision, context in zip(decisions, contexts, strict=True):
            span = self._tracer.start_span(
                f"{self.topic} publish decision",
                context=context,
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": self.topic,
                    "parley.proposal_id": str(decision.proposal_id),
                    "parley.verdict": decision.verdict.value,
                },
            )
            carrier: dict[str, str] = {}
            # W3C trace context in the headers: the messenger continues this trace.
            propagate.inject(carrier, context=set_span_in_context(span, context))
            headers = _STATIC_HEADERS + [(key, value.encode()) for key, value in carrier.items()]
            try:
                pending.append(
                    await producer.send(
                        self.topic,
                        decision.model_dump_json().encode(),
                        key=decision.kafka_key(),
                        headers=headers,
                    )
                )
            finally:
                span.end()
        await asyncio.gather(*pending)
        for decision in decisions:
            self._metrics.record_published(decision)
