"""The opt-out race, measured: opt-outs arrive through the real endpoints while approved
reminders are being delivered; no send may start more than 1 s after an acknowledged one.

Everything is real: Tansu, embedded PostgreSQL, the provider stand-ins and the three services
as subprocesses (``LocalStack`` on a simulated clock that puts the debtors inside the lawful
window). ``--reminders`` debtors in New York and London (one in four by email) get a first
notice; while the messenger delivers them, ``--opt-outs`` of them opt out: half by texting
STOP to the messenger's inbound webhook (signed like Twilio, with the stack's auth token),
half on the preference page (GET for the form's CSRF token, POST "stop texts/emails"), each
preference-page visitor from its own loopback address as separate debtors would be.

Each opt-out's acknowledgement is the moment its 2xx arrived here, on the wall clock
(``time.time()``). The stand-ins stamp each accepted message with the wall clock of the
same machine when the request arrived (``received_at``); the services' simulated clock is
not used on either side. Per opted-out address the result is "last send attempt the
stand-in saw minus acknowledgement": negative means nothing was sent after it.

Run: ``uv run --no-sync python bench/optout_race.py --reminders 10000 --opt-outs 1000``.
Exit status 1 when any send started more than ``--limit`` (1 s) after its acknowledgement.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from parley_cli.demo import DEMO_START
from parley_cli.demo_data import (
    EMAIL_CAMPAIGN,
    SMS_CAMPAIGN,
    DemoDebtor,
    accounts_csv,
)
from parley_cli.local.stack import LocalStack, ServiceProcess
from parley_messenger.adapters.preference_links import PreferenceLinks
from parley_messenger.settings import MessengerSettings
from parley_shared.events import Channel, ContactDecision, DeliveryReported, Verdict
from parley_shared.topics import Topics
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from twilio.request_validator import RequestValidator

# The messenger's sandbox defaults, which LocalStack leaves in place: the same values sign
# the webhooks and preference links here as the messenger checks them with.
_DEFAULTS = MessengerSettings()
AUTH_TOKEN = _DEFAULTS.twilio.auth_token.get_secret_value()
ACCOUNT_SID = _DEFAULTS.twilio.account_sid
OUR_NUMBER = _DEFAULTS.twilio.from_number
PREFERENCE_SECRET = _DEFAULTS.preference_link_secret.get_secret_value()
PREFERENCE_MAX_AGE = _DEFAULTS.preference_link_max_age_days * 86_400
FINAL = {"sent", "failed", "expired", "unknown"}
_HIDDEN = re.compile(r'name="(submission|csrf)" value="([^"]+)"')


# --- the stack ---------------------------------------------------------------------------


@dataclass
class RaceStack(LocalStack):
    """LocalStack with the messenger told where it really is and where consent is.

    LocalStack starts services on free ports but leaves the messenger's
    ``public_base_url`` and ``consent_url`` at their 8103/8102 defaults, so the links it
    writes, the URL Twilio signatures are checked against and the preference page's
    consent calls would point at whatever listens there. ``extra_env`` adds settings per
    service (the Event Webhook key for the webhook benchmark, say)."""

    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)

    def _plan_services(self) -> list[ServiceProcess]:
        services = super()._plan_services()
        by_name = {service.name: service for service in services}
        messenger = by_name["messenger"]
        messenger.env.update(
            {
                "PARLEY_PUBLIC_BASE_URL": messenger.url,
                "PARLEY_CONSENT_URL": by_name["consent"].url,
            }
        )
        # The scheduler checks templates with the messenger before a campaign runs.
        by_name["scheduler"].env["PARLEY_MESSENGER_URL"] = messenger.url
        for name, env in self.extra_env.items():
            by_name[name].env.update(env)
        return services


@contextlib.contextmanager
def running_stack(
    workdir: Path | None = None,
    extra_env: dict[str, dict[str, str]] | None = None,
    progress: Callable[[str], None] = print,
) -> Iterator[RaceStack]:
    """A started RaceStack in a temporary directory, stopped and removed afterwards."""
    owned = workdir is None
    directory = workdir or Path(tempfile.mkdtemp(prefix="parley-race-"))
    stack = RaceStack(
        directory,
        simulated_start=DEMO_START,
        progress=progress,
        extra_env=extra_env or {},
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.stop(remove_data=True)
        if owned:
            shutil.rmtree(directory, ignore_errors=True)


# --- the debtors -----------------------------------------------------------------------


def race_debtors(count: int, email_every: int = 4) -> list[DemoDebtor]:
    """Debtors every rule lets us contact now: New York (08:30 at the simulated start) and
    London (13:30), with recent texting consent; every ``email_every``-th by email. Every
    address is distinct, so a STOP from a number concerns one debtor."""
    made = []
    for index in range(count):
        london = index % 10 >= 7
        channel = Channel.EMAIL if index % email_every == email_every - 1 else Channel.SMS
        debtor_id = f"race-{index:07d}"
        if channel is Channel.EMAIL:
            address = f"{debtor_id}@example.com"
        elif london:
            address = f"+4479{index:08d}"
        else:
            address = f"+12125{index:06d}"
        made.append(
            DemoDebtor(
                debtor_id=debtor_id,
                name="Alex",
                channel=channel,
                address=address,
                time_zone="Europe/London" if london else "America/New_York",
                country="GB" if london else "US",
                locale="en",
                balance=f"{100 + index % 900}.00",
                opted_out=False,
                region="" if london else "NY",
                sms_consent_evidence=f"consent-form-{index:07d}",
            )
        )
    return made


# --- following the pipeline ------------------------------------------------------------


@dataclass
class Progress:
    proposed: int = 0
    approved: set[uuid.UUID] = field(default_factory=set)
    not_approved: int = 0
    finished: dict[uuid.UUID, str] = field(default_factory=dict)
    # Approved reminders the messenger's send-time check stopped: the opt-out won the race.
    stopped_by_opt_out: int = 0
    decided: set[uuid.UUID] = field(default_factory=set)

    @property
    def done(self) -> bool:
        return (
            self.proposed > 0
            and len(self.decided) >= self.proposed
            and self.approved <= self.finished.keys()
        )


async def follow(bootstrap: str, progress: Progress, stop: asyncio.Event) -> None:
    """Count decisions and final delivery reports from the topics until ``stop`` is set."""
    topics = Topics.for_prefix("")
    consumer = AIOKafkaConsumer(
        topics.decisions,
        topics.deliveries,
        bootstrap_servers=bootstrap,
        group_id=f"parley-race-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=250, max_records=2000)
            for partition, records in batches.items():
                for record in records:
                    if record.value is None:
                        continue
                    if partition.topic == topics.decisions:
                        decision = ContactDecision.model_validate_json(record.value)
                        if decision.proposal_id in progress.decided:
                            continue
                        progress.decided.add(decision.proposal_id)
                        if decision.verdict is Verdict.APPROVED:
                            progress.approved.add(decision.proposal_id)
                        else:
                            progress.not_approved += 1
                    else:
                        report = DeliveryReported.model_validate_json(record.value)
                        if report.status.value not in FINAL:
                            continue
                        if report.proposal_id not in progress.finished:
                            progress.stopped_by_opt_out += report.error_code == "opted-out"
                        progress.finished.setdefault(report.proposal_id, report.status.value)
    finally:
        await consumer.stop()


async def propose(
    client: httpx.AsyncClient, scheduler_url: str, debtors: list[DemoDebtor], progress: Progress
) -> None:
    for channel, campaign in ((Channel.SMS, SMS_CAMPAIGN), (Channel.EMAIL, EMAIL_CAMPAIGN)):
        accounts = [debtor for debtor in debtors if debtor.channel is channel]
        if not accounts:
            continue
        response = await client.post(
            scheduler_url + "/v1/campaign-runs",
            json={"campaign_yaml": campaign, "accounts_csv": accounts_csv(accounts)},
            timeout=600.0,
        )
        response.raise_for_status()
        progress.proposed += int(response.json()["planned"])


# --- the two opt-out paths ---------------------------------------------------------------


@dataclass
class OptOut:
    debtor: DemoDebtor
    path: str  # "sms_stop" or "preference_page"
    sent_at: float = 0.0
    acknowledged_at: float | None = None  # wall clock, seconds since the epoch
    status: int | None = None
    error: str | None = None
    retries: int = 0


def twilio_inbound_form(sender: str, body: str) -> dict[str, str]:
    sid = "SM" + secrets.token_hex(16)
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "SmsMessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "To": OUR_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }


def twilio_signature(url: str, form: dict[str, str]) -> str:
    return str(RequestValidator(AUTH_TOKEN).compute_signature(url, form))


async def text_stop(client: httpx.AsyncClient, messenger_url: str, opt_out: OptOut) -> None:
    url = messenger_url + "/webhooks/twilio/inbound"
    form = twilio_inbound_form(opt_out.debtor.address, "STOP")
    headers = {"X-Twilio-Signature": twilio_signature(url, form)}
    opt_out.sent_at = time.time()
    # A retry repeats the same MessageSid, as Twilio's would: the messenger answers it once.
    response = await _retrying(opt_out, lambda: client.post(url, data=form, headers=headers))
    _settle(opt_out, response)


async def _retrying(
    opt_out: OptOut, call: Callable[[], Awaitable[httpx.Response]], attempts: int = 3
) -> httpx.Response:
    """Send again when the connection dropped before any answer (a kept-alive connection
    the server closed as it was reused); both endpoints are idempotent."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError):
            if attempt == attempts:
                raise
            opt_out.retries += 1
    raise AssertionError("unreachable")


