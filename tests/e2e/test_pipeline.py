"""The whole path, scheduler → consent → messenger → provider stand-ins, on the real broker
and PostgreSQL, with the real Twilio and SendGrid SDKs over loopback HTTP."""

from __future__ import annotations

import contextlib
import io
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from parley_cli.demo_data import EMAIL_CAMPAIGN, SMS_CAMPAIGN
from parley_cli.local.ports import free_port
from parley_consent.bootstrap import create_app as create_consent
from parley_consent.settings import ConsentSettings
from parley_messenger.bootstrap import create_app as create_messenger
from parley_messenger.settings import MessengerSettings, SendGridSettings, TwilioSettings
from parley_sandbox.app import create_app as create_sandbox
from parley_sandbox.settings import SandboxSettings
from parley_scheduler.bootstrap import create_app as create_scheduler
from parley_scheduler.settings import SchedulerSettings
from parley_shared.clock import SimulatedClock
from parley_shared.events import (
    Channel,
    ConsentChanged,
    ConsentChangeKind,
    ConsentSource,
    ContactDecision,
    DeliveryReported,
)
from parley_shared.logs import TraceContextFilter
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics
from prometheus_client.parser import text_string_to_metric_families
from pythonjsonlogger.json import JsonFormatter

from tests.support.apps import running_app, serve_http
from tests.support.kafka import payloads, read_topic, wait_for

# 13:30 UTC on a Tuesday: 08:30 in New York and 13:30 in London are inside the 08:00-21:00
# window; 05:30 in Los Angeles is not.
START = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)

# Every texted number was consented to in writing and confirmed this month; every email
# address was given by the debtor: the address rules allow them all.
SMS_ACCOUNTS = """\
debtor_id,name,phone,email,time_zone,country,locale,balance,creditor,reference,sms_consent_evidence,sms_consented_at,phone_confirmed_at
ny-1,Ann Example,+12125550101,,America/New_York,US,en,120.00,Northwind,R1,form-1,2026-10-01T12:00:00Z,2026-11-01T12:00:00Z
ny-2,Bea Example,+12125550102,,America/New_York,US,es,80.00,Northwind,R2,form-2,2026-10-01T12:00:00Z,2026-11-01T12:00:00Z
uk-1,Cal Example,+447911100003,,Europe/London,GB,en,50.00,Northwind,R3,form-3,2026-10-01T12:00:00Z,2026-11-01T12:00:00Z
la-1,Dee Example,+12135550104,,America/Los_Angeles,US,en,75.00,Northwind,R4,form-4,2026-10-01T12:00:00Z,2026-11-01T12:00:00Z
out-1,Eve Example,+12125550105,,America/New_York,US,en,99.00,Northwind,R5,form-5,2026-10-01T12:00:00Z,2026-11-01T12:00:00Z
"""
EMAIL_ACCOUNTS = """\
debtor_id,name,phone,email,time_zone,country,locale,balance,creditor,reference,email_provenance
em-1,Fay Example,,fay@example.com,America/New_York,US,en,10.00,Northwind,R6,consumer_used
em-2,Gus Example,,gus@example.com,Europe/London,GB,en,20.00,Northwind,R7,consumer_used
"""
APPROVED = {"ny-1", "ny-2", "uk-1", "em-1", "em-2"}
PERSONAL_DATA = ["+12125550101", "fay@example.com", "Ann Example", "120.00"]


