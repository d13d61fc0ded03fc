"""Webhook handling rate of the messenger: signed Twilio status callbacks and signed SendGrid
Event Webhook posts against the running messenger, with its plain liveness endpoint at the
same concurrency as the baseline of the same run.

The stack is the real one (``LocalStack`` as in ``optout_race.py``) with the messenger given
the public half of a fresh P-256 key for the Event Webhook. A small campaign is delivered
first (the stand-in's own status callbacks off), so every webhook concerns a real send:
each Twilio callback is that message's "delivered", each SendGrid post carries
``--events-per-post`` "delivered" events. Once every send has had its receipt, further
posts are a provider's retries (idempotent, still verified, stored and republished).

Run: ``uv run --no-sync python bench/webhook_rate.py --requests 2000 --concurrency 16``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from optout_race import (
    ACCOUNT_SID,
    OUR_NUMBER,
    Progress,
    follow,
    propose,
    race_debtors,
    running_stack,
    twilio_signature,
)

Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass
class EventKeys:
    private: ec.EllipticCurvePrivateKey
    public_b64: str  # base64 DER, the form SendGrid shows and the messenger is given

    @classmethod
    def fresh(cls) -> EventKeys:
        private = ec.generate_private_key(ec.SECP256R1())
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(private, base64.b64encode(der).decode())

    def headers(self, body: bytes) -> dict[str, str]:
        """SendGrid's signature: ECDSA P-256 / SHA-256 over timestamp + raw body."""
        timestamp = str(int(time.time()))
        signature = self.private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }


