"""What the fault harness needs around the real stack: the stack itself with a crash-proof
broker, the debtors and campaigns, the faults it injects, and readers of the stand-ins'
records and the services' stores."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from parley_cli.local.broker import LocalServiceError, TansuBroker
from parley_cli.local.object_store import LocalObjectStore
from parley_cli.local.ports import free_port
from parley_cli.local.stack import LocalStack, ServiceProcess
from parley_cli.local.synthetic import Debtor
from parley_cli.local.synthetic import make_debtors as make_named_debtors
from parley_shared.events import ConsentChanged, ContactDecision, DeliveryReported, ReminderProposed
from parley_shared.kafka import DEAD_LETTER_REASON_HEADER, DEAD_LETTER_SOURCE_HEADER
from parley_shared.metrics import EVENT_TYPE_HEADER
from parley_shared.topics import Topics
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from twilio.request_validator import RequestValidator

# A Tuesday, 15:00 UTC: 10:00 in New York, 09:00 in Chicago, 15:00 in London. Every debtor
# is inside the 08:00-21:00 window with hours to spare, so outages delay reminders but do
# not push them past their lawful deadline (a restarted service's clock starts here again).
SIMULATED_START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
CAMPAIGNS = (
    "id: faults-sms\nname: Fault harness SMS\nsteps:\n"
    "  - day_offset: 0\n    channel: sms\n    template: first-notice\n",
    "id: faults-email\nname: Fault harness email\nsteps:\n"
    "  - day_offset: 0\n    channel: email\n    template: first-notice\n",
)
SANDBOX_AUTH_TOKEN = "sandbox-auth-token"  # the stand-in's and messenger's default
# The messenger answers a send that takes longer than this (its default) as a timeout.
MESSENGER_SEND_TIMEOUT = 10.0


def make_debtors(count: int) -> list[Debtor]:
    return make_named_debtors(count, "flt")


class FaultStack(LocalStack):
    """The local stack with the broker on ``s3://`` storage (a local moto S3), so a
    ``kill -9`` of the broker keeps topics and committed offsets; the messenger reachable
    for signed inbound texts from the stand-in; the stand-in without status callbacks."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.object_store = LocalObjectStore(workdir=self.workdir / "s3", port=free_port())
        self.broker = TansuBroker(
            workdir=self.workdir / "tansu",
            storage_url=self.object_store.storage_url,
            storage_environment=self.object_store.client_environment(),
        )

    def start(self, timeout: float = 120.0) -> None:
        self.object_store.start()
        super().start(timeout)

    def stop(self, remove_data: bool = False) -> None:
        try:
            super().stop(remove_data)
        finally:
            self.object_store.stop()

    def service(self, name: str) -> ServiceProcess:
        return next(service for service in self.services if service.name == name)

    def _plan_services(self) -> list[ServiceProcess]:
        services = super()._plan_services()
        messenger = next(s.url for s in services if s.name == "messenger")
        common = {
            "PARLEY_LOG_LEVEL": "WARNING",
            # A killed consumer's partitions move on after the session timeout.
            "PARLEY_KAFKA__SESSION_TIMEOUT_MS": "6000",
            "PARLEY_KAFKA__HEARTBEAT_INTERVAL_MS": "1000",
        }
        extra = {
            "scheduler": {**common, "PARLEY_MESSENGER_URL": messenger},
            "consent": common,
            "messenger": {**common, "PARLEY_PUBLIC_BASE_URL": messenger},
            "sandbox": {
                "PARLEY_SANDBOX_TWILIO_STATUS_CALLBACKS": "false",
                "PARLEY_SANDBOX_LOG_LEVEL": "WARNING",
                "PARLEY_SANDBOX_TWILIO_INBOUND_URL": f"{messenger}/webhooks/twilio/inbound",
            },
        }
        for service in services:
            service.env.update(extra.get(service.name, {}))
        return services


