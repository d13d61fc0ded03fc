"""Publishes proposals from the outbox to Kafka, each as the root of its own trace.

Proposals leave in bulk (a campaign tick may publish a million), so they go through a
producer of their own, as the JSON text the outbox stored: no model is rebuilt and nothing
is serialised twice. Records are packed into one batch per partition (the producer's
per-message path costs more than the broker), and each proposal's span is recorded in bulk
once the broker has acknowledged it: ids from the SDK's id generator, the W3C
``traceparent`` header written directly, a finished span handed to the span processors.
The publisher is still declared on the service's broker, so the AsyncAPI document lists the
topic and its schema.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.sdk.trace import ReadableSpan, sampling
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, Tracer, set_span_in_context
from parley_shared.events import ReminderProposed
from parley_shared.metrics import metrics_for
from parley_shared.settings import KafkaSettings

from parley_scheduler.domain.planning import OutgoingProposal

__all__ = ["OutgoingProposal", "ProposalPublisher"]

_EVENT_TYPE_HEADER = ("x-parley-event-type", ReminderProposed.event_type.encode())
_NO_PARENT = otel_context.Context()
_SPAN_NAME = "propose reminder"
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)


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
        producer = self._producer
        if producer is None:
            raise RuntimeError("the proposal publisher is not started")
        if not proposals:
            return
        tracer = self._tracer
        traceparents: list[bytes | None]
        if isinstance(tracer, SdkTracer):
            spans = _BulkSpans(tracer)
            traceparents = [spans.traceparent(proposal) for proposal in proposals]
        else:
            spans = None
            traceparents = [_traceparent_via_api(tracer, proposal) for proposal in proposals]
        await self._send(producer, proposals, traceparents)
        if spans is not None:
            spans.finish()
        for channel, count in Counter(proposal.channel for proposal in proposals).items():
            self._metrics.proposals.labels(channel).inc(count)

    async def _send(
        self,
        producer: AIOKafkaProducer,
        proposals: Sequence[OutgoingProposal],
        traceparents: Sequence[bytes | None],
    ) -> None:
        topic = self.topic
        partitions = sorted(await producer.partitions_for(topic))
        count = len(partitions)
        batches: dict[int, Any] = {}
        pending = []
        for proposal, traceparent in zip(proposals, traceparents, strict=True):
            key = proposal.debtor_id.encode()
            value = proposal.event_json.encode()
            headers = [_EVENT_TYPE_HEADER]
            if traceparent is not None:
                headers.append(("traceparent", traceparent))
            # The producer's own key hashing, so a debtor's events keep their partition.
            partition = partitions[(murmur2(key) & 0x7FFFFFFF) % count]
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
                # Full: it leaves now and a fresh batch takes the record.
                pending.append(await producer.send_batch(batch, topic, partition=partition))
                batch = batches[partition] = producer.create_batch()
                if batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
                    raise ValueError(f"proposal {proposal.proposal_id} exceeds a batch")
        for partition, batch in batches.items():
            if batch.record_count():
                pending.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*pending)


class _BulkSpans:
    """One root span per proposal, recorded as finished spans after the send: the span
    covers the time from building the batch to the broker's acknowledgement."""

    def __init__(self, tracer: SdkTracer) -> None:
        self._tracer = tracer
        # A root span under these samplers is always recorded and sampled.
        self._keep_all = tracer.sampler in (sampling.DEFAULT_ON, sampling.ALWAYS_ON)
        self._started = time.time_ns()
        self._sampled: list[tuple[SpanContext, dict[str, Any]]] = []

    def traceparent(self, proposal: OutgoingProposal) -> bytes:
        tracer = self._tracer
        trace_id = tracer.id_generator.generate_trace_id()
        span_id = tracer.id_generator.generate_span_id()
        attributes: dict[str, Any] = {
            "parley.proposal_id": proposal.proposal_id,
            "parley.debtor_id": proposal.debtor_id,
            "parley.campaign_id": proposal.campaign_id,
            "parley.channel": proposal.channel,
            "parley.attempt": proposal.attempt,
        }
        if self._keep_all:
            self._sampled.append((SpanContext(trace_id, span_id, False, _SAMPLED), attributes))
            return f"00-{trace_id:032x}-{span_id:016x}-01".encode()
        # A configured sampler decides (the default keeps every reminder, asked or not).
        decision = tracer.sampler.should_sample(
            _NO_PARENT, trace_id, _SPAN_NAME, SpanKind.PRODUCER, attributes
        )
        sampled = decision.decision is Decision.RECORD_AND_SAMPLE
        if decision.decision is not Decision.DROP:
            if decision.attributes:
                attributes.update(decision.attributes)
            context = SpanContext(
                trace_id,
                span_id,
                is_remote=False,
                trace_flags=_SAMPLED if sampled else _NOT_SAMPLED,
                trace_state=decision.trace_state,
            )
            self._sampled.append((context, attributes))
        return f"00-{trace_id:032x}-{span_id:016x}-{'01' if sampled else '00'}".encode()

    def finish(self) -> None:
        tracer = self._tracer
        ended = time.time_ns()
        resource = tracer.resource
        scope = tracer._instrumentation_scope
        processor = tracer.span_processor
        for context, attributes in self._sampled:
            processor.on_end(
                ReadableSpan(
                    name=_SPAN_NAME,
                    context=context,
                    parent=None,
                    resource=resource,
                    attributes=attributes,
                    kind=SpanKind.PRODUCER,
                    start_time=self._started,
                    end_time=ended,
                    instrumentation_scope=scope,
                )
            )


_MASK = 0xFFFFFFFF
_WORDS = struct.Struct("<I").iter_unpack


def murmur2(key: bytes) -> int:
    """The Java client's murmur2, as aiokafka's default partitioner hashes keys (a test
    compares the two); this one reads whole words, about twice as fast."""
    length = len(key)
    h = 0x9747B28C ^ length
    m = 0x5BD1E995
    end = length & ~3
    for (k,) in _WORDS(key[:end]):
        k = (k * m) & _MASK
        k ^= k >> 24
        h = ((h * m) & _MASK) ^ ((k * m) & _MASK)
    extra = length & 3
    if extra:
        if extra == 3:
            h ^= key[end + 2] << 16
        if extra >= 2:
            h ^= key[end + 1] << 8
        h ^= key[end]
        h = (h * m) & _MASK
    h ^= h >> 13
    h = (h * m) & _MASK
    return h ^ (h >> 15)


def _traceparent_via_api(tracer: Tracer, proposal: OutgoingProposal) -> bytes | None:
    """The general path for a tracer that is not the SDK's (a no-op one, say)."""
    span = tracer.start_span(
        _SPAN_NAME,
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
    propagate.inject(carrier, context=set_span_in_context(span, _NO_PARENT))
    span.end()
    value = carrier.get("traceparent")
    return None if value is None else value.encode()
