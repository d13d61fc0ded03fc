"""Kafka wiring shared by the services: broker construction, publishing events, dead letters."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Literal, TypedDict

from aiokafka import ConsumerRecord
from faststream import AckPolicy, BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.message import StreamMessage
from opentelemetry.sdk.trace import TracerProvider
from pydantic import ValidationError

from parley_shared.events import Event
from parley_shared.metrics import (
    EVENT_TYPE_HEADER,
    ServiceMetrics,
    attach_metrics,
    consumed_metrics_middleware,
    metrics_for,
)
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics

log = logging.getLogger(__name__)

DEAD_LETTER_REASON_HEADER = "x-parley-dead-letter-reason"
DEAD_LETTER_SOURCE_HEADER = "x-parley-source-topic"


def build_broker(
    settings: KafkaSettings,
    tracer_provider: TracerProvider,
    *,
    client_id: str,
    metrics: ServiceMetrics | None = None,
) -> KafkaBroker:
    topics = Topics.for_prefix(settings.topic_prefix)
    metrics = metrics or ServiceMetrics()
    broker = KafkaBroker(
        settings.bootstrap_servers,
        client_id=client_id,
        # acks=all: an event the broker acknowledged survives a broker failure.
        acks="all",
        # Idempotent producers are unsupported by the embedded broker; consumers are
        # idempotent in the database instead, which real Kafka needs anyway.
        enable_idempotence=False,
        linger_ms=5,
        allow_auto_create_topics=False,
        middlewares=(
            KafkaTelemetryMiddleware(tracer_provider=tracer_provider),
            KafkaPrometheusMiddleware(registry=metrics.registry, app_name=client_id),
            dead_letter_middleware(topics.dead_letters, metrics),
            consumed_metrics_middleware(metrics),
        ),
    )
    attach_metrics(broker, metrics)
    return broker


class ConsumerGroupOptions(TypedDict):
    group_id: str
    auto_offset_reset: Literal["earliest"]
    ack_policy: AckPolicy
    session_timeout_ms: int
    heartbeat_interval_ms: int


def consumer_group_options(kafka: KafkaSettings, service: str) -> ConsumerGroupOptions:
    """Subscriber options every Parley consumer uses: one group per service, starting from
    the earliest offset (a new group must not skip what was published before it joined),
    and offsets committed only after the handler returned; an error redelivers, and the
    handlers' idempotent stores make redelivery safe."""
    return {
        "group_id": f"{kafka.group_prefix}.{service}",
        "auto_offset_reset": "earliest",
        "ack_policy": AckPolicy.NACK_ON_ERROR,
        "session_timeout_ms": kafka.session_timeout_ms,
        "heartbeat_interval_ms": kafka.heartbeat_interval_ms,
    }


class DeadLetters:
    """Moves a message that cannot be decoded to the dead-letter topic, with the reason
    and its source topic in headers, and counts it. The broker's middleware uses it for
    single-message subscribers; batch subscribers, which decode record by record, call it
    for each bad record so its neighbours still go through."""

    def __init__(self, broker: KafkaBroker, topic: str, metrics: ServiceMetrics) -> None:
        self._broker = broker
        self._topic = topic
        self._metrics = metrics

    async def send(self, body: Any, source_topic: str, key: bytes | None, reason: str) -> None:
        await self._broker.publish(
            body,
            self._topic,
            key=key,
            headers={DEAD_LETTER_REASON_HEADER: reason, DEAD_LETTER_SOURCE_HEADER: source_topic},
        )
        self._metrics.dead_letters.labels(source_topic).inc()
        log.warning("dead-lettered a message from %s: %s", source_topic, reason)

    async def send_record(self, record: ConsumerRecord[Any, Any], error: Exception) -> None:
        await self.send(record.value or b"", record.topic, record.key, dead_letter_reason(error))


def dead_letter_middleware(
    dead_letter_topic: str, metrics: ServiceMetrics
) -> type[BaseMiddleware[Any, Any]]:
    """Messages that cannot be decoded go to the dead-letter topic with the reason, then are
    acknowledged, so one bad event never blocks a partition. Any other error propagates and
    the message is redelivered."""

    class DeadLetterMiddleware(BaseMiddleware[Any, Any]):
        async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
            try:
                return await call_next(msg)
            except (ValidationError, json.JSONDecodeError, UnicodeDecodeError) as error:
                broker: KafkaBroker = self.context.get("broker")
                sink = DeadLetters(broker, dead_letter_topic, metrics)
                source = str(getattr(msg.raw_message, "topic", "unknown"))
                key = getattr(msg.raw_message, "key", None)
                await sink.send(msg.body, source, key, dead_letter_reason(error))
                return None

    return DeadLetterMiddleware


def dead_letter_reason(error: Exception) -> str:
    """Why a message could not be read: field locations and messages only, never input
    values, which may hold personal data."""
    if isinstance(error, ValidationError):
        parts = [
            f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in error.errors()
        ]
        return "invalid event: " + "; ".join(parts)[:900]
    return f"undecodable message: {type(error).__name__}"


async def publish_event(broker: KafkaBroker, topic: str, event: Event) -> None:
    await broker.publish(
        event.model_dump(mode="json"),
        topic,
        key=event.kafka_key(),
        headers={EVENT_TYPE_HEADER: event.event_type},
    )
    metrics_for(broker).record_published(event)


class EventPublisher:
    """A publisher declared on the broker, so the AsyncAPI document lists what a service
    publishes and with which schema."""

    def __init__(
        self, broker: KafkaBroker, topic: str, event_type: type[Event], description: str
    ) -> None:
        self.topic = topic
        self._metrics = metrics_for(broker)
        self._publisher = broker.publisher(
            topic,
            title=f"{topic}:{event_type.__name__}",
            schema=event_type,
            description=description,
        )

    async def publish(self, event: Event) -> None:
        await self._publisher.publish(
            event.model_dump(mode="json"),
            key=event.kafka_key(),
            headers={EVENT_TYPE_HEADER: event.event_type},
        )
        self._metrics.record_published(event)

    async def publish_unconfirmed(self, event: Event) -> asyncio.Future[Any]:
        """Hand ``event`` to the producer without waiting for the broker's acknowledgement,
        so many can be in flight at once; it is durable only once the future resolves."""
        future: asyncio.Future[Any] = await self._publisher.publish(
            event.model_dump(mode="json"),
            key=event.kafka_key(),
            headers={EVENT_TYPE_HEADER: event.event_type},
            no_confirm=True,
        )
        self._metrics.record_published(event)
        return future