async def wait_ready(service: ServiceProcess, timeout: float = 120.0) -> float:
    """Seconds until the service's health check answers 200."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if service.exited():
            raise LocalServiceError(f"{service.name} exited; see {service.log_path}")
        if await asyncio.to_thread(service.is_ready):
            return time.monotonic() - started
        await asyncio.sleep(0.5)
    raise LocalServiceError(f"{service.name} not healthy after {timeout:.0f} s")


@dataclass(frozen=True)
class Acceptance:
    address: str
    provider: str
    received_at: datetime


@dataclass
class StandInRecords:
    """What the stand-ins accepted, read incrementally from ``/_sandbox/messages``."""

    accepted: list[Acceptance] = field(default_factory=list)
    last_sequence: int = 0

    async def poll(self, client: httpx.AsyncClient, sandbox_url: str) -> int:
        response = await client.get(
            sandbox_url + "/_sandbox/messages", params={"after": self.last_sequence}
        )
        response.raise_for_status()
        messages = response.json()
        for message in messages:
            self.last_sequence = max(self.last_sequence, message["sequence"])
            received = datetime.fromisoformat(message["received_at"])
            self.accepted.extend(
                Acceptance(address, message["provider"], received) for address in message["to"]
            )
        return len(messages)

    def by_address(self) -> Counter[str]:
        return Counter(item.address for item in self.accepted)


async def sign_up_timed_outage(client: httpx.AsyncClient, sandbox_url: str) -> None:
    """Twilio's stand-in: 503s for 30 s, then slow answers, then timeouts (each answered
    after the messenger stopped waiting, but accepted: the message did leave)."""
    for fault in (
        {"kind": "unavailable", "for_seconds": 30},
        {"kind": "slow", "for_seconds": 15, "delay_seconds": 2.5},
        {"kind": "timeout", "for_seconds": 15, "delay_seconds": MESSENGER_SEND_TIMEOUT + 2},
    ):
        response = await client.post(
            sandbox_url + "/_sandbox/faults", json={"provider": "twilio", **fault}
        )
        response.raise_for_status()


@dataclass(frozen=True)
class Injected:
    topic: str
    key: str
    what: str


def _bad_bodies(topic: str, key: str, event_type: str) -> list[tuple[str, bytes]]:
    future_event = {
        "event_id": str(uuid.uuid4()),
        "schema_version": 99,
        "occurred_at": "2026-11-24T15:00:00+00:00",
        "debtor_id": key,
        # A shape no released version has: the fields this version needs are not there.
        "payload": {"kind": event_type, "data": {"x": 1}},
    }
    return [
        ("not JSON", b"{this is not json"),
        ("not UTF-8", b"\xff\xfe\xfa not text"),
        ("wrong shape", json.dumps({"greeting": "hello", "topic": topic}).encode()),
        ("unknown version", json.dumps(future_event).encode()),
    ]


async def inject_malformed(bootstrap: str, tag: str) -> list[Injected]:
    """Bad events on every topic a service consumes, each under a key of its own."""
    topics = Topics.for_prefix("")
    event_types = {
        topics.proposals: ReminderProposed.event_type,
        topics.decisions: ContactDecision.event_type,
        topics.deliveries: DeliveryReported.event_type,
        topics.consent_changes: ConsentChanged.event_type,
    }
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    injected = []
    try:
        for topic, event_type in event_types.items():
            for number, (what, body) in enumerate(_bad_bodies(topic, "x", event_type)):
                key = f"bad-{tag}-{topic}-{number}"
                if what == "unknown version":
                    body = body.replace(b'"x"', json.dumps(key).encode(), 1)
                await producer.send_and_wait(
                    topic,
                    body,
                    key=key.encode(),
                    headers=[(EVENT_TYPE_HEADER, event_type.encode())],
                )
                injected.append(Injected(topic, key, what))
    finally:
        await producer.stop()
    return injected


@dataclass(frozen=True)
class DeadLetter:
    key: str
    source: str
    reason: str


async def read_dead_letters(
    bootstrap: str, expected_keys: set[str], timeout: float = 300.0
) -> list[DeadLetter]:
    """The dead-letter topic from the start, until every expected key is there (services
    restarted late in the run may still be catching up, and a fetch from the broker's S3
    log slows as the log grows) or ``timeout`` runs out."""
    consumer = AIOKafkaConsumer(
        Topics.for_prefix("").dead_letters,
        bootstrap_servers=bootstrap,
        group_id=f"faults-reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    headers = {name: value.decode() for name, value in record.headers}
                    letters.append(
                        DeadLetter(
                            (record.key or b"").decode(errors="replace"),
                            headers.get(DEAD_LETTER_SOURCE_HEADER, ""),
                            headers.get(DEAD_LETTER_REASON_HEADER, ""),
                        )
                    )
                    quiet_since = time.monotonic()
            seen = {letter.key for letter in letters}
            if expected_keys <= seen and time.monotonic() - quiet_since > 3.0:
                break
    finally:
        await consumer.stop()
    return letters


async def consumer_lags(bootstrap: str) -> dict[str, int]:
    """Records each consumer group has yet to commit, summed over its partitions: how far
    behind the services' consumers were when the run settled."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        groups = [g for g, _ in await admin.list_consumer_groups() if not g.startswith("faults-")]
    finally:
        await admin.close()
    lags: dict[str, int] = {}
    for group in sorted(groups):
        # A member that never subscribes reads the group's offsets without joining it (the
        # broker here does not answer the admin client's offset request).
        reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
        await reader.start()
        try:
            partitions = [
                TopicPartition(topic, number)
                for topic in sorted(await reader.topics())
                for number in sorted(reader.partitions_for_topic(topic) or ())
            ]
            ends = await reader.end_offsets(partitions)
            lag = 0
            for partition in partitions:
                done = await reader.committed(partition)
                if done is not None:
                    lag += max(ends[partition] - done, 0)
            lags[group] = lag
        finally:
            await reader.stop()
    return lags


