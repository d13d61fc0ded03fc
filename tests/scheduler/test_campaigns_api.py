"""Campaigns and accounts through the REST API, on the real broker and PostgreSQL."""

from __future__ import annotations

import httpx
from parley_scheduler.bootstrap import create_app
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics

from tests.scheduler.conftest import (
    AUDITOR_KEY,
    FakeTemplateChecker,
    ManualClock,
    scheduler_client,
    settings_for,
)
from tests.scheduler.samples import ACCOUNTS, CAMPAIGN, HEADER, ROWS
from tests.support.apps import running_app
from tests.support.kafka import read_topic

YAML = {"Content-Type": "application/yaml"}
CSV = {"Content-Type": "text/csv"}


async def test_a_campaign_goes_through_its_lifecycle_and_every_change_is_recorded(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    clock = ManualClock()
    async with scheduler_client(settings_for(kafka_settings, database_url), clock) as api:
        created = await api.post("/v1/campaigns", content=CAMPAIGN, headers=YAML)
        assert created.status_code == 201, created.text
        assert (created.json()["version"], created.json()["status"]) == (1, "draft")
        assert (await api.post("/v1/campaigns", content=CAMPAIGN, headers=YAML)).status_code == 409

        clock.advance(minutes=5)
        changed = await api.put(
            "/v1/campaigns/late-payers",
            content=CAMPAIGN.replace("day_offset: 3", "day_offset: 4"),
            headers=YAML,
        )
        assert (changed.json()["version"], changed.json()["status"]) == (2, "draft")
        activated = await api.post("/v1/campaigns/late-payers/activate")
        assert activated.json()["status"] == "active"
        assert activated.json()["started_at"] is not None
        assert (await api.post("/v1/campaigns/late-payers/pause")).json()["status"] == "paused"
        refused = await api.post("/v1/campaigns/late-payers/pause")
        assert refused.status_code == 409
        assert "cannot pause a campaign that is paused" in refused.json()["detail"]
        assert (await api.post("/v1/campaigns/late-payers/archive")).json()["status"] == "archived"
        changes = (await api.get("/v1/campaigns/late-payers/changes")).json()

    assert [(c["action"], c["actor"], c["version"]) for c in changes] == [
        ("create", "alice", 1),
        ("update", "alice", 2),
        ("activate", "alice", 2),
        ("pause", "alice", 2),
        ("archive", "alice", 2),
    ]
    assert changes[1]["changes"] == {
        "fields": [{"field": "steps.2.day_offset", "before": 3, "after": 4}]
    }
    assert changes[1]["at"] > changes[0]["at"]


async def test_an_invalid_definition_is_refused_naming_line_and_field_and_nothing_is_stored(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    async with scheduler_client(settings_for(kafka_settings, database_url), ManualClock()) as api:
        broken = CAMPAIGN.replace("channel: email", "channel: fax", 1)
        response = await api.post("/v1/campaigns", content=broken, headers=YAML)
        assert response.status_code == 422
        assert response.json()["detail"] == [
            "line 10, steps.1.channel: Input should be 'sms' or 'email'"
        ]
        assert (await api.get("/v1/campaigns/late-payers")).status_code == 404
        assert (await api.get("/v1/campaigns")).json() == []


async def test_auditors_read_operators_change_and_unknown_keys_get_nothing(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    settings = settings_for(kafka_settings, database_url)
    async with scheduler_client(settings, ManualClock()) as api:
        assert (await api.post("/v1/campaigns", content=CAMPAIGN, headers=YAML)).status_code == 201
        auditor = {"X-API-Key": AUDITOR_KEY}
        assert (await api.get("/v1/campaigns/late-payers", headers=auditor)).status_code == 200
        denied = await api.post("/v1/campaigns/late-payers/activate", headers=auditor)
        assert denied.status_code == 403
        assert (await api.get("/v1/campaigns", headers={"X-API-Key": "guess"})).status_code == 401
        assert (await api.get("/v1/campaigns", headers={"X-API-Key": ""})).status_code == 401
        status = (await api.get("/v1/campaigns/late-payers")).json()["status"]
    assert status == "draft"


async def test_only_the_named_editors_may_change_a_campaign(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    async with scheduler_client(settings_for(kafka_settings, database_url), ManualClock()) as api:
        owned = CAMPAIGN + "editors: [bob]\n"
        assert (await api.post("/v1/campaigns", content=owned, headers=YAML)).status_code == 201
        response = await api.post("/v1/campaigns/late-payers/activate")
        assert response.status_code == 403
        assert "alice is not among the editors" in response.json()["detail"]


async def test_activation_is_refused_when_templates_have_problems(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    checker = FakeTemplateChecker(problems={"first-notice": [(3, "undeclared variable 'amount'")]})
    settings = settings_for(kafka_settings, database_url)
    async with scheduler_client(settings, ManualClock(), checker) as api:
        await api.post("/v1/campaigns", content=CAMPAIGN, headers=YAML)
        response = await api.post("/v1/campaigns/late-payers/activate")
        assert response.status_code == 422
        assert response.json()["detail"][0] == (
            "steps.0.template 'first-notice' (sms, en, line 3): undeclared variable 'amount'"
        )
        assert (await api.get("/v1/campaigns/late-payers")).json()["status"] == "draft"
    assert {(t, locale, c.value) for t, locale, c in checker.asked} == {
        ("first-notice", "en", "sms"),
        ("first-notice", "en", "email"),
    }


async def test_activation_is_refused_with_a_clear_error_when_the_messenger_is_unreachable(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    # The real adapter, pointed at a port nothing listens on.
    settings = settings_for(kafka_settings, database_url, messenger_url="http://127.0.0.1:9")
    app = create_app(settings, clock=ManualClock())
    async with (
        running_app(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app),
            base_url="http://s",
            headers={"X-API-Key": "op-secret-1"},
        ) as api,
    ):
        await api.post("/v1/campaigns", content=CAMPAIGN, headers=YAML)
        response = await api.post("/v1/campaigns/late-payers/activate")
        assert response.status_code == 503
        assert response.json()["detail"].startswith(
            "cannot check templates: the messenger at http://127.0.0.1:9/v1/template-checks "
            "is unreachable"
        )
        assert (await api.get("/v1/campaigns/late-payers")).json()["status"] == "draft"


async def test_importing_reports_bad_rows_and_re_importing_the_same_file_changes_nothing(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    bad = ROWS[0].replace("ny-1,", "bad-1,").replace("+12125550101", "12")
    text = ACCOUNTS + bad
    async with scheduler_client(settings_for(kafka_settings, database_url), ManualClock()) as api:
        first = (await api.post("/v1/accounts/imports", content=text, headers=CSV)).json()
        again = (await api.post("/v1/accounts/imports", content=text, headers=CSV)).json()
        edited = text.replace("120.00,45", "130.00,46")
        third = (await api.post("/v1/accounts/imports", content=edited, headers=CSV)).json()
        # A later part of the same file keeps the file's row numbers.
        part = await api.post(
            "/v1/accounts/imports?first_row=40", content=HEADER + bad, headers=CSV
        )
        stored = (await api.get("/v1/accounts/ny-1")).json()

    assert (first["rows"], first["inserted"], first["updated"], first["unchanged"]) == (5, 4, 0, 0)
    assert first["rejected"] == [{"row": 6, "field": "phone", "reason": "not a valid phone number"}]
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 4)
    assert (third["inserted"], third["updated"], third["unchanged"]) == (0, 1, 3)
    assert part.json()["rejected"][0]["row"] == 40
    assert (stored["balance"], stored["days_past_due"]) == ("130.00", 46)


async def test_a_paused_campaign_proposes_nothing_even_when_its_steps_fall_due(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    clock = ManualClock()
    topic = Topics.for_prefix(kafka_settings.topic_prefix).proposals
    async with scheduler_client(settings_for(kafka_settings, database_url), clock) as api:
        await api.post("/v1/accounts/imports", content=ACCOUNTS, headers=CSV)
        await api.post("/v1/campaigns", content=CAMPAIGN, headers=YAML)
        await api.post("/v1/campaigns/late-payers/activate")
        await api.post("/v1/campaigns/late-payers/pause")
        paused_tick = (await api.post("/v1/ticks")).json()
        clock.advance(days=4)
        later_tick = (await api.post("/v1/ticks")).json()
    assert paused_tick["new"] == later_tick["new"] == 0
    assert await read_topic(kafka_settings, topic, at_least=1, timeout=3) == []
