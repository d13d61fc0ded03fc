"""The messenger's Kafka subscriber: decisions in, delivery reports out (via the handler)."""

from __future__ import annotations

from faststream.kafka import KafkaRouter
from parley_shared.events import ContactDecision
from parley_shared.kafka import consumer_group_options
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics

from parley_messenger import handlers


def build_router(kafka: KafkaSettings, deps: handlers.Deps) -> KafkaRouter:
    topics = Topics.for_prefix(kafka.topic_prefix)
    router = KafkaRouter()

    @router.subscriber(
        topics.decisions,
        # The offset is committed only after the send's outcome is in the database.
        **consumer_group_options(kafka, "messenger"),
        title="messenger: deliver approved decisions",
        description="Sends each approved proposal's message once, and reports the outcome.",
    )
    async def on_decision(decision: ContactDecision) -> None:
        await handlers.deliver(decision, deps)

    return router