async def stop_on_preference_page(
    messenger_url: str, links: PreferenceLinks, opt_out: OptOut, source_address: str
) -> None:
    """What a debtor's browser does: open the link in a message, press "stop"."""
    token = links.sign(opt_out.debtor.debtor_id)
    choice = "stop-texts" if opt_out.debtor.channel is Channel.SMS else "stop-emails"
    transport = httpx.AsyncHTTPTransport(local_address=source_address)
    async with httpx.AsyncClient(
        base_url=messenger_url, transport=transport, timeout=60.0
    ) as client:
        opt_out.sent_at = time.time()
        page = await _retrying(opt_out, lambda: client.get(f"/p/{token}"))
        if page.status_code != 200:
            _settle(opt_out, page)
            return
        hidden = dict(_HIDDEN.findall(page.text))
        form = {
            "submission": hidden.get("submission", ""),
            "csrf": hidden.get("csrf", ""),
            "lang": "en",
        }
        # The same submission id again on a retry: consent records the choice once.
        response = await _retrying(opt_out, lambda: client.post(f"/p/{token}/{choice}", data=form))
        _settle(opt_out, response)


def _settle(opt_out: OptOut, response: httpx.Response) -> None:
    now = time.time()
    opt_out.status = response.status_code
    if response.is_success:
        opt_out.acknowledged_at = now
    else:
        opt_out.error = response.text[:200]


