"""The webhook benchmark at a small size, on the real stack: every signed status callback
and Event Webhook post it makes is handled and recorded once per receipt, and a post signed
with another key is refused without a trace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.bench.race_support import load_bench

webhooks = load_bench("webhook_rate")


@dataclass
class Ran:
    results: dict[str, Any]
    receipts: dict[str, int]
    texts: int
    forged_status: int
    receipts_after_forged: int


async def _receipts(database_url: str) -> dict[str, int]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT provider, count(*) FROM messenger.receipts GROUP BY provider")
            )
            return {provider: int(count) for provider, count in rows}
    finally:
        await engine.dispose()


async def _scenario(stack: Any, keys: Any) -> Ran:
    messenger = stack.url_of("messenger")
    measured = await webhooks.run(
        messenger,
        stack.url_of("sandbox"),
        stack.url_of("scheduler"),
        stack.broker.bootstrap_servers,
        keys,
        requests=200,
        concurrency=4,
        seed_reminders=100,
        events_per_post=1,
        say=lambda _: None,
    )
    database = stack.postgres.url()
    receipts = await _receipts(database)
    async with httpx.AsyncClient(timeout=30.0) as client:
        accepted = (await client.get(stack.url_of("sandbox") + "/_sandbox/messages")).json()
        email = next(m for m in accepted if m["provider"] == "sendgrid")
        body = json.dumps(
            [{"event": "bounce", "sg_message_id": email["message_id"], "sg_event_id": "forged"}]
        ).encode()
        forged = await client.post(
            messenger + "/webhooks/sendgrid/events",
            content=body,
            headers=webhooks.EventKeys.fresh().headers(body),
        )
    return Ran(
        results={m.name: m for m in measured},
        receipts=receipts,
        texts=sum(m["provider"] == "twilio" for m in accepted),
        forged_status=forged.status_code,
        receipts_after_forged=sum((await _receipts(database)).values()),
    )


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    keys = webhooks.EventKeys.fresh()
    with webhooks.running_stack(
        tmp_path_factory.mktemp("webhook-rate"),
        extra_env=webhooks.stack_env(keys),
        progress=lambda _: None,
    ) as stack:
        yield asyncio.run(_scenario(stack, keys))


@pytest.mark.timeout(900)
def test_every_signed_webhook_is_handled(ran: Ran) -> None:
    for name in ("twilio_status", "sendgrid_events"):
        assert (ran.results[name].handled, ran.results[name].refused) == (100, 0), name
        assert ran.results[name].rate > 0


@pytest.mark.timeout(900)
def test_each_receipt_is_recorded_once(ran: Ran) -> None:
    # 100 callbacks over 50 texts: a repeated "delivered" is the same receipt; every
    # SendGrid event has its own event id, so each is one.
    assert ran.texts == 50
    assert ran.receipts == {"twilio": 50, "sendgrid": 100}


@pytest.mark.timeout(900)
def test_a_post_signed_with_another_key_is_refused_and_changes_nothing(ran: Ran) -> None:
    assert ran.forged_status == 403
    assert ran.receipts_after_forged == 150