@dataclass
class Pipeline:
    kafka: KafkaSettings
    scheduler: httpx.AsyncClient
    consent: httpx.AsyncClient
    messenger: httpx.AsyncClient
    sandbox: httpx.AsyncClient
    spans: InMemorySpanExporter
    logs: io.StringIO

    async def run(self, campaign: str, accounts: str) -> dict[str, int]:
        response = await self.scheduler.post(
            "/v1/campaign-runs", json={"campaign_yaml": campaign, "accounts_csv": accounts}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def messages(self) -> list[dict[str, object]]:
        return list((await self.sandbox.get("/_sandbox/messages")).json())

    async def metrics(self) -> dict[str, str]:
        clients = {"scheduler": self.scheduler, "consent": self.consent}
        clients["messenger"] = self.messenger
        return {name: (await client.get("/metrics")).text for name, client in clients.items()}


@contextlib.contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line the services write, as production formats it (JSON with trace ids)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TraceContextFilter())
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s %(trace_id)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@contextlib.asynccontextmanager
async def pipeline(
    kafka: KafkaSettings, database_url: str, start: datetime = START
) -> AsyncIterator[Pipeline]:
    spans = InMemorySpanExporter()
    processors = (SimpleSpanProcessor(spans),)
    clock = SimulatedClock(start)
    # The messenger is served over HTTP: the stand-ins call it back with signed receipts.
    messenger_port = free_port()
    messenger_url = f"http://127.0.0.1:{messenger_port}"
    sandbox_settings = SandboxSettings(
        callback_delay_seconds=0.0,
        twilio_inbound_url=f"{messenger_url}/webhooks/twilio/inbound",
    )
    with captured_logs() as logs:
        async with serve_http(create_sandbox(sandbox_settings)) as sandbox_url:
            common = {"kafka": kafka, "database_url": database_url}
            consent_app = create_consent(
                ConsentSettings(**common), span_processors=processors, clock=clock
            )
            messenger_app = create_messenger(
                MessengerSettings(
                    **common,
                    public_base_url=messenger_url,
                    twilio=TwilioSettings(base_url=sandbox_url),
                    sendgrid=SendGridSettings(host=sandbox_url),
                ),
                span_processors=processors,
                clock=clock,
            )
            scheduler_app = create_scheduler(
                SchedulerSettings(**common, messenger_url=messenger_url),
                span_processors=processors,
                clock=clock,
            )
            async with (
                running_app(consent_app),
                serve_http(messenger_app, port=messenger_port),
                running_app(scheduler_app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(scheduler_app), base_url="http://s"
                ) as s,
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(consent_app), base_url="http://c"
                ) as c,
                httpx.AsyncClient(base_url=messenger_url) as m,
                httpx.AsyncClient(base_url=sandbox_url) as sandbox,
            ):
                yield Pipeline(kafka, s, c, m, sandbox, spans, logs)


async def _opt_out(consent: httpx.AsyncClient, debtor_id: str, address: str) -> None:
    change = ConsentChanged(
        debtor_id=debtor_id,
        kind=ConsentChangeKind.OPT_OUT,
        channel=Channel.SMS,
        address=address,
        source=ConsentSource.SMS_REPLY,
        evidence="SM00000000000000000000000000000001",
    )
    response = await consent.post("/v1/consent-changes", json=change.model_dump(mode="json"))
    assert response.status_code in (200, 201), response.text


async def _delivered_count(kafka: KafkaSettings, expected: int) -> bool:
    reports = await _deliveries(kafka, at_least=1)
    return sum(1 for report in reports if report.status.value == "delivered") >= expected


async def _deliveries(kafka: KafkaSettings, at_least: int) -> list[DeliveryReported]:
    topic = Topics.for_prefix(kafka.topic_prefix).deliveries
    records = await read_topic(kafka, topic, at_least=at_least, timeout=60, settle=2.0)
    return [DeliveryReported.model_validate(p) for p in payloads(records)]


@pytest.fixture
async def ran(kafka_settings: KafkaSettings, database_url: str) -> AsyncIterator[Pipeline]:
    async with pipeline(kafka_settings, database_url) as p:
        await _opt_out(p.consent, "out-1", "+12125550105")
        sms = await p.run(SMS_CAMPAIGN, SMS_ACCOUNTS)
        email = await p.run(EMAIL_CAMPAIGN, EMAIL_ACCOUNTS)
        assert (sms["published"], email["published"]) == (5, 2)
        assert await wait_for(lambda: _count(p), timeout=60)
        yield p


async def _count(p: Pipeline) -> bool:
    return len(await p.messages()) >= len(APPROVED)