def loopback_address(index: int) -> str:
    """A distinct 127/8 source address per visitor (Linux answers on all of 127/8), so the
    page's per-client rate limit sees many debtors, not one bench."""
    return f"127.{10 + index // 62500}.{(index // 250) % 250}.{index % 250 + 1}"


# --- the run ---------------------------------------------------------------------------


@dataclass
class RaceResult:
    reminders: int
    approved: int
    finished: int
    sent_to_stand_ins: int
    opt_outs: list[OptOut]
    deltas: dict[str, float | None]  # address -> last arrival at a stand-in minus ack
    # address -> last time the messenger started a send there (its dispatch log line,
    # written right after its opt-out check, before the provider call) minus ack
    starts: dict[str, float | None]
    sends_after_ack: int
    stopped_by_opt_out: int
    suppressions_recorded: int
    consent_recorded: dict[str, int]
    seconds: float
    limit: float
    judge: str = "arrival"  # which moment a send counts from: "arrival" or "start"

    @property
    def acknowledged(self) -> list[OptOut]:
        return [o for o in self.opt_outs if o.acknowledged_at is not None]

    @property
    def violations(self) -> dict[str, float]:
        judged = self.deltas if self.judge == "arrival" else self.starts
        return {a: d for a, d in judged.items() if d is not None and d > self.limit}

    @property
    def started_late(self) -> dict[str, float]:
        """Sends the messenger began more than ``limit`` after the acknowledgement."""
        return {a: d for a, d in self.starts.items() if d is not None and d > self.limit}

    def summary(self) -> dict[str, float]:
        measured = sorted(d for d in self.deltas.values() if d is not None)
        ack_latency = sorted((o.acknowledged_at or 0.0) - o.sent_at for o in self.acknowledged)
        out: dict[str, float] = {
            "reminders": self.reminders,
            "approved": self.approved,
            "delivery_outcomes": self.finished,
            "accepted_by_stand_ins": self.sent_to_stand_ins,
            "opt_outs_sent": len(self.opt_outs),
            "opt_outs_acknowledged": len(self.acknowledged),
            "opt_outs_sms_stop": sum(o.path == "sms_stop" for o in self.acknowledged),
            "opt_outs_preference_page": sum(o.path == "preference_page" for o in self.acknowledged),
            "opt_out_retries": sum(o.retries for o in self.opt_outs),
            "addresses_with_any_send": len(measured),
            "addresses_never_sent": sum(d is None for d in self.deltas.values()),
            "addresses_sent_after_ack": sum(d > 0 for d in measured),
            "sends_after_ack": self.sends_after_ack,
            "arrived_over_limit": sum(
                d is not None and d > self.limit for d in self.deltas.values()
            ),
            "started_over_limit": len(self.started_late),
            # Sends whose start line was missing from the messenger's log: judged by their
            # arrival only (a later moment, so a stricter test), never silently passed.
            "sends_without_start_line": sum(
                d is not None and self.starts.get(a) is None for a, d in self.deltas.items()
            ),
            "violations_over_limit": len(self.violations),
            "suppressions_recorded": self.suppressions_recorded,
            "consent_opt_outs_recorded_sms_stop": self.consent_recorded.get("sms_stop", 0),
            "consent_opt_outs_recorded_preference_page": self.consent_recorded.get(
                "preference_page", 0
            ),
            "approved_sends_stopped_by_opt_out": self.stopped_by_opt_out,
            "seconds": round(self.seconds, 2),
        }
        started = sorted(d for d in self.starts.values() if d is not None)
        for name, values in (
            ("delta", measured),
            ("start_delta", started),
            ("ack_latency", ack_latency),
        ):
            if values:
                out |= {
                    f"{name}_min_s": round(values[0], 4),
                    f"{name}_p50_s": round(_quantile(values, 0.50), 4),
                    f"{name}_p90_s": round(_quantile(values, 0.90), 4),
                    f"{name}_p99_s": round(_quantile(values, 0.99), 4),
                    f"{name}_max_s": round(values[-1], 4),
                }
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "name": "optout_race",
            "summary": self.summary(),
            "histogram": sorted(round(d, 4) for d in self.deltas.values() if d is not None),
        }


