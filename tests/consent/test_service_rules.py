"""Holds, caps fed by delivery events, the debtor overview, the evaluate endpoint and the
append-only audit, against the real broker (Tansu) and a real PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from parley_consent.adapters.database import ConsentRepository
from parley_consent.bootstrap import create_app
from parley_consent.settings import ConsentSettings
from parley_shared.events import (
    Channel,
    ConsentChanged,
    ConsentChangeKind,
    ConsentSource,
    DeliveryReported,
    DeliveryStatus,
    HoldKind,
    Verdict,
)
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.consent.builders import PHONE, proposal
from tests.consent.fakes import FixedClock
from tests.consent.test_service import _decisions, _propose, _scalar
from tests.support.apps import running_app
from tests.support.kafka import produce_raw, wait_for

# Wednesday 2026-06-10, 12:00 in New York.
NOON_EASTERN = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)
EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "consent"


@pytest.fixture
async def client(
    kafka_settings: KafkaSettings, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    settings = ConsentSettings(kafka=kafka_settings, database_url=database_url)
    app = create_app(settings, clock=FixedClock(NOON_EASTERN))
    async with (
        running_app(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://consent") as http,
    ):
        yield http


def _hold(kind: ConsentChangeKind, at: datetime, **fields: object) -> dict[str, object]:
    change = ConsentChanged(
        debtor_id="d-1",
        occurred_at=at,
        kind=kind,
        hold_kind=HoldKind.BANKRUPTCY,
        source=ConsentSource.OPERATOR,
        evidence="court-notice-17",
        **fields,  # type: ignore[arg-type]
    )
    return json.loads(change.model_dump_json())


async def test_a_hold_recorded_over_http_vetoes_and_its_release_allows_again(
    kafka_settings: KafkaSettings, database_url: str, client: httpx.AsyncClient
) -> None:
    hold = _hold(ConsentChangeKind.HOLD, NOON_EASTERN - timedelta(days=2))
    assert (await client.post("/v1/consent-changes", json=hold)).status_code == 201
    held = proposal()
    await _propose(kafka_settings, held)
    [vetoed] = await _decisions(kafka_settings, at_least=1)
    assert vetoed.verdict is Verdict.VETOED
    assert [reason.rule_id for reason in vetoed.reasons] == ["US-BK"]

    release = _hold(ConsentChangeKind.HOLD_RELEASED, NOON_EASTERN - timedelta(hours=1))
    assert (await client.post("/v1/consent-changes", json=release)).status_code == 201
    await _propose(kafka_settings, proposal())
    decisions = await _decisions(kafka_settings, at_least=2)
    assert decisions[1].verdict is Verdict.APPROVED
    stored = await _scalar(
        database_url,
        f"SELECT evidence->'holds' FROM consent.decisions WHERE proposal_id = '{held.proposal_id}'",
    )
    assert [entry["kind"] for entry in stored] == ["bankruptcy"]  # type: ignore[attr-defined]


async def test_delivery_events_feed_the_massachusetts_cap_once_per_proposal(
    kafka_settings: KafkaSettings, database_url: str, client: httpx.AsyncClient
) -> None:
    topics = Topics.for_prefix(kafka_settings.topic_prefix)
    earlier = [proposal(region="MA"), proposal(region="MA")]
    reports = []
    for reminder, sent_at in zip(
        earlier, (NOON_EASTERN - timedelta(days=2), NOON_EASTERN - timedelta(days=1)), strict=True
    ):
        sent = DeliveryReported(
            debtor_id="d-1",
            occurred_at=sent_at,
            proposal_id=reminder.proposal_id,
            channel=Channel.SMS,
            status=DeliveryStatus.SENT,
            provider="twilio",
        )
        # The same receipt twice, and a later status: one contact per proposal.
        later = sent.model_copy(
            update={
                "status": DeliveryStatus.DELIVERED,
                "occurred_at": sent_at + timedelta(seconds=5),
            }
        )
        reports += [sent, sent, later]
    await produce_raw(
        kafka_settings,
        topics.deliveries,
        [report.model_dump_json().encode() for report in reports],
        key=b"d-1",
    )

    async def counted() -> bool:
        return await _scalar(database_url, "SELECT count(*) FROM consent.contacts") == 2

    assert await wait_for(counted)
    await _propose(
        kafka_settings, proposal(region="MA"), proposal(region="MA", channel=Channel.EMAIL)
    )
    text_decision, email_decision = await _decisions(kafka_settings, at_least=2)
    assert text_decision.verdict is Verdict.DEFERRED
    assert [reason.rule_id for reason in text_decision.reasons] == ["US-MA"]
    # Monday's text leaves the 7-day window on the next Monday.
    assert text_decision.defer_until == datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
    assert email_decision.verdict is Verdict.APPROVED


async def test_approvals_not_yet_reported_sent_still_count_towards_a_cap(
    kafka_settings: KafkaSettings, database_url: str, client: httpx.AsyncClient
) -> None:
    """Three texts proposed together to a Massachusetts debtor, before any send is
    reported: the cap of two per seven days lets two through, whether the proposals
    arrive in one batch or several."""
    texts = [proposal(region="MA") for _ in range(3)]
    await _propose(kafka_settings, *texts)
    decisions = await _decisions(kafka_settings, at_least=3)
    by_proposal = {decision.proposal_id: decision for decision in decisions}
    verdicts = [by_proposal[text.proposal_id].verdict for text in texts]
    assert verdicts == [Verdict.APPROVED, Verdict.APPROVED, Verdict.DEFERRED]
    third = by_proposal[texts[2].proposal_id]
    assert [reason.rule_id for reason in third.reasons] == ["US-MA"]

    # Once the approvals' lawful deadline has passed with no send reported, they never
    # left, so they no longer count towards the debtor's caps.
    engine = create_async_engine(database_url)
    try:
        repository = ConsentRepository(engine)
        today = await repository.load_histories(["d-1"], NOON_EASTERN)
        tomorrow = await repository.load_histories(["d-1"], NOON_EASTERN + timedelta(days=1))
    finally:
        await engine.dispose()
    assert {contact.proposal_id for contact in today["d-1"]} == {
        texts[0].proposal_id,
        texts[1].proposal_id,
    }
    assert tomorrow == {}


async def test_the_debtor_overview_shows_state_and_decisions_with_masked_addresses(
    kafka_settings: KafkaSettings, client: httpx.AsyncClient
) -> None:
    opt_out = ConsentChanged(
        debtor_id="d-1",
        occurred_at=NOON_EASTERN - timedelta(hours=3),
        kind=ConsentChangeKind.OPT_OUT,
        channel=Channel.SMS,
        address=PHONE,
        source=ConsentSource.SMS_REPLY,
        evidence="SM-1",
    )
    await client.post("/v1/consent-changes", json=json.loads(opt_out.model_dump_json()))
    await client.post(
        "/v1/consent-changes", json=_hold(ConsentChangeKind.HOLD, NOON_EASTERN - timedelta(hours=1))
    )
    reminder = proposal()
    await _propose(kafka_settings, reminder)
    await _decisions(kafka_settings, at_least=1)

    response = await client.get("/v1/debtors/d-1")
    assert response.status_code == 200
    overview = response.json()
    assert PHONE not in response.text and "2125550100" not in response.text
    assert overview["opt_outs"] == [
        {"channel": "sms", "address": "***0100", "occurred_at": "2026-06-10T13:00:00Z", "own": True}
    ]
    assert [hold["kind"] for hold in overview["holds"]] == ["bankruptcy"]
    assert overview["holds"][0]["active"] is True
    assert [change["kind"] for change in overview["consent_changes"]] == ["hold", "opt_out"]
    [decision] = overview["decisions"]
    assert decision["proposal_id"] == str(reminder.proposal_id)
    assert decision["verdict"] == "vetoed"
    assert {reason["rule_id"] for reason in decision["reasons"]} == {"US-F-MEDIUM", "US-BK"}
    assert decision["trace_id"]


async def test_evaluate_answers_a_documented_case_and_stores_nothing(
    database_url: str, client: httpx.AsyncClient
) -> None:
    case = json.loads((EXAMPLES / "massachusetts-third-text-in-a-week.json").read_text())
    response = await client.post("/v1/evaluate", json=case)
    assert response.status_code == 200
    decision = response.json()
    assert decision["verdict"] == "deferred"
    assert decision["defer_until"] == "2026-06-15T12:00:00Z"
    assert await _scalar(database_url, "SELECT count(*) FROM consent.decisions") == 0


async def test_evaluate_refuses_an_invalid_case_naming_the_field(client: httpx.AsyncClient) -> None:
    case = json.loads((EXAMPLES / "massachusetts-third-text-in-a-week.json").read_text())
    case["proposal"]["channel"] = "pigeon"
    response = await client.post("/v1/evaluate", json=case)
    assert response.status_code == 422
    assert response.json()["field"] == "proposal.channel"
    assert "proposal.channel" in response.json()["detail"]


async def test_the_audit_tables_refuse_updates_and_deletes(
    kafka_settings: KafkaSettings, database_url: str, client: httpx.AsyncClient
) -> None:
    await _propose(kafka_settings, proposal())
    await _decisions(kafka_settings, at_least=1)
    engine = create_async_engine(database_url)
    try:
        for statement in (
            "UPDATE consent.decisions SET verdict = 'approved'",
            "DELETE FROM consent.decisions",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                async with engine.begin() as connection:
                    await connection.execute(text(statement))
    finally:
        await engine.dispose()
    assert await _scalar(database_url, "SELECT count(*) FROM consent.decisions") == 1