async def test_every_proposal_is_decided_and_approved_ones_reach_the_stand_ins_once(
    ran: Pipeline,
) -> None:
    decisions_topic = Topics.for_prefix(ran.kafka.topic_prefix).decisions
    records = await read_topic(ran.kafka, decisions_topic, at_least=7, timeout=60, settle=1.0)
    decisions = {d.debtor_id: d for d in map(ContactDecision.model_validate, payloads(records))}
    assert len(decisions) == 7
    verdicts = {debtor: decision.verdict.value for debtor, decision in decisions.items()}
    assert verdicts == {
        "ny-1": "approved",
        "ny-2": "approved",
        "uk-1": "approved",
        "em-1": "approved",
        "em-2": "approved",
        "la-1": "deferred",
        "out-1": "vetoed",
    }

    messages = await ran.messages()
    recipients = Counter(to for message in messages for to in message["to"])  # type: ignore[attr-defined]
    assert recipients == {
        "+12125550101": 1,
        "+12125550102": 1,
        "+447911100003": 1,
        "fay@example.com": 1,
        "gus@example.com": 1,
    }
    deliveries = await _deliveries(ran.kafka, at_least=5)
    assert sorted(d.debtor_id for d in deliveries if d.status.value == "sent") == sorted(APPROVED)
    sent = [d for d in deliveries if d.status.value == "sent"]
    assert Counter(d.provider for d in sent) == {"twilio": 3, "sendgrid": 2}
    # The Twilio stand-in's signed status callbacks come back as delivery receipts.
    assert await wait_for(lambda: _delivered_count(ran.kafka, expected=3), timeout=30), (
        "no delivered receipts came back from the status callbacks"
    )


async def test_an_opted_out_debtor_receives_nothing_and_the_veto_cites_the_rule(
    ran: Pipeline,
) -> None:
    decisions_topic = Topics.for_prefix(ran.kafka.topic_prefix).decisions
    records = await read_topic(ran.kafka, decisions_topic, at_least=7, timeout=60)
    vetoed = [
        d for d in map(ContactDecision.model_validate, payloads(records)) if d.debtor_id == "out-1"
    ]
    assert [d.verdict.value for d in vetoed] == ["vetoed"]
    assert "US-F-MEDIUM" in {reason.rule_id for reason in vetoed[0].reasons}
    assert all("+12125550105" not in message["to"] for message in await ran.messages())  # type: ignore[operator]


async def test_a_debtor_outside_the_window_is_deferred_to_their_next_morning(
    ran: Pipeline,
) -> None:
    decisions_topic = Topics.for_prefix(ran.kafka.topic_prefix).decisions
    records = await read_topic(ran.kafka, decisions_topic, at_least=7, timeout=60)
    deferred = next(
        d for d in map(ContactDecision.model_validate, payloads(records)) if d.debtor_id == "la-1"
    )
    # 05:30 in Los Angeles: the next lawful minute is 08:00 Pacific, 16:00 UTC.
    assert deferred.defer_until == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    assert "US-F-TIME" in {reason.rule_id for reason in deferred.reasons}
    assert all("+12135550104" not in message["to"] for message in await ran.messages())  # type: ignore[operator]