def _quantile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[max(0, int(q * 1000) - 1)]


async def run_race(
    stack: LocalStack,
    reminders: int,
    opt_outs: int,
    *,
    seed: int = 8,
    limit: float = 1.0,
    judge: str = "arrival",
    concurrency: int = 16,
    timeout: float = 900.0,
    say: Callable[[str], None] = print,
) -> RaceResult:
    started = time.monotonic()
    debtors = race_debtors(reminders)
    rng = random.Random(seed)
    chosen = rng.sample(debtors, min(opt_outs, len(debtors)))
    # Half STOP by text (texted debtors only), half on the preference page.
    sms_chosen = [d for d in chosen if d.channel is Channel.SMS]
    stops = sms_chosen[: len(chosen) // 2]
    taken = {d.debtor_id for d in stops}
    planned = [OptOut(d, "sms_stop") for d in stops] + [
        OptOut(d, "preference_page") for d in chosen if d.debtor_id not in taken
    ]
    rng.shuffle(planned)

    messenger = stack.url_of("messenger")
    links = PreferenceLinks(PREFERENCE_SECRET, PREFERENCE_MAX_AGE)
    progress = Progress()
    stop = asyncio.Event()
    follower = asyncio.create_task(follow(stack.broker.bootstrap_servers, progress, stop))
    async with httpx.AsyncClient(timeout=60.0) as client:
        proposing = asyncio.create_task(
            propose(client, stack.url_of("scheduler"), debtors, progress)
        )
        deadline = time.monotonic() + timeout
        # The race starts once deliveries do; the opt-outs are then released in step with
        # the deliveries (the n-th when n/N of the next 90 % are done), so they land while
        # reminders are in flight whatever rate the machine manages.
        while len(progress.finished) < max(1, reminders // 100):
            _check(deadline, proposing, progress, "waiting for the first deliveries")
            await asyncio.sleep(0.1)
        start = len(progress.finished)
        say(f"deliveries under way ({start} done): releasing {len(planned)} opt-outs")
        slots = asyncio.Semaphore(concurrency)

        async def one(opt_out: OptOut, visitor: int) -> None:
            async with slots:
                try:
                    if opt_out.path == "sms_stop":
                        await text_stop(client, messenger, opt_out)
                    else:
                        await stop_on_preference_page(
                            messenger, links, opt_out, loopback_address(visitor)
                        )
                except httpx.HTTPError as error:
                    opt_out.error = f"{type(error).__name__}: {error}"

        tasks = []
        visitors = 0
        for n, opt_out in enumerate(planned):
            while not progress.done:
                all_decided = progress.proposed and len(progress.decided) >= progress.proposed
                total = len(progress.approved) if all_decided else reminders
                if len(progress.finished) >= start + 0.9 * (total - start) * n / len(planned):
                    break
                _check(deadline, proposing, progress, "releasing the opt-outs")
                await asyncio.sleep(0.02)
            tasks.append(asyncio.create_task(one(opt_out, visitors)))
            visitors += opt_out.path == "preference_page"
        await asyncio.gather(*tasks)
        say(
            f"{sum(o.acknowledged_at is not None for o in planned)}/{len(planned)} opt-outs "
            f"acknowledged; {len(progress.finished)}/{len(progress.approved)} approved delivered"
        )
        await proposing
        while not progress.done:
            _check(deadline, proposing, progress, "waiting for every delivery outcome")
            await asyncio.sleep(0.25)
        stop.set()
        await follower
        # Outcomes are reported after the provider answered, so every accepted message is
        # in the stand-in's log by now.
        messages = await client.get(stack.url_of("sandbox") + "/_sandbox/messages")
        messages.raise_for_status()
        accepted = messages.json()
        consent_recorded = await _consent_opt_outs(client, stack.url_of("consent"), planned)
    deltas, after = _deltas(planned, accepted)
    starts = _start_deltas(planned, _dispatch_times(stack.logs / "messenger.log"))
    suppressed = await _suppressions_recorded(stack.postgres.url(), planned)
    return RaceResult(
        reminders=reminders,
        approved=len(progress.approved),
        finished=len(progress.finished),
        sent_to_stand_ins=len(accepted),
        opt_outs=planned,
        deltas=deltas,
        starts=starts,
        sends_after_ack=after,
        stopped_by_opt_out=progress.stopped_by_opt_out,
        suppressions_recorded=suppressed,
        consent_recorded=consent_recorded,
        seconds=time.monotonic() - started,
        limit=limit,
        judge=judge,
    )


def _check(deadline: float, proposing: asyncio.Task[None], progress: Progress, doing: str) -> None:
    if proposing.done() and proposing.exception() is not None:
        raise RuntimeError(f"proposing failed: {proposing.exception()!r}")
    if time.monotonic() > deadline:
        raise TimeoutError(
            f"timed out {doing}: {len(progress.decided)}/{progress.proposed} decided, "
            f"{len(progress.finished)}/{len(progress.approved)} approved delivered"
        )


def _normalise(address: str) -> str:
    return address.strip().lower()


def _deltas(
    opt_outs: list[OptOut], accepted: list[dict[str, Any]]
) -> tuple[dict[str, float | None], int]:
    """Per acknowledged address: last stand-in receive time minus acknowledgement."""
    sends: dict[str, list[float]] = {}
    for message in accepted:
        at = datetime.fromisoformat(message["received_at"]).timestamp()
        for to in message["to"]:
            sends.setdefault(_normalise(to), []).append(at)
    deltas: dict[str, float | None] = {}
    after = 0
    for opt_out in opt_outs:
        if opt_out.acknowledged_at is None:
            continue
        times = sends.get(_normalise(opt_out.debtor.address), [])
        deltas[opt_out.debtor.address] = max(times) - opt_out.acknowledged_at if times else None
        after += sum(t > opt_out.acknowledged_at for t in times)
    return deltas, after


_DISPATCH = re.compile(r"sending proposal \S+ \(debtor (\S+)\) by \w+, attempt \d+")


def _dispatch_times(log_path: Path) -> dict[str, list[float]]:
    """When the messenger began each provider call, per debtor, from its JSON log: the
    line is written after the opt-out check passed, just before the call. ``time`` is
    the process's local time, which this process shares (same machine, same TZ)."""
    times: dict[str, list[float]] = {}
    if not log_path.exists():
        return times
    with log_path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if "sending proposal" not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            found = _DISPATCH.search(str(entry.get("message", "")))
            if found is None:
                continue
            at = datetime.strptime(entry["time"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            times.setdefault(found.group(1), []).append(at)
    return times


def _start_deltas(
    opt_outs: list[OptOut], dispatched: dict[str, list[float]]
) -> dict[str, float | None]:
    """Per acknowledged address: the messenger's last dispatch to it minus acknowledgement
    (every address here belongs to one debtor)."""
    return {
        o.debtor.address: (
            max(dispatched[o.debtor.debtor_id]) - o.acknowledged_at
            if dispatched.get(o.debtor.debtor_id)
            else None
        )
        for o in opt_outs
        if o.acknowledged_at is not None
    }


def suppression_scope(opt_out: OptOut) -> str:
    """The messenger's send-time scope each path stores (see domain/suppression.py)."""
    debtor = opt_out.debtor
    if opt_out.path == "sms_stop":
        return f"address:sms:{debtor.address}"
    return f"debtor:{debtor.debtor_id}:{debtor.channel.value}"


async def _suppressions_recorded(database_url: str, opt_outs: list[OptOut]) -> int:
    wanted = [suppression_scope(o) for o in opt_outs if o.acknowledged_at is not None]
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT count(*) FROM messenger.suppressions "
                    "WHERE suppressed AND scope = ANY(:scopes)"
                ),
                {"scopes": wanted},
            )
            return int(rows.scalar_one())
    finally:
        await engine.dispose()


async def _consent_opt_outs(
    client: httpx.AsyncClient, consent_url: str, opt_outs: list[OptOut]
) -> dict[str, int]:
    """How many acknowledged opt-outs, by path, the consent service's own store lists."""
    slots = asyncio.Semaphore(16)

    async def has_opt_out(opt_out: OptOut) -> bool:
        async with slots:
            response = await client.get(f"{consent_url}/v1/debtors/{opt_out.debtor.debtor_id}")
        return response.status_code == 200 and bool(response.json().get("opt_outs"))

    acknowledged = [o for o in opt_outs if o.acknowledged_at is not None]
    found = await asyncio.gather(*(has_opt_out(o) for o in acknowledged))
    counts: dict[str, int] = {}
    for opt_out, recorded in zip(acknowledged, found, strict=True):
        counts[opt_out.path] = counts.get(opt_out.path, 0) + recorded
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--opt-outs", type=int, default=1_000)
    parser.add_argument("--limit", type=float, default=1.0, help="seconds allowed (invariant 2)")
    parser.add_argument("--concurrency", type=int, default=16, help="opt-outs in flight at once")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument(
        "--judge",
        choices=("arrival", "start"),
        default="arrival",
        help="fail on sends that arrived at a stand-in (default) or that the messenger "
        "started more than --limit after the acknowledgement",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds for the run")
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--workdir", type=Path, help="keep logs here (default: a temp dir)")
    args = parser.parse_args()

    def say(line: str) -> None:
        print(f"[race] {line}", file=sys.stderr, flush=True)

    with running_stack(args.workdir, progress=say) as stack:
        result = asyncio.run(
            run_race(
                stack,
                args.reminders,
                args.opt_outs,
                seed=args.seed,
                limit=args.limit,
                judge=args.judge,
                concurrency=args.concurrency,
                timeout=args.timeout,
                say=say,
            )
        )
    report = result.as_json()
    for name, value in report["summary"].items():
        print(f"{name:>28}: {value}")
    failed = [o for o in result.opt_outs if o.acknowledged_at is None]
    for opt_out in failed[:5]:
        print(f"not acknowledged: {opt_out.path} {opt_out.status} {opt_out.error}")
    by_address = {o.debtor.address: o for o in result.opt_outs}
    for address, delta in sorted(result.violations.items(), key=lambda i: -i[1])[:10]:
        # Debtor ids, not addresses: personal data stays out of the output.
        late = by_address[address]
        print(
            f"VIOLATION: debtor {late.debtor.debtor_id} ({late.path}): a send {delta:.3f} s "
            f"after the opt-out was acknowledged ({result.judge}); the messenger started it "
            f"{result.starts.get(address) or float('nan'):.3f} s after"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    sys.exit(1 if result.violations or failed else 0)


if __name__ == "__main__":
    main()
