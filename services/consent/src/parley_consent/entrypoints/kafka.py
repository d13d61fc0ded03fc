"""Kafka subscribers: proposals in, decisions out; consent changes recorded.

Offsets are committed only after the handler returns (``NACK_ON_ERROR``): a failure
before the decision is stored and published leaves the proposal to be redelivered, and
the stored decision makes that redelivery harmless. Undecodable messages are sent to the
dead-letter topic by the broker's middleware.
"""

from __future__ import annotations

from faststream.kafka import KafkaRouter
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from parley_shared.clock import Clock
from parley_shared.events import ConsentChanged, ReminderProposed
from parley_shared.kafka import EventPublisher, consumer_group_options
from parley_shared.topics import Topics

from parley_consent.handlers import ConsentStore, apply_consent_change, decide_on_proposal
from parley_consent.settings import ConsentSettings


def build_kafka_router(
    settings: ConsentSettings,
    *,
    decisions: EventPublisher,
    repository: ConsentStore,
    clock: Clock,
) -> KafkaRouter:
    """The consent service's subscribers; decisions go out through ``decisions``."""
    kafka = settings.kafka
    topics = Topics.for_prefix(kafka.topic_prefix)
    router = KafkaRouter()

    # One consumer group per subscriber: a group whose members subscribe to different
    # topics sometimes never completes a rebalance on the embedded broker (Tansu) after a
    # restart, and separate groups also keep one topic's rebalances from pausing the other.
    def subscriber(topic: str, group: str, description: str) -> DefaultSubscriber:
        return router.subscriber(
            topic, **consumer_group_options(kafka, group), description=description
        )

    @subscriber(
        topics.proposals, "consent", "Decide on each proposed reminder and publish the decision."
    )
    async def on_reminder_proposed(proposal: ReminderProposed) -> None:
        decision = await decide_on_proposal(
            proposal,
            store=repository,
            clock=clock,
            rule_set_version=settings.rule_set_version,
        )
        # The decision is committed by now: publishing it after a crash here only
        # happens on redelivery, and then it is the identical stored decision.
        await decisions.publish(decision)

    @subscriber(
        topics.consent_changes,
        "consent.changes",
        "Record each consent change (idempotent by event id).",
    )
    async def on_consent_changed(change: ConsentChanged) -> None:
        await apply_consent_change(change, store=repository)

    return router