def dead_letters_logged(services: list[ServiceProcess]) -> dict[str, Counter[str]]:
    """How many bad events each service says it dead-lettered, by source topic, from its
    log (kept across restarts): set beside what the topic holds, it tells a service that
    never moved an event from an event the topic lost."""
    logged: dict[str, Counter[str]] = {}
    for service in services:
        counts: Counter[str] = Counter()
        if service.log_path.exists():
            for line in service.log_path.read_text(errors="replace").splitlines():
                if "dead-lettered a message from " in line:
                    source = line.split("dead-lettered a message from ", 1)[1].split(":", 1)[0]
                    counts[source] += 1
        logged[service.name] = counts
    return logged


def twilio_signature(url: str, form: dict[str, str], token: str = SANDBOX_AUTH_TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(url, form))


@dataclass(frozen=True)
class WebhookProbe:
    what: str
    status: int
    expected: int


async def malformed_webhooks(
    client: httpx.AsyncClient, messenger_url: str, victims: list[Debtor]
) -> list[WebhookProbe]:
    """Forged and broken provider webhooks; none may change anything."""
    inbound = f"{messenger_url}/webhooks/twilio/inbound"
    status_url = f"{messenger_url}/webhooks/twilio/status"
    probes = []

    async def post(what: str, url: str, expected: int, **kwargs: Any) -> None:
        response = await client.post(url, **kwargs)
        probes.append(WebhookProbe(what, response.status_code, expected))

    for victim in victims:
        sid = "SM" + uuid.uuid4().hex
        form = {"MessageSid": sid, "From": victim.address, "To": "+15005550006", "Body": "STOP"}
        await post(
            "STOP signed with the wrong key",
            inbound,
            403,
            data=form,
            headers={"X-Twilio-Signature": twilio_signature(inbound, form, "not-the-token")},
        )
        await post("STOP without a signature", inbound, 403, data=form)
        # Signed for another URL: a replay against the inbound endpoint.
        await post(
            "STOP signed for another URL",
            inbound,
            403,
            data=form,
            headers={"X-Twilio-Signature": twilio_signature(status_url, form)},
        )
    no_sender = {"MessageSid": "SM" + uuid.uuid4().hex, "Body": "STOP"}
    await post(
        "signed inbound text without a sender",
        inbound,
        400,
        data=no_sender,
        headers={"X-Twilio-Signature": twilio_signature(inbound, no_sender)},
    )
    no_sid = {"MessageStatus": "delivered"}
    await post(
        "signed status callback without a message sid",
        status_url,
        400,
        data=no_sid,
        headers={"X-Twilio-Signature": twilio_signature(status_url, no_sid)},
    )
    await post(
        "garbage body, bad signature",
        inbound,
        403,
        content=b"\x00\xff%%%=&&=",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": "AAAA",
        },
    )
    await post(
        "unsigned SendGrid events that are not JSON",
        f"{messenger_url}/webhooks/sendgrid/events",
        403,
        content=b"[{not json",
        headers={"Content-Type": "application/json"},
    )
    return probes


async def opt_out_by_text(
    client: httpx.AsyncClient, sandbox_url: str, address: str
) -> datetime | None:
    """A debtor texts STOP, delivered signed to the messenger by the stand-in; answers the
    moment the messenger's 2xx was in hand, or None if it was not acknowledged."""
    try:
        response = await client.post(
            sandbox_url + "/_sandbox/twilio/inbound", json={"from": address, "body": "STOP"}
        )
    except httpx.HTTPError:
        return None
    acknowledged = datetime.now(UTC)
    if response.status_code == 200 and 200 <= response.json().get("status", 0) < 300:
        return acknowledged
    return None


class Stores:
    """The services' own tables on the embedded PostgreSQL (which the harness restarts)."""

    def __init__(self, url: str) -> None:
        self._engine: AsyncEngine = create_async_engine(url, poolclass=NullPool)

    async def rows(self, sql: str, attempts: int = 60) -> list[Any]:
        for attempt in range(attempts):
            try:
                async with self._engine.connect() as connection:
                    return list((await connection.execute(text(sql))).all())
            except (OperationalError, DBAPIError, OSError):
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(1.0)
        return []

    async def counts(self, sql: str) -> dict[str, int]:
        return {str(key): int(value) for key, value in await self.rows(sql)}

    async def dispose(self) -> None:
        await self._engine.dispose()
