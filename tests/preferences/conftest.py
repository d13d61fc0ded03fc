"""The preference page's world: the sandbox stand-ins, the real consent and messenger
apps served over loopback HTTP on the real broker and PostgreSQL (the page calls
consent over HTTP), one simulated clock for both, and headless Debian Chromium driven
by Playwright."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from parley_cli.local.ports import free_port
from parley_consent.bootstrap import create_app as create_consent
from parley_consent.settings import ConsentSettings
from parley_messenger.adapters.preference_links import PreferenceLinks
from parley_messenger.bootstrap import create_app as create_messenger
from parley_messenger.settings import MessengerSettings, SendGridSettings, TwilioSettings
from parley_sandbox.app import create_app as create_sandbox
from parley_sandbox.settings import SandboxSettings
from parley_shared.clock import SimulatedClock
from parley_shared.events import (
    AddressFacts,
    AddressProvenance,
    Channel,
    ReminderProposed,
)
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics
from playwright.async_api import Browser, async_playwright

from tests.support.apps import serve_http
from tests.support.kafka import produce_raw, wait_for

# A Tuesday, 13:30 UTC: 08:30 in New York, inside the 08:00-21:00 window.
START = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)
LINK_SECRET = "test-preference-secret"
PHONE = "+12125550142"
EMAIL = "rosa.debtor@example.com"
ACCOUNT = {"creditor": "Northwind Lending", "reference": "NW-2044-17", "balance": "$412.80"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LINK = re.compile(r"https?://\S+/p/[\w.-]+")


def address_facts() -> AddressFacts:
    """An address the debtor consented to in writing and confirmed lately."""
    return AddressFacts(
        provenance=AddressProvenance.CONSUMER_CONSENTED,
        consent_evidence="signup-form-7",
        consented_at=datetime(2025, 1, 1, tzinfo=UTC),
        confirmed_at=datetime(2026, 11, 1, tzinfo=UTC),
    )


def a_proposal(debtor_id: str, channel: Channel, **overrides: Any) -> ReminderProposed:
    fields: dict[str, Any] = {
        "debtor_id": debtor_id,
        "proposal_id": uuid.uuid4(),
        "campaign_id": "first-notice",
        "campaign_version": 1,
        "step": 0,
        "channel": channel,
        "address": PHONE if channel is Channel.SMS else EMAIL,
        "time_zone": "America/New_York",
        "country": "US",
        "template": "first-notice",
        "locale": "en",
        "variables": {"name": "Rosa Example", **ACCOUNT},
        "address_facts": address_facts(),
    }
    fields.update(overrides)
    return ReminderProposed(**fields)


@dataclass
class Center:
    """The running services and what a test needs to reach them."""

    kafka: KafkaSettings
    messenger_url: str
    consent: httpx.AsyncClient
    messenger: httpx.AsyncClient
    sandbox: httpx.AsyncClient
    links: PreferenceLinks
    clock: SimulatedClock

    async def propose(self, proposal: ReminderProposed) -> None:
        """Put a proposal on the proposals topic, as the scheduler does."""
        topic = Topics.for_prefix(self.kafka.topic_prefix).proposals
        await produce_raw(
            self.kafka,
            topic,
            [proposal.model_dump_json().encode()],
            key=proposal.debtor_id.encode(),
        )

    async def decision(self, proposal_id: uuid.UUID) -> dict[str, Any]:
        found: dict[str, Any] = {}

        async def decided() -> bool:
            response = await self.consent.get(f"/v1/decisions/{proposal_id}")
            if response.status_code == 200:
                found.update(response.json()["decision"])
            return response.status_code == 200

        assert await wait_for(decided, timeout=60), f"no decision for {proposal_id}"
        return found

    async def messages(self) -> list[dict[str, Any]]:
        return list((await self.sandbox.get("/_sandbox/messages")).json())

    async def sent_link(self, to: str) -> str:
        """The preference link in the message the messenger sent to ``to``."""
        bodies: list[str] = []

        async def arrived() -> bool:
            bodies[:] = [m["body"] for m in await self.messages() if to in m["to"]]
            return bool(bodies)

        assert await wait_for(arrived, timeout=60), f"no message reached {to}"
        match = LINK.search(bodies[-1])
        assert match is not None, "the message carries no preference link"
        return match.group(0)

    async def overview(self, debtor_id: str) -> dict[str, Any]:
        response = await self.consent.get(f"/v1/debtors/{debtor_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def page_changes(self, debtor_id: str) -> list[dict[str, Any]]:
        """Consent changes recorded for the debtor that came from the preference page."""
        changes = (await self.overview(debtor_id))["consent_changes"]
        return [c for c in changes if c["source"] == "preference_page"]

    def url_for(self, debtor_id: str) -> str:
        return f"{self.messenger_url}/p/{self.links.sign(debtor_id)}"


@contextlib.asynccontextmanager
async def center_running(
    kafka: KafkaSettings, database_url: str, **messenger_settings: Any
) -> AsyncIterator[Center]:
    clock = SimulatedClock(START)
    common: dict[str, Any] = {"kafka": kafka, "database_url": database_url}
    messenger_port = free_port()
    messenger_url = f"http://127.0.0.1:{messenger_port}"
    async with (
        serve_http(create_sandbox(SandboxSettings(twilio_status_callbacks=False))) as sandbox_url,
        serve_http(create_consent(ConsentSettings(**common), clock=clock)) as consent_url,
    ):
        settings = MessengerSettings(
            **common,
            twilio=TwilioSettings(base_url=sandbox_url),
            sendgrid=SendGridSettings(host=sandbox_url),
            public_base_url=messenger_url,
            consent_url=consent_url,
            preference_link_secret=LINK_SECRET,
            **messenger_settings,
        )
        async with (
            serve_http(create_messenger(settings, clock=clock), messenger_port),
            httpx.AsyncClient(base_url=consent_url) as consent,
            httpx.AsyncClient(base_url=messenger_url) as messenger,
            httpx.AsyncClient(base_url=sandbox_url) as sandbox,
        ):
            links = PreferenceLinks(LINK_SECRET, settings.preference_link_max_age_days * 86_400)
            yield Center(kafka, messenger_url, consent, messenger, sandbox, links, clock)


@pytest.fixture
async def center(kafka_settings: KafkaSettings, database_url: str) -> AsyncIterator[Center]:
    # A generous limit: the browser tests make many requests from one address.
    async with center_running(
        kafka_settings, database_url, preference_rate_limit_per_minute=1000
    ) as running:
        yield running


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


def form_fields(html: str) -> dict[str, str]:
    """The hidden fields of the first form on a page (submission id and CSRF token)."""
    return {
        name: value
        for name, value in re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', html)[
            :3
        ]
    }
