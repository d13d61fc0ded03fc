"""The whole path over real HTTP, real broker and PostgreSQL: a campaign's templates are
checked by the real messenger when it is activated, and ``parley journey`` then tells one
debtor's story across the three services, each entry with its trace id."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from parley_cli.main import app
from parley_consent.bootstrap import create_app as create_consent
from parley_consent.settings import ConsentSettings
from parley_messenger.bootstrap import create_app as create_messenger
from parley_messenger.settings import MessengerSettings, SendGridSettings, TwilioSettings
from parley_sandbox.app import create_app as create_sandbox
from parley_sandbox.settings import SandboxSettings
from parley_scheduler.bootstrap import create_app as create_scheduler
from parley_shared.settings import KafkaSettings
from typer.testing import CliRunner

from tests.cli.test_preview import ACCOUNTS, CAMPAIGN, START
from tests.scheduler.conftest import OPERATOR_KEY, ManualClock, settings_for
from tests.support.apps import serve_http
from tests.support.kafka import wait_for

YAML = {"Content-Type": "application/yaml"}


@dataclass
class Urls:
    scheduler: str
    consent: str
    messenger: str


@contextlib.asynccontextmanager
async def stack(kafka: KafkaSettings, database_url: str) -> AsyncIterator[Urls]:
    clock = ManualClock(START)
    common = {"kafka": kafka, "database_url": database_url}
    async with serve_http(create_sandbox(SandboxSettings())) as sandbox_url:
        messenger = create_messenger(
            MessengerSettings(
                **common,
                twilio=TwilioSettings(base_url=sandbox_url),
                sendgrid=SendGridSettings(host=sandbox_url),
            ),
            clock=clock,
        )
        async with (
            serve_http(create_consent(ConsentSettings(**common), clock=clock)) as consent_url,
            serve_http(messenger) as messenger_url,
        ):
            scheduler = create_scheduler(
                settings_for(kafka, database_url, messenger_url=messenger_url), clock=clock
            )
            async with serve_http(scheduler) as scheduler_url:
                yield Urls(scheduler_url, consent_url, messenger_url)


async def test_templates_are_checked_by_the_real_messenger_and_the_journey_spans_all_services(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    async with (
        stack(kafka_settings, database_url) as urls,
        httpx.AsyncClient(base_url=urls.scheduler, headers={"X-API-Key": OPERATOR_KEY}) as api,
    ):
        unknown = CAMPAIGN.replace("id: late-payers", "id: unknown-template").replace(
            "template: first-notice", "template: final-demand", 1
        )
        await api.post("/v1/campaigns", content=unknown, headers=YAML)
        refused = await api.post("/v1/campaigns/unknown-template/activate")
        assert refused.status_code == 422
        assert refused.json()["detail"][0].startswith("steps.0.template 'final-demand' (sms, en")

        await api.post(
            "/v1/accounts/imports", content=ACCOUNTS, headers={"Content-Type": "text/csv"}
        )
        # English only: the journey is the point here, not the Spanish SMS template's length.
        english = CAMPAIGN.replace("supported: [en, es]", "supported: [en]")
        await api.post("/v1/campaigns", content=english, headers=YAML)
        activated = await api.post("/v1/campaigns/late-payers/activate")
        assert activated.status_code == 200, activated.text
        # 13:30 in London is inside the campaign window (09:00-19:00); New York is not yet.
        assert (await api.post("/v1/ticks")).json()["new"] == 6

        assert await wait_for(lambda: asyncio.to_thread(delivered_sync, urls), timeout=60)
        result = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            [
                "journey",
                "uk-001",
                "--scheduler-url",
                urls.scheduler,
                "--consent-url",
                urls.consent,
                "--messenger-url",
                urls.messenger,
                "--api-key",
                OPERATOR_KEY,
            ],
            env={"COLUMNS": "250"},
        )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "│" in line]
    services = [line.split("│")[2].strip() for line in lines]
    assert services[:3] == ["scheduler", "consent", "messenger"], result.output
    assert "proposed late-payers v1 step 0 by sms" in result.output
    assert "approved" in result.output
    assert "sent by sms via twilio" in result.output
    trace_ids = {line.split("│")[6].strip() for line in lines[:3]}
    assert len(trace_ids) == 1 and len(trace_ids.pop()) == 32, result.output


def delivered_sync(urls: Urls) -> bool:
    answer = httpx.get(f"{urls.messenger}/v1/debtors/uk-001/deliveries", timeout=5).json()
    return bool(answer["deliveries"])