async def test_a_debtor_at_22_local_is_deferred_not_sent(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    ten_pm_in_new_york = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    one_new_yorker = "\n".join(SMS_ACCOUNTS.splitlines()[:2]) + "\n"
    async with pipeline(kafka_settings, database_url, start=ten_pm_in_new_york) as p:
        await p.run(SMS_CAMPAIGN, one_new_yorker)
        topic = Topics.for_prefix(kafka_settings.topic_prefix).decisions
        records = await read_topic(kafka_settings, topic, at_least=1, timeout=60, settle=2.0)
        decisions = [ContactDecision.model_validate(r) for r in payloads(records)]
        assert [d.verdict.value for d in decisions] == ["deferred"]
        assert decisions[0].defer_until == datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
        assert await p.messages() == []


async def test_running_the_scheduler_again_sends_nothing_twice(ran: Pipeline) -> None:
    again_sms = await ran.run(SMS_CAMPAIGN, SMS_ACCOUNTS)
    again_email = await ran.run(EMAIL_CAMPAIGN, EMAIL_ACCOUNTS)
    assert (again_sms["new"], again_email["new"]) == (0, 0)
    before = len(await ran.messages())
    await _deliveries(ran.kafka, at_least=5)  # let anything in flight arrive
    assert len(await ran.messages()) == before == len(APPROVED)


async def test_one_trace_id_spans_the_three_services_and_the_provider_call(
    ran: Pipeline,
) -> None:
    messages = await ran.messages()
    sms = next(m for m in messages if "+12125550101" in m["to"])  # type: ignore[operator]
    traceparent = sms["traceparent"]
    assert isinstance(traceparent, str), "the provider call carried no trace context"
    trace_id = int(traceparent.split("-")[1], 16)

    spans = [s for s in ran.spans.get_finished_spans() if s.context.trace_id == trace_id]
    services = {span.resource.attributes["service.name"] for span in spans}
    assert services == {"parley-scheduler", "parley-consent", "parley-messenger"}
    assert any(span.kind.name == "CLIENT" and "POST" in span.name for span in spans)
    # Another reminder has a trace of its own.
    other = next(m for m in messages if "+12125550102" in m["to"])  # type: ignore[operator]
    assert other["traceparent"].split("-")[1] != traceparent.split("-")[1]  # type: ignore[union-attr]


async def test_no_personal_data_in_spans_logs_or_metrics(ran: Pipeline) -> None:
    """Invariant 6, everywhere an operator or a telemetry backend could read it."""
    for span in ran.spans.get_finished_spans():
        recorded = [span.name, *(f"{k}={v}" for k, v in (span.attributes or {}).items())]
        for event in span.events:
            recorded += [event.name, *(f"{k}={v}" for k, v in (event.attributes or {}).items())]
        text = " ".join(recorded)
        for value in PERSONAL_DATA:
            assert value not in text, f"{value!r} leaked into span {span.name!r}"
    logs = ran.logs.getvalue()
    assert logs.count("\n") > 20, "the services logged next to nothing: is capture working?"
    assert '"trace_id": "' in logs
    for value in PERSONAL_DATA:
        assert value not in logs, f"{value!r} leaked into a log line"
    for service, scrape in (await ran.metrics()).items():
        assert "parley_service_info" in scrape
        for value in PERSONAL_DATA:
            assert value not in scrape, f"{value!r} leaked into {service}'s metrics"


async def test_metrics_count_what_happened(ran: Pipeline) -> None:
    families: dict[str, dict[tuple[str, Any], float]] = {}

    async def scrape() -> None:
        families.clear()
        for service, text in (await ran.metrics()).items():
            families[service] = {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            }

    def total(service: str, name: str, **labels: str) -> float:
        return sum(
            value
            for (sample, sample_labels), value in families[service].items()
            if sample == name and all(dict(sample_labels).get(k) == v for k, v in labels.items())
        )

    async def all_reported() -> bool:
        # A message reaches the stand-in a moment before the messenger reports it sent.
        await scrape()
        return total("messenger", "parley_deliveries_total", status="sent") >= len(APPROVED)

    await wait_for(all_reported, timeout=30)
    assert total("scheduler", "parley_proposals_total") == 7
    assert total("consent", "parley_decisions_total") == 7
    assert total("consent", "parley_decisions_total", verdict="approved") == len(APPROVED)
    assert total("consent", "parley_decision_reasons_total", rule_id="US-F-MEDIUM") == 1
    assert total("messenger", "parley_deliveries_total", status="sent") == len(APPROVED)
    assert total("messenger", "parley_proposal_to_sent_seconds_count") == len(APPROVED)
    # The opt-out recorded before the run reached the messenger through consent.changes.
    assert total("messenger", "parley_opt_out_processing_seconds_count") >= 1


async def test_provider_receipts_join_the_reminders_trace(ran: Pipeline) -> None:
    """The stand-in's signed status callback arrives later, over HTTP; the receipt's span
    sits in the trace the scheduler started for that reminder."""

    def receipt_spans() -> list[Any]:
        return [s for s in ran.spans.get_finished_spans() if "receipt" in s.name]

    assert await wait_for(lambda: len(receipt_spans()) >= 3, timeout=30)
    scheduler_traces = {
        span.context.trace_id
        for span in ran.spans.get_finished_spans()
        if span.resource.attributes["service.name"] == "parley-scheduler"
    }
    for span in receipt_spans():
        assert span.context.trace_id in scheduler_traces, span.name
        # ... and leads to the webhook request that carried it.
        assert span.links and span.links[0].context.trace_id != span.context.trace_id

    # A STOP texted back joins the trace of the reminder that reached that number.
    messages = await ran.messages()
    reminder = next(m for m in messages if "+12125550101" in m["to"])  # type: ignore[operator]
    reminder_trace = int(str(reminder["traceparent"]).split("-")[1], 16)
    answer = await ran.sandbox.post(
        "/_sandbox/twilio/inbound", json={"from": "+12125550101", "body": "STOP"}
    )
    assert answer.status_code == 200, answer.text
    inbound = [s for s in ran.spans.get_finished_spans() if s.name == "twilio inbound sms"]
    assert [span.context.trace_id for span in inbound] == [reminder_trace]
