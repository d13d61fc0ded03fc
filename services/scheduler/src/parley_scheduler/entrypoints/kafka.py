from __future__ import annotations

from faststream.kafka import KafkaRouter
from parley_shared.events import ContactDecision, DeliveryReported
from parley_shared.kafka import consumer_group_options
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics

from parley_scheduler import handlers
from parley_scheduler.adapters.database import SchedulerStore


def build_router(kafka: KafkaSettings, store: SchedulerStore) -> KafkaRouter:
    topics = Topics.for_prefix(kafka.topic_prefix)
    router = KafkaRouter()

    # One consumer group per topic: the embedded broker stalls rebalancing multi-topic groups.
    @router.subscriber(
        topics.decisions,
        **consumer_group_options(kafka, "scheduler"),
        title="scheduler: record decisions",
        description="Records each decision; deferred ones are proposed again at defer_until.",
    )
    async def on_decision(decision: ContactDecision) -> None:
        await handlers.record_decision(decision, store)

    @router.subscriber(
        topics.deliveries,
        **consumer_group_options(kafka, "scheduler-deliveries"),
        title="scheduler: record delivery outcomes",
        description="Records what became of each message; undelivered ones trigger fallbacks.",
    )
    async def on_delivery(report: DeliveryReported) -> None:
        await handlers.record_delivery(report, store)

    return router
