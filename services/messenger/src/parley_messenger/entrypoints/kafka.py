"""The messenger's Kafka subscriber: decisions in, delivery reports out (via the handler)."""

from __future__ import annotations

from faststream import AckPolicy
from faststream.kafka import KafkaRouter
from parley_shared.events import ContactDecision
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics

from parley_messenger import handlers


def build_router(kafka: KafkaSettings, deps: handlers.Deps) -> KafkaRouter:
    topics = Topics.for_prefix(kafka.topic_prefix)
    router = KafkaRouter()

    @router.subscriber(
        topics.decisions,
        group_id=f"{kafka.group_prefix}.messenger",
        auto_offset_reset="earliest",
        # The offset is committed only after the handler returned, i.e. after the send's
        # outcome is in the database; an error redelivers, and the ledger makes that safe.
        ack_policy=AckPolicy.NACK_ON_ERROR,
        session_timeout_ms=kafka.session_timeout_ms,
        heartbeat_interval_ms=kafka.heartbeat_interval_ms,
        title="messenger: deliver approved decisions",
        description="Sends each approved proposal's message once, and reports the outcome.",
    )
    async def on_decision(decision: ContactDecision) -> None:
        await handlers.deliver(decision, deps)

    return router
