"""Prometheus metrics every service exports on ``/metrics``.

The pipeline's business counters are read off the event contract as events are
published (a decision counts when consent publishes it, a send when the messenger
reports it), so the services need no metric calls scattered through their handlers.
Each app owns its registry: several apps in one process (the tests) never collide.
Labels carry only enumerations and rule ids, never personal data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream import BaseMiddleware
from faststream.kafka import KafkaBroker
from faststream.message import StreamMessage
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from parley_shared.events import (
    ConsentChanged,
    ConsentChangeKind,
    ContactDecision,
    DeliveryReported,
    DeliveryStatus,
    Event,
    ReminderProposed,
)

log = logging.getLogger(__name__)

EVENT_TYPE_HEADER = "x-parley-event-type"

# Seconds from a proposal to its send: sends wait for the lawful window, so the tail
# reaches hours; opt-outs must take effect within about a second.
PROPOSAL_TO_SENT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 14400)
OPT_OUT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ServiceMetrics:
    """The metric families of one service instance, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.info = Gauge(
            "parley_service_info",
            "Always 1; labels name the service and version.",
            ["service", "version"],
            registry=registry,
        )
        self.proposals = Counter(
            "parley_proposals_total",
            "Reminders proposed by the scheduler.",
            ["channel"],
            registry=registry,
        )
        self.decisions = Counter(
            "parley_decisions_total",
            "Consent decisions published, by verdict.",
            ["verdict"],
            registry=registry,
        )
        self.decision_reasons = Counter(
            "parley_decision_reasons_total",
            "Rules cited by vetoes and deferrals; one decision may cite several.",
            ["verdict", "rule_id"],
            registry=registry,
        )
        self.deliveries = Counter(
            "parley_deliveries_total",
            "Delivery outcomes reported by the messenger.",
            ["channel", "provider", "status"],
            registry=registry,
        )
        self.provider_errors = Counter(
            "parley_provider_errors_total",
            "Provider error codes seen in delivery outcomes.",
            ["provider", "error_code"],
            registry=registry,
        )
        self.consent_changes = Counter(
            "parley_consent_changes_total",
            "Consent changes published, by kind and source.",
            ["kind", "source"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "parley_dead_letters_total",
            "Messages moved to the dead-letter topic.",
            ["source_topic"],
            registry=registry,
        )
        self.webhook_rejections = Counter(
            "parley_webhook_rejections_total",
            "Webhook and one-click requests refused (bad signature, malformed, replayed).",
            ["endpoint", "reason"],
            registry=registry,
        )
        self.proposal_to_sent = Histogram(
            "parley_proposal_to_sent_seconds",
            "Time from a reminder's proposal to the provider accepting it.",
            ["channel"],
            buckets=PROPOSAL_TO_SENT_BUCKETS,
            registry=registry,
        )
        self.opt_out_latency = Histogram(
            "parley_opt_out_processing_seconds",
            "Time from an opt-out being acknowledged to this service having applied it.",
            ["source"],
            buckets=OPT_OUT_BUCKETS,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "parley_consumer_lag_messages",
            "Messages not yet committed by a consumer group, summed over partitions.",
            ["group", "topic"],
            registry=registry,
        )
        self.lag_probe_success = Gauge(
            "parley_consumer_lag_probe_success",
            "1 when the last consumer-lag probe reached the broker, else 0.",
            registry=registry,
        )

    def describe_service(self, service: str, version: str) -> None:
        self.info.clear()
        self.info.labels(service, version).set(1)

    def record_published(self, event: Event) -> None:
        """Count one event this service has just published."""
        if isinstance(event, ReminderProposed):
            self.proposals.labels(event.channel.value).inc()
        elif isinstance(event, ContactDecision):
            verdict = event.verdict.value
            self.decisions.labels(verdict).inc()
            for reason in event.reasons:
                self.decision_reasons.labels(verdict, reason.rule_id).inc()
        elif isinstance(event, DeliveryReported):
            self._record_delivery(event)
        elif isinstance(event, ConsentChanged):
            self.consent_changes.labels(event.kind.value, event.source.value).inc()

    def _record_delivery(self, event: DeliveryReported) -> None:
        self.deliveries.labels(event.channel.value, event.provider, event.status.value).inc()
        if event.error_code:
            self.provider_errors.labels(event.provider, event.error_code).inc()
        if event.status is DeliveryStatus.SENT and event.proposed_at is not None:
            waited = (event.occurred_at - event.proposed_at).total_seconds()
            self.proposal_to_sent.labels(event.channel.value).observe(max(waited, 0.0))

    def record_consumed(self, headers: Mapping[str, Any], body: bytes) -> None:
        """Observe how long an opt-out took to reach this service, once it is applied."""
        if headers.get(EVENT_TYPE_HEADER) != ConsentChanged.event_type:
            return
        try:
            payload = json.loads(body)
            if payload.get("kind") != ConsentChangeKind.OPT_OUT.value:
                return
            acknowledged = datetime.fromisoformat(payload["occurred_at"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # undecodable events are the dead-letter path's business
        waited = (datetime.now(UTC) - acknowledged).total_seconds()
        self.opt_out_latency.labels(str(payload.get("source", "unknown"))).observe(max(waited, 0.0))


_METRICS_BY_BROKER: weakref.WeakKeyDictionary[KafkaBroker, ServiceMetrics] = (
    weakref.WeakKeyDictionary()
)


def attach_metrics(broker: KafkaBroker, metrics: ServiceMetrics) -> None:
    _METRICS_BY_BROKER[broker] = metrics


def metrics_for(broker: KafkaBroker) -> ServiceMetrics:
    """The metrics of the service that owns ``broker`` (one is made if none was attached)."""
    metrics = _METRICS_BY_BROKER.get(broker)
    if metrics is None:
        metrics = ServiceMetrics()
        _METRICS_BY_BROKER[broker] = metrics
    return metrics


def consumed_metrics_middleware(metrics: ServiceMetrics) -> type[BaseMiddleware[Any, Any]]:
    class ConsumedMetricsMiddleware(BaseMiddleware[Any, Any]):
        async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
            result = await call_next(msg)
            # Only after the handler returned: the opt-out is applied, not merely received.
            metrics.record_consumed(msg.headers, msg.body)
            return result

    return ConsumedMetricsMiddleware


async def _partition_numbers(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    known = consumer.partitions_for_topic(topic)
    if not known:
        await consumer.topics()  # the first lookup of a topic refreshes metadata
        known = consumer.partitions_for_topic(topic)
    return set(known or ())


class ConsumerLagProbe:
    """Polls committed and end offsets of the service's consumer groups into a gauge.

    Lag is end offset minus committed offset. On the embedded broker end offsets can
    lag behind batched produces, so there the gauge is a lower bound; on Apache Kafka
    it is exact.
    """

    def __init__(
        self,
        broker: KafkaBroker,
        metrics: ServiceMetrics,
        bootstrap_servers: str,
        interval_seconds: float = 15.0,
    ) -> None:
        self._broker = broker
        self._metrics = metrics
        self._bootstrap_servers = bootstrap_servers
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None

    def groups(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for subscriber in self._broker.subscribers:
            group_id = getattr(subscriber, "group_id", None)
            if group_id:
                groups.setdefault(group_id, []).extend(getattr(subscriber, "topic_names", []))
        return groups

    async def probe_once(self) -> dict[tuple[str, str], int]:
        lags: dict[tuple[str, str], int] = {}
        for group_id, topics in self.groups().items():
            # A consumer that names the group but never subscribes reads its committed
            # offsets without joining it, so the probe cannot trigger a rebalance.
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap_servers,
                group_id=group_id,
                enable_auto_commit=False,
            )
            await consumer.start()
            try:
                for topic in topics:
                    partitions = [
                        TopicPartition(topic, number)
                        for number in sorted(await _partition_numbers(consumer, topic))
                    ]
                    ends = await consumer.end_offsets(partitions) if partitions else {}
                    lag = 0
                    for partition, end in ends.items():
                        done = await consumer.committed(partition)
                        lag += max(end - (done or 0), 0)
                    lags[(group_id, topic)] = lag
                    self._metrics.consumer_lag.labels(group_id, topic).set(lag)
            finally:
                await consumer.stop()
        self._metrics.lag_probe_success.set(1)
        return lags

    async def _run(self) -> None:
        while True:
            # Wait first: a service that has just started has no lag worth a broker round trip.
            await asyncio.sleep(self._interval)
            try:
                await asyncio.wait_for(self.probe_once(), timeout=max(self._interval, 5.0))
            except Exception as error:  # the probe must never take the service down
                self._metrics.lag_probe_success.set(0)
                log.warning("consumer lag probe failed: %s", type(error).__name__)

    async def start(self) -> None:
        if self._task is None and self._interval > 0:
            self._task = asyncio.create_task(self._run(), name="consumer-lag-probe")

    async def stop(self) -> None:
        """Cancel the probe without waiting on the broker: a probe caught mid-request
        must not hold up the service's shutdown."""
        if self._task is None:
            return
        task, self._task = self._task, None
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5.0)
        if not done:
            log.warning("consumer lag probe did not stop within 5 s; left behind")
