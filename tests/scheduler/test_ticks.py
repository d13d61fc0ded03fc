"""The scheduler's time on the real broker and PostgreSQL: cadence on local dates, ids that
stay unique across restarts and two instances, fallback after an undelivered SMS, and the
deferral round trip through the real consent service."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timedelta

import httpx
from parley_consent.bootstrap import create_app as create_consent
from parley_consent.settings import ConsentSettings
from parley_scheduler.bootstrap import create_app
from parley_shared.events import (
    Channel,
    ContactDecision,
    DeliveryReported,
    DeliveryStatus,
    ReminderProposed,
    Verdict,
)
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics

from tests.scheduler.conftest import (
    FakeTemplateChecker,
    ManualClock,
    scheduler_client,
    settings_for,
)
from tests.scheduler.samples import ACCOUNTS, CAMPAIGN, IN_AUDIENCE
from tests.support.apps import running_app
from tests.support.kafka import payloads, produce_raw, read_topic, wait_for

YAML = {"Content-Type": "application/yaml"}
CSV = {"Content-Type": "text/csv"}


async def _launch(api: httpx.AsyncClient, campaign: str = CAMPAIGN) -> None:
    assert (await api.post("/v1/accounts/imports", content=ACCOUNTS, headers=CSV)).is_success
    assert (await api.post("/v1/campaigns", content=campaign, headers=YAML)).status_code == 201
    assert (await api.post("/v1/campaigns/late-payers/activate")).status_code == 200


async def _proposals(kafka: KafkaSettings, at_least: int) -> list[ReminderProposed]:
    topic = Topics.for_prefix(kafka.topic_prefix).proposals
    records = await read_topic(kafka, topic, at_least=at_least, timeout=20, settle=1.5)
    return [ReminderProposed.model_validate(p) for p in payloads(records)]


async def test_steps_are_proposed_on_the_debtors_local_dates_each_once(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    clock = ManualClock()
    async with scheduler_client(settings_for(kafka_settings, database_url), clock) as api:
        await _launch(api)
        day_0 = (await api.post("/v1/ticks")).json()
        again = (await api.post("/v1/ticks")).json()
        # 05:30 UTC three days later: 00:30 on day 3 in New York, still day 2 in Los Angeles.
        clock.current = clock.current.replace(hour=5, minute=30) + timedelta(days=3)
        day_3_east = (await api.post("/v1/ticks")).json()
        clock.advance(hours=3)
        day_3_west = (await api.post("/v1/ticks")).json()

    assert (day_0["new"], again["new"]) == (3, 0)
    # paid-1 is skipped on the "skip if paid" step.
    assert (day_3_east["new"], day_3_west["new"]) == (1, 1)
    proposals = await _proposals(kafka_settings, at_least=5)
    assert sorted((p.debtor_id, p.step) for p in proposals) == [
        ("la-1", 0),
        ("la-1", 2),
        ("ny-1", 0),
        ("ny-1", 2),
        ("paid-1", 0),
    ]
    assert {p.debtor_id for p in proposals} <= IN_AUDIENCE
    first = next(p for p in proposals if p.debtor_id == "ny-1" and p.step == 0)
    assert first.address_facts is not None and first.address_facts.consent_evidence == "form-1"
    assert first.send_window is not None and first.region == "NY"


async def test_two_instances_and_a_restart_never_propose_a_step_twice(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    clock = ManualClock()
    settings = settings_for(kafka_settings, database_url)
    # The second instance shares the store and topics but consumes in its own groups: the
    # embedded broker stalls when members join and leave one group in quick succession, and
    # proposing (what this test is about) involves no consumer.
    other_groups = kafka_settings.model_copy(
        update={"group_prefix": kafka_settings.group_prefix + "b"}
    )
    second_settings = settings.model_copy(update={"kafka": other_groups})
    async with scheduler_client(settings, clock) as first:
        await _launch(first)
        async with scheduler_client(second_settings, clock) as second:
            reports = await asyncio.gather(
                first.post("/v1/ticks"), second.post("/v1/ticks"), first.post("/v1/ticks")
            )
    # A restarted instance on the same store, a day later.
    clock.advance(days=1)
    async with scheduler_client(settings, clock) as restarted:
        after_restart = (await restarted.post("/v1/ticks")).json()

    assert sum(r.json()["new"] for r in reports) == 3
    assert after_restart["new"] == 0
    proposals = await _proposals(kafka_settings, at_least=3)
    assert Counter(p.proposal_id for p in proposals).most_common(1)[0][1] == 1
    assert sorted(p.debtor_id for p in proposals) == ["la-1", "ny-1", "paid-1"]


async def _report(kafka: KafkaSettings, proposal: ReminderProposed, status: DeliveryStatus) -> None:
    report = DeliveryReported(
        debtor_id=proposal.debtor_id,
        proposal_id=proposal.proposal_id,
        channel=proposal.channel,
        status=status,
        provider="twilio",
    )
    topic = Topics.for_prefix(kafka.topic_prefix).deliveries
    await produce_raw(kafka, topic, [report.model_dump_json().encode()], key=proposal.kafka_key())


async def test_an_undelivered_sms_falls_back_to_email_and_a_delivered_one_does_not(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    clock = ManualClock()
    async with scheduler_client(settings_for(kafka_settings, database_url), clock) as api:
        await _launch(api)
        await api.post("/v1/ticks")
        texts = {p.debtor_id: p for p in await _proposals(kafka_settings, at_least=3)}
        await _report(kafka_settings, texts["ny-1"], DeliveryStatus.UNDELIVERED)
        await _report(kafka_settings, texts["la-1"], DeliveryStatus.DELIVERED)

        async def recorded() -> bool:
            history = (await api.get("/v1/debtors/la-1/enrollments")).json()["proposals"]
            ny = (await api.get("/v1/debtors/ny-1/enrollments")).json()["proposals"]
            return bool(history[0]["delivery_status"] and ny[0]["delivery_status"])

        assert await wait_for(recorded, timeout=30)
        clock.advance(minutes=10)
        fallback = (await api.post("/v1/ticks")).json()
        ny_history = (await api.get("/v1/debtors/ny-1/enrollments")).json()["proposals"]

    assert fallback["new"] == 1
    assert [(e["step"], e["channel"], e["delivery_status"]) for e in ny_history] == [
        (0, "sms", "undelivered"),
        (1, "email", None),
    ]
    emails = [p for p in await _proposals(kafka_settings, at_least=4) if p.channel is Channel.EMAIL]
    assert [(p.debtor_id, p.step, p.address) for p in emails] == [("ny-1", 1, "ann@example.com")]


async def test_a_deferred_proposal_round_trips_through_the_real_consent_service(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    clock = ManualClock()  # 13:30 UTC: 05:30 in Los Angeles, before its window opens.
    settings = settings_for(kafka_settings, database_url)
    consent = create_consent(
        ConsentSettings(kafka=kafka_settings, database_url=database_url), clock=clock
    )
    scheduler = create_app(settings, clock=clock, template_checker=FakeTemplateChecker())
    decisions_topic = Topics.for_prefix(kafka_settings.topic_prefix).decisions
    async with (
        running_app(consent),
        running_app(scheduler),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(scheduler),
            base_url="http://s",
            headers={"X-API-Key": "op-secret-1"},
        ) as api,
    ):
        await _launch(api)
        await api.post("/v1/ticks")

        async def la_deferral() -> dict[str, object] | None:
            entries = (await api.get("/v1/debtors/la-1/enrollments")).json()["proposals"]
            return entries[0] if entries and entries[0]["verdict"] else None

        assert await wait_for(la_deferral, timeout=40)
        first = await la_deferral()
        assert first is not None and first["verdict"] == "deferred", first
        early = (await api.post("/v1/ticks")).json()
        clock.current = datetime.fromisoformat(str(first["defer_until"])) + timedelta(minutes=1)
        due = (await api.post("/v1/ticks")).json()
        again = (await api.post("/v1/ticks")).json()

        async def la_decided_twice() -> bool:
            entries = (await api.get("/v1/debtors/la-1/enrollments")).json()["proposals"]
            return len(entries) == 2 and entries[1]["verdict"] is not None

        assert await wait_for(la_decided_twice, timeout=40)
        history = (await api.get("/v1/debtors/la-1/enrollments")).json()["proposals"]

    assert (early["reproposed"], due["reproposed"], again["reproposed"]) == (0, 1, 0)
    assert [(e["step"], e["attempt"], e["verdict"]) for e in history] == [
        (0, 0, "deferred"),
        (0, 1, "approved"),
    ]
    assert history[1]["proposal_id"] != history[0]["proposal_id"]
    records = await read_topic(kafka_settings, decisions_topic, at_least=4, timeout=20)
    la = [
        d for d in map(ContactDecision.model_validate, payloads(records)) if d.debtor_id == "la-1"
    ]
    assert [(d.proposal.attempt, d.verdict) for d in la] == [
        (0, Verdict.DEFERRED),
        (1, Verdict.APPROVED),
    ]
    assert uuid.UUID(str(history[1]["proposal_id"])) == la[1].proposal_id
