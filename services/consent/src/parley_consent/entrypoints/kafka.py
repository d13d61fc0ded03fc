"""Kafka subscribers: proposals in, decisions out; consent changes and deliveries recorded.

Offsets are committed only after the handler returns (``NACK_ON_ERROR``): a failure
before the decisions are stored and published leaves the proposals to be redelivered,
and the stored decisions make that redelivery harmless. Undecodable consent changes are
sent to the dead-letter topic by the broker's middleware.

Proposals are consumed in batches: each batch costs a handful of queries and one round
of publishing instead of that per proposal; delivery reports too, a batch counted in one
statement. Each record of a batch is decoded on its own, so one malformed event is
dead-lettered without taking its batch with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaRouter
from faststream.kafka.subscriber.usecase import DefaultSubscriber
from faststream.message import StreamMessage
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Tracer
from parley_shared.clock import Clock
from parley_shared.events import ContactDecision, DeliveryReported, ReminderProposed
from parley_shared.kafka import DeadLetters, consumer_group_options
from parley_shared.telemetry import spans_in_record_traces
from parley_shared.topics import Topics
from pydantic import ValidationError

from parley_consent.domain import RuleSet
from parley_consent.domain.debtor_state import CheckedConsentChange
from parley_consent.handlers import (
    ConsentStore,
    apply_consent_change,
    count_deliveries,
    decide_on_proposals,
)
from parley_consent.settings import ConsentSettings

# Up to this many proposals are decided together.
PROPOSAL_BATCH = 500
# Up to this many delivery reports are counted together.
DELIVERY_BATCH = 500


class TraceCarriers:
    """The trace context each proposal of the batch being handled arrived with, so each
    decision continues its own reminder's trace rather than the batch's. The subscriber
    handles one batch at a time: the decoder fills this, the handler empties it."""

    def __init__(self) -> None:
        self._contexts: dict[uuid.UUID, Context | None] = {}

    def remember(self, proposal_id: uuid.UUID, record: ConsumerRecord[Any, Any]) -> None:
        headers = {key: value.decode(errors="replace") for key, value in record.headers or ()}
        # Extracted once here; the audit row and the publish span both read it.
        self._contexts[proposal_id] = (
            propagate.extract(headers) if "traceparent" in headers else None
        )

    def context(self, proposal_id: uuid.UUID) -> Context | None:
        """The proposal's own trace context, or None (stay in the current one) when it
        arrived without one."""
        return self._contexts.get(proposal_id)

    def trace_id(self, proposal_id: uuid.UUID) -> str | None:
        context = trace.get_current_span(self.context(proposal_id)).get_span_context()
        return format(context.trace_id, "032x") if context.is_valid else None

    def clear(self) -> None:
        self._contexts.clear()


class DecisionOutlet(Protocol):
    """Where decisions go once stored: ``DecisionPublisher`` in the service."""

    async def publish(
        self, decisions: Sequence[ContactDecision], contexts: Sequence[Context | None]
    ) -> None: ...


def _proposal_decoder(dead_letters: DeadLetters, carriers: TraceCarriers) -> Any:
    """Decodes a batch record by record: a malformed proposal is dead-lettered with the
    reason and its neighbours still reach the handler (a batch decoded as a whole would
    fail, and be dead-lettered, as a whole)."""

    async def decode(message: StreamMessage[Any]) -> list[ReminderProposed]:
        raw = message.raw_message
        records = list(raw) if isinstance(raw, (list, tuple)) else [raw]
        proposals: list[ReminderProposed] = []
        carriers.clear()
        for record in records:
            try:
                proposal = ReminderProposed.model_validate_json(record.value or b"")
            except ValidationError as error:
                await dead_letters.send_record(record, error)
                continue
            proposals.append(proposal)
            carriers.remember(proposal.proposal_id, record)
        return proposals

    return decode


def _delivery_decoder(
    dead_letters: DeadLetters, reported: list[tuple[ConsumerRecord[Any, Any], DeliveryReported]]
) -> Any:
    """Decodes a batch of delivery reports record by record (a malformed one is
    dead-lettered with the reason) and keeps each record in ``reported`` with its report:
    the subscriber handles one batch at a time, the handler reads it for trace contexts."""

    async def decode(message: StreamMessage[Any]) -> list[DeliveryReported]:
        raw = message.raw_message
        records = list(raw) if isinstance(raw, (list, tuple)) else [raw]
        reported.clear()
        for record in records:
            try:
                reported.append((record, DeliveryReported.model_validate_json(record.value or b"")))
            except (ValidationError, ValueError) as error:
                await dead_letters.send_record(record, error)
        return [report for _, report in reported]

    return decode


def build_kafka_router(
    settings: ConsentSettings,
    *,
    decisions: DecisionOutlet,
    repository: ConsentStore,
    clock: Clock,
    rules: RuleSet,
    dead_letters: DeadLetters,
    tracer: Tracer | None = None,
) -> KafkaRouter:
    """The consent service's subscribers; decisions go out through ``decisions``."""
    kafka = settings.kafka
    topics = Topics.for_prefix(kafka.topic_prefix)
    router = KafkaRouter()
    carriers = TraceCarriers()
    spans = tracer or trace.get_tracer(__name__)
    # The records of the delivery batch being handled, for their trace contexts.
    reported: list[tuple[ConsumerRecord[Any, Any], DeliveryReported]] = []

    # One consumer group per subscriber: a group whose members subscribe to different
    # topics sometimes never completes a rebalance on the embedded broker (Tansu) after a
    # restart, and separate groups also keep one topic's rebalances from pausing the other.
    def subscriber(topic: str, group: str, description: str) -> DefaultSubscriber:
        return router.subscriber(
            topic, **consumer_group_options(kafka, group), description=description
        )

    @router.subscriber(
        topics.proposals,
        **consumer_group_options(kafka, "consent"),
        batch=True,
        max_records=PROPOSAL_BATCH,
        decoder=_proposal_decoder(dead_letters, carriers),
        description="Decide on each proposed reminder and publish the decision.",
    )
    async def on_reminders_proposed(proposals: list[ReminderProposed]) -> None:
        decided = await decide_on_proposals(
            proposals,
            store=repository,
            clock=clock,
            rules=rules,
            trace_ids={p.proposal_id: carriers.trace_id(p.proposal_id) for p in proposals},
        )
        # The decisions are committed by now: publishing them after a crash here only
        # happens on redelivery, and then they are the identical stored decisions. The
        # offsets are committed after this returns, so after the broker acknowledged all.
        await decisions.publish(
            decided, [carriers.context(decision.proposal_id) for decision in decided]
        )

    @subscriber(
        topics.consent_changes,
        "consent.changes",
        "Record each consent change (idempotent by event id).",
    )
    async def on_consent_changed(change: CheckedConsentChange) -> None:
        await apply_consent_change(change, store=repository)

    @router.subscriber(
        topics.deliveries,
        **consumer_group_options(kafka, "consent.deliveries"),
        batch=True,
        max_records=DELIVERY_BATCH,
        decoder=_delivery_decoder(dead_letters, reported),
        description="Count each message that left towards the frequency caps (once per proposal).",
    )
    async def on_deliveries_reported(reports: list[DeliveryReported]) -> None:
        # One span per report in its reminder's trace, open while the batch is stored.
        traced = [(record, report.proposal_id) for record, report in reported]
        with spans_in_record_traces(spans, traced):
            await count_deliveries(reports, store=repository)

    return router
