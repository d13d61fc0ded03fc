"""The shared metrics plumbing: event-derived counters, consumer lag against the real broker,
and JSON logs that carry trace ids."""

from __future__ import annotations

import io
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider
from parley_shared.events import (
    Channel,
    ConsentChanged,
    ConsentChangeKind,
    ConsentSource,
    ContactDecision,
    DecisionReason,
    DeliveryReported,
    DeliveryStatus,
    ReminderProposed,
    Verdict,
)
from parley_shared.kafka import consumer_group_options
from parley_shared.logs import TraceContextFilter, configure_logging
from parley_shared.metrics import ServiceMetrics
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics


def _proposal(channel: Channel = Channel.SMS) -> ReminderProposed:
    return ReminderProposed(
        debtor_id="d-1",
        proposal_id=uuid.uuid4(),
        campaign_id="c",
        campaign_version=1,
        step=0,
        channel=channel,
        address="+12125550100",
        template="first-notice",
    )


def _sample(metrics: ServiceMetrics, name: str, labels: dict[str, str]) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_published_events_feed_the_pipeline_counters() -> None:
    metrics = ServiceMetrics()
    proposal = _proposal()
    metrics.record_published(proposal)
    metrics.record_published(
        ContactDecision(
            debtor_id="d-1",
            proposal_id=proposal.proposal_id,
            verdict=Verdict.VETOED,
            reasons=(
                DecisionReason(rule_id="US-F-MEDIUM", explanation="opted out"),
                DecisionReason(rule_id="US-BK", explanation="bankruptcy"),
            ),
            rule_set_version="v",
            proposal=proposal,
        )
    )
    proposed_at = datetime.now(UTC) - timedelta(seconds=3)
    metrics.record_published(
        DeliveryReported(
            debtor_id="d-1",
            proposal_id=proposal.proposal_id,
            channel=Channel.SMS,
            status=DeliveryStatus.SENT,
            provider="twilio",
            proposed_at=proposed_at,
        )
    )
    metrics.record_published(
        DeliveryReported(
            debtor_id="d-1",
            proposal_id=proposal.proposal_id,
            channel=Channel.SMS,
            status=DeliveryStatus.FAILED,
            provider="twilio",
            error_code="21610",
        )
    )

    assert _sample(metrics, "parley_proposals_total", {"channel": "sms"}) == 1
    assert _sample(metrics, "parley_decisions_total", {"verdict": "vetoed"}) == 1
    for rule in ("US-F-MEDIUM", "US-BK"):
        labels = {"verdict": "vetoed", "rule_id": rule}
        assert _sample(metrics, "parley_decision_reasons_total", labels) == 1
    assert (
        _sample(
            metrics,
            "parley_provider_errors_total",
            {"provider": "twilio", "error_code": "21610"},
        )
        == 1
    )
    assert _sample(metrics, "parley_proposal_to_sent_seconds_count", {"channel": "sms"}) == 1
    observed = _sample(metrics, "parley_proposal_to_sent_seconds_sum", {"channel": "sms"})
    assert 2.5 < observed < 60


def test_an_applied_opt_out_is_timed_from_its_acknowledgement() -> None:
    metrics = ServiceMetrics()
    change = ConsentChanged(
        debtor_id="d-1",
        occurred_at=datetime.now(UTC) - timedelta(milliseconds=400),
        kind=ConsentChangeKind.OPT_OUT,
        source=ConsentSource.SMS_REPLY,
        evidence="SM123",
    )
    body = change.model_dump_json().encode()
    metrics.record_consumed({"x-parley-event-type": "consent.changed"}, body)
    metrics.record_consumed({"x-parley-event-type": "consent.changed"}, b"not json")
    labels = {"source": "sms_reply"}
    assert _sample(metrics, "parley_opt_out_processing_seconds_count", labels) == 1
    assert 0.3 < _sample(metrics, "parley_opt_out_processing_seconds_sum", labels) < 30


async def test_consumer_lag_counts_what_a_group_has_not_committed(
    kafka_settings: KafkaSettings,
) -> None:
    """Lag on the real broker: messages produced one by one, before and after a commit."""
    from parley_shared.metrics import ConsumerLagProbe

    topic = Topics.for_prefix(kafka_settings.topic_prefix).proposals
    broker = KafkaBroker(kafka_settings.bootstrap_servers)
    group = consumer_group_options(kafka_settings, "lag-test")["group_id"]

    @broker.subscriber(topic, group_id=group)
    async def never_started(body: bytes) -> None:  # only its group and topic are read
        del body

    metrics = ServiceMetrics()
    probe = ConsumerLagProbe(broker, metrics, kafka_settings.bootstrap_servers)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for number in range(7):
            await producer.send_and_wait(topic, f"m{number}".encode(), key=b"debtor-1")
    finally:
        await producer.stop()

    lags = await probe.probe_once()
    assert lags[(group, topic)] == 7
    assert _sample(metrics, "parley_consumer_lag_messages", {"group": group, "topic": topic}) == 7

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_settings.bootstrap_servers,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=kafka_settings.session_timeout_ms,
        heartbeat_interval_ms=kafka_settings.heartbeat_interval_ms,
    )
    await consumer.start()
    try:
        seen = 0
        while seen < 7:
            batches = await consumer.getmany(timeout_ms=2000)
            seen += sum(len(records) for records in batches.values())
        await consumer.commit()
    finally:
        await consumer.stop()

    lags = await probe.probe_once()
    assert lags[(group, topic)] == 0
    assert _sample(metrics, "parley_consumer_lag_probe_success", {}) == 1


def test_json_logs_carry_the_active_trace_id() -> None:
    configure_logging("INFO", "json", service="parley-test")
    root = logging.getLogger()
    stream = io.StringIO()
    handler = root.handlers[0]
    handler.setStream(stream)  # type: ignore[attr-defined]
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("parley.test").info("decided %s", "d-42")
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["message"] == "decided d-42"
    assert line["service"] == "parley-test"
    assert line["level"] == "INFO"
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert any(isinstance(f, TraceContextFilter) for f in handler.filters)
    root.handlers.clear()