def twilio_callback(message: dict[str, Any]) -> Request:
    url = str(message["status_callback"])
    form = {
        "MessageSid": message["message_id"],
        "SmsSid": message["message_id"],
        "AccountSid": ACCOUNT_SID,
        "From": message["sender"] or OUR_NUMBER,
        "To": message["to"][0],
        "MessageStatus": "delivered",
        "SmsStatus": "delivered",
        "ApiVersion": "2010-04-01",
    }
    headers = {"X-Twilio-Signature": twilio_signature(url, form)}

    def post(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.post(url, data=form, headers=headers)

    return post


def sendgrid_post(url: str, keys: EventKeys, messages: list[dict[str, Any]]) -> Request:
    events = [
        {
            "email": message["to"][0],
            "timestamp": int(time.time()),
            "event": "delivered",
            "sg_event_id": secrets.token_urlsafe(16),
            "sg_message_id": f"{message['message_id']}.filterdrecv-bench-0",
            **message.get("custom_args", {}),
        }
        for message in messages
    ]
    body = json.dumps(events).encode()

    def post(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        # Signed when sent: the messenger refuses posts older than its replay window.
        return client.post(url, content=body, headers=keys.headers(body))

    return post


@dataclass
class Measured:
    name: str
    handled: int
    refused: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.handled / self.seconds if self.seconds else 0.0

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def hammer(name: str, requests: list[Request], concurrency: int) -> Measured:
    """Send every request with ``concurrency`` in flight; 2xx counts as handled."""
    queue = list(reversed(requests))
    latencies: list[float] = []
    refused = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:

        async def worker() -> None:
            nonlocal refused
            while queue:
                request = queue.pop()
                began = time.perf_counter()
                response = await request(client)
                if response.is_success:
                    latencies.append(time.perf_counter() - began)
                else:
                    refused += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Measured(name, len(latencies), refused, seconds, latencies)


async def run(
    messenger_url: str,
    sandbox_url: str,
    scheduler_url: str,
    bootstrap: str,
    keys: EventKeys,
    *,
    requests: int,
    concurrency: int,
    seed_reminders: int,
    events_per_post: int,
    say: Callable[[str], None],
) -> list[Measured]:
    progress = Progress()
    stop = asyncio.Event()
    follower = asyncio.create_task(follow(bootstrap, progress, stop))
    async with httpx.AsyncClient(timeout=60.0) as client:
        await propose(client, scheduler_url, race_debtors(seed_reminders, email_every=2), progress)
        deadline = time.monotonic() + 600
        while not progress.done:
            if time.monotonic() > deadline:
                raise TimeoutError("the seeding campaign was not delivered in 600 s")
            await asyncio.sleep(0.25)
        stop.set()
        await follower
        accepted = (await client.get(sandbox_url + "/_sandbox/messages")).json()
    texts = [m for m in accepted if m["provider"] == "twilio" and m["status_callback"]]
    emails = [m for m in accepted if m["provider"] == "sendgrid"]
    if not texts or not emails:
        raise RuntimeError(f"seeding left {len(texts)} texts and {len(emails)} emails")
    say(f"seeded {len(texts)} texts and {len(emails)} emails; measuring")
    half = requests // 2
    twilio = [twilio_callback(texts[n % len(texts)]) for n in range(half)]
    events_url = messenger_url + "/webhooks/sendgrid/events"
    sendgrid = [
        sendgrid_post(
            events_url,
            keys,
            [emails[(n * events_per_post + k) % len(emails)] for k in range(events_per_post)],
        )
        for n in range(half)
    ]

    def live(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.get(messenger_url + "/health/live")

    results = []
    runs: list[tuple[str, list[Request]]] = [
        ("live", [live] * half),
        ("twilio_status", twilio),
        ("sendgrid_events", sendgrid),
        ("live_again", [live] * half),
    ]
    for name, batch in runs:
        measured = await hammer(name, batch, concurrency)
        say(
            f"{name}: {measured.rate:.0f}/s, p50 {measured.quantile(0.5) * 1000:.1f} ms, "
            f"p99 {measured.quantile(0.99) * 1000:.1f} ms, {measured.refused} refused"
        )
        results.append(measured)
    return results


def stack_env(keys: EventKeys) -> dict[str, dict[str, str]]:
    return {
        "messenger": {"PARLEY_SENDGRID__EVENT_WEBHOOK_PUBLIC_KEY": keys.public_b64},
        # The bench posts the receipts itself; the stand-in's own would race it.
        "sandbox": {"PARLEY_SANDBOX_TWILIO_STATUS_CALLBACKS": "false"},
    }


def summary(results: list[Measured], concurrency: int, events_per_post: int) -> dict[str, float]:
    by_name = {m.name: m for m in results}
    # The baseline is the better of the two liveness runs (before and after), so a burst
    # of background load on a shared machine does not flatter the ratios.
    baseline = max(by_name["live"].rate, by_name["live_again"].rate)
    out: dict[str, float] = {"concurrency": concurrency, "events_per_post": events_per_post}
    for m in results:
        out |= {
            f"{m.name}_handled": m.handled,
            f"{m.name}_refused": m.refused,
            f"{m.name}_per_s": round(m.rate, 1),
            f"{m.name}_p50_ms": round(m.quantile(0.50) * 1000, 2),
            f"{m.name}_p99_ms": round(m.quantile(0.99) * 1000, 2),
        }
    for name in ("twilio_status", "sendgrid_events"):
        out[f"{name}_ratio_to_live"] = round(by_name[name].rate / baseline, 3) if baseline else 0
    out["sendgrid_events_per_s"] = round(by_name["sendgrid_events"].rate * events_per_post, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="webhook posts in all")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seed-reminders", type=int, default=1000)
    parser.add_argument("--events-per-post", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--workdir", type=Path, help="keep logs here (default: a temp dir)")
    args = parser.parse_args()

    def say(line: str) -> None:
        print(f"[webhooks] {line}", file=sys.stderr, flush=True)

    keys = EventKeys.fresh()
    with running_stack(args.workdir, extra_env=stack_env(keys), progress=say) as stack:
        results = asyncio.run(
            run(
                stack.url_of("messenger"),
                stack.url_of("sandbox"),
                stack.url_of("scheduler"),
                stack.broker.bootstrap_servers,
                keys,
                requests=args.requests,
                concurrency=args.concurrency,
                seed_reminders=args.seed_reminders,
                events_per_post=args.events_per_post,
                say=say,
            )
        )
    totals = summary(results, args.concurrency, args.events_per_post)
    report = {
        "name": "webhook_rate",
        "summary": totals,
        # Latencies of the handled webhooks, both kinds, in seconds.
        "histogram": sorted(
            round(latency, 5)
            for m in results
            if m.name in ("twilio_status", "sendgrid_events")
            for latency in m.latencies
        ),
    }
    for name, value in totals.items():
        print(f"{name:>32}: {value}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    refused = sum(m.refused for m in results)
    sys.exit(1 if refused else 0)


if __name__ == "__main__":
    main()
