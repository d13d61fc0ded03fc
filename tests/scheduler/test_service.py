"""The scheduler against the real broker and PostgreSQL."""

from __future__ import annotations

import httpx
from parley_scheduler.bootstrap import create_app
from parley_scheduler.settings import SchedulerSettings
from parley_shared.events import ReminderProposed
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.scheduler.test_domain import ACCOUNTS, CAMPAIGN
from tests.support.apps import running_app
from tests.support.kafka import payloads, read_topic


def _settings(kafka_settings: KafkaSettings, database_url: str) -> SchedulerSettings:
    return SchedulerSettings(kafka=kafka_settings, database_url=database_url)


async def _run(app: httpx.AsyncClient, campaign: str = CAMPAIGN) -> httpx.Response:
    return await app.post(
        "/v1/campaign-runs", json={"campaign_yaml": campaign, "accounts_csv": ACCOUNTS}
    )


async def test_running_a_campaign_twice_across_restarts_publishes_each_proposal_once(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    topic = Topics.for_prefix(kafka_settings.topic_prefix).proposals
    settings = _settings(kafka_settings, database_url)

    first_app = create_app(settings)
    async with running_app(first_app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(first_app), base_url="http://s")
        first = (await _run(client)).json()
        again = (await _run(client)).json()

    # A second scheduler process on the same store, as after a restart.
    second_app = create_app(settings)
    async with running_app(second_app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(second_app), base_url="http://s")
        after_restart = (await _run(client)).json()

    assert (first["planned"], first["new"], first["published"]) == (2, 2, 2)
    assert first["unreachable"] == [{"debtor_id": "d-3", "reason": "no sms address"}]
    assert (again["new"], again["published"]) == (0, 0)
    assert (after_restart["new"], after_restart["published"]) == (0, 0)

    records = await read_topic(kafka_settings, topic, at_least=2, settle=1.5)
    proposals = [ReminderProposed.model_validate(p) for p in payloads(records)]
    assert sorted(p.debtor_id for p in proposals) == ["d-1", "d-2"]
    assert {record.key for record in records} == {b"d-1", b"d-2"}


async def test_an_invalid_campaign_is_refused_and_nothing_is_stored(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    app = create_app(_settings(kafka_settings, database_url))
    async with running_app(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://s")
        response = await _run(client, CAMPAIGN.replace("version: 1", "version: zero"))
    assert response.status_code == 422
    assert response.json()["detail"] == [
        "line 2, version: Input should be a valid integer, unable to parse string as an integer"
    ]
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        count = await connection.execute(text("SELECT count(*) FROM scheduler.proposals"))
        assert count.scalar_one() == 0
    await engine.dispose()


async def test_health_reports_broker_and_database(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    app = create_app(_settings(kafka_settings, database_url))
    async with running_app(app):
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://s")
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["checks"] == {"broker": True, "database": True}
