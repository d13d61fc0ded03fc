"""The scheduler's subscribers: the decisions and delivery outcomes that come back.

Both are consumed in batches and each batch is stored in one statement, so a busy topic
costs one transaction per few hundred events rather than one per event. Each record is
decoded on its own: a malformed one is dead-lettered with its reason and the rest of its
batch is still stored. The offsets are committed only after the handler returns, so
after the batch is durable; redelivering a batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaRouter
from faststream.message import StreamMessage
from opentelemetry import trace
from opentelemetry.trace import Tracer
from parley_shared.events import ContactDecision, DeliveryReported
from parley_shared.kafka import DeadLetters, consumer_group_options
from parley_shared.settings import KafkaSettings
from parley_shared.telemetry import spans_in_record_traces
from parley_shared.topics import Topics
from pydantic import BaseModel, ValidationError

from parley_scheduler import handlers
from parley_scheduler.adapters.database import SchedulerStore

# Up to this many events are stored together.
BATCH = 500

E = TypeVar("E", bound=BaseModel)


class _Batch(Generic[E]):
    """The records of the batch a subscriber is handling, each with its decoded event: the
    decoder fills it, the handler reads it (a subscriber handles one batch at a time)."""

    def __init__(self) -> None:
        self.items: list[tuple[ConsumerRecord[Any, Any], E]] = []


def build_router(
    kafka: KafkaSettings,
    store: SchedulerStore,
    *,
    dead_letters: DeadLetters,
    tracer: Tracer | None = None,
) -> KafkaRouter:
    topics = Topics.for_prefix(kafka.topic_prefix)
    router = KafkaRouter()
    spans = tracer or trace.get_tracer(__name__)
    decided: _Batch[ContactDecision] = _Batch()
    reported: _Batch[DeliveryReported] = _Batch()

    def decoder(model: type[E], batch: _Batch[E]) -> Any:
        """Decodes a batch record by record, keeping each record for its trace context."""

        async def decode(message: StreamMessage[Any]) -> list[E]:
            raw = message.raw_message
            records = list(raw) if isinstance(raw, (list, tuple)) else [raw]
            batch.items.clear()
            for record in records:
                try:
                    batch.items.append((record, model.model_validate_json(record.value or b"")))
                except (ValidationError, ValueError) as error:
                    # One bad record must not hold up, or take with it, the rest of the batch.
                    await dead_letters.send_record(record, error)
            return [event for _, event in batch.items]

        return decode

    def in_their_traces(
        items: Sequence[tuple[ConsumerRecord[Any, Any], ContactDecision | DeliveryReported]],
    ) -> AbstractContextManager[None]:
        """The store itself runs in the batch's span (one statement serves them all)."""
        return spans_in_record_traces(
            spans, [(record, event.proposal_id) for record, event in items]
        )

    # One consumer group per topic: the embedded broker stalls rebalancing multi-topic groups.
    @router.subscriber(
        topics.decisions,
        batch=True,
        max_records=BATCH,
        decoder=decoder(ContactDecision, decided),
        **consumer_group_options(kafka, "scheduler"),
        title="scheduler: record decisions",
        description="Records each decision; deferred ones are proposed again at defer_until.",
    )
    async def on_decisions(decisions: list[ContactDecision]) -> None:
        with in_their_traces(decided.items):
            await handlers.record_decisions(decisions, store)

    @router.subscriber(
        topics.deliveries,
        batch=True,
        max_records=BATCH,
        decoder=decoder(DeliveryReported, reported),
        **consumer_group_options(kafka, "scheduler-deliveries"),
        title="scheduler: record delivery outcomes",
        description="Records what became of each message; undelivered ones trigger fallbacks.",
    )
    async def on_deliveries(reports: list[DeliveryReported]) -> None:
        with in_their_traces(reported.items):
            await handlers.record_deliveries(reports, store)

    return router
