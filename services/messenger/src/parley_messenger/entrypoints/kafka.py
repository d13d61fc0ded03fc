"""The messenger's Kafka subscribers: decisions in (delivery reports out, via the
handler), and consent changes in, for the send-time opt-out check.

Decisions arrive in batches and are sent concurrently: one debtor's decisions stay in
order, different debtors' run side by side. The batch's offsets are committed only after
every send in it is recorded and every delivery report in it acknowledged by the broker;
if any fails the whole batch is redelivered, which the at-most-once ledger makes harmless.
Reports are not awaited one by one: each send's slot is free as soon as its report is
handed to the producer, and the batch waits for all acknowledgements at its end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

from aiokafka.structs import ConsumerRecord
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Tracer
from parley_shared.events import ConsentChanged, ContactDecision, DeliveryReported
from parley_shared.kafka import DeadLetters, consumer_group_options
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics
from pydantic import ValidationError

from parley_messenger import handlers

log = logging.getLogger(__name__)

# The broker acknowledgements of the reports published by the batch being handled.
_batch_acks: ContextVar[list[asyncio.Future[Any]] | None] = ContextVar(
    "messenger_batch_acks", default=None
)


def build_router(
    kafka: KafkaSettings,
    deps: handlers.Deps,
    *,
    tracer: Tracer,
    dead_letters: DeadLetters,
    batch_size: int = 100,
    concurrency: int = 16,
    publish_unconfirmed: Callable[[DeliveryReported], Awaitable[asyncio.Future[Any]]] | None = None,
) -> KafkaRouter:
    topics = Topics.for_prefix(kafka.topic_prefix)
    if publish_unconfirmed is not None:
        deps = replace(deps, publish=_confirmed_at_batch_end(deps.publish, publish_unconfirmed))
    router = KafkaRouter()
    slots = asyncio.Semaphore(concurrency)

    async def deliver_in_its_trace(
        record: ConsumerRecord[Any, Any], decision: ContactDecision
    ) -> None:
        # Each decision continues the trace it was published in, not the batch's.
        headers = {key: value.decode(errors="replace") for key, value in record.headers or ()}
        with tracer.start_as_current_span(
            f"{record.topic} deliver",
            context=propagate.extract(headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.kafka.destination.partition": record.partition,
                "messaging.kafka.message.offset": record.offset,
                "parley.proposal_id": str(decision.proposal_id),
            },
        ):
            await handlers.deliver(decision, deps)

    async def deliver_in_order(
        items: Sequence[tuple[ConsumerRecord[Any, Any], ContactDecision]],
    ) -> None:
        async with slots:
            for record, decision in items:
                await deliver_in_its_trace(record, decision)

    @router.subscriber(
        topics.decisions,
        batch=True,
        max_records=batch_size,
        # The offsets are committed only after every send's outcome is in the database.
        **consumer_group_options(kafka, "messenger"),
        decoder=_records_undecoded,
        title="messenger: deliver approved decisions",
        description="Sends each approved proposal's message once, and reports the outcome.",
    )
    async def on_decisions(message: KafkaMessage) -> None:
        raw = message.raw_message
        records: tuple[ConsumerRecord[Any, Any], ...] = raw if isinstance(raw, tuple) else (raw,)
        by_debtor: dict[str, list[tuple[ConsumerRecord[Any, Any], ContactDecision]]] = {}
        for record in records:
            try:
                decision = ContactDecision.model_validate_json(record.value or b"")
            except (ValidationError, ValueError) as error:
                # One bad record must not hold up, or take with it, the rest of the batch.
                await dead_letters.send_record(record, error)
                continue
            by_debtor.setdefault(decision.debtor_id, []).append((record, decision))
        acks: list[asyncio.Future[Any]] = []
        collecting = _batch_acks.set(acks)
        try:
            outcomes = await asyncio.gather(
                *(deliver_in_order(items) for items in by_debtor.values()),
                return_exceptions=True,
            )
        finally:
            _batch_acks.reset(collecting)
        # The offsets commit when this returns: every report must be in the broker first.
        acknowledged = await asyncio.gather(*acks, return_exceptions=True)
        failures = [o for o in (*outcomes, *acknowledged) if isinstance(o, BaseException)]
        if failures:
            log.warning(
                "%d of %d debtors' sends or reports failed; redelivering",
                len(failures),
                len(outcomes) + len(acknowledged),
            )
            raise failures[0]

    @router.subscriber(
        topics.consent_changes,
        # A group of its own: one group per topic (multi-topic groups hang rebalancing
        # on the embedded broker), and its offset commits after the suppression is stored.
        **consumer_group_options(kafka, "messenger-consent"),
        title="messenger: opt-outs for the send-time check",
        description="Keeps the messenger's suppressions in step with consent changes.",
    )
    async def on_consent_change(change: ConsentChanged) -> None:
        await handlers.apply_consent_change(change, deps.suppressions)

    return router


async def _records_undecoded(message: StreamMessage[Any]) -> Any:
    """The batch's records as they came: the handler validates each one itself (a bad one
    is dead-lettered alone), so FastStream's own decoding, which parses and JSON-decodes
    every record again, would be thrown away."""
    return message.raw_message


def _confirmed_at_batch_end(
    publish: Callable[[DeliveryReported], Awaitable[None]],
    publish_unconfirmed: Callable[[DeliveryReported], Awaitable[asyncio.Future[Any]]],
) -> Callable[[DeliveryReported], Awaitable[None]]:
    """Inside a decisions batch, hand reports over and leave their acknowledgements to the
    batch's end; anywhere else, wait for each as before."""

    async def publish_report(report: DeliveryReported) -> None:
        acks = _batch_acks.get()
        if acks is None:
            await publish(report)
        else:
            acks.append(await publish_unconfirmed(report))

    return publish_report
