"""The least CPU one SMS reminder can cost on this machine, against the CPU the 25 %
end-to-end target leaves it: is the target reachable here at all?

Two parts every SMS reminder needs, each measured at its cheapest:

- **Kafka.** A reminder is three records (proposal, decision, delivery report) read five
  times (consent and messenger once each, scheduler and consent the report). The raw
  pass-through moves two records and reads two per message, so a reminder costs at least
  1.5 times the raw pass-through's CPU per message (broker plus clients, measured here).
- **The event contract.** Each of the three events is written once and read (validated
  with the shared pydantic models) by each of its five readers.
- **One Twilio request.** The messenger's own ``TwilioSender`` (the twilio SDK over the
  pooled aiohttp session, tracing off) against the cheapest possible provider: a bare
  asyncio server in its own process that answers every request with a fixed, minimal
  Message resource. Client and server CPU are both counted. A bare aiohttp POST is
  measured too, to show what the SDK itself adds.

Everything else a reminder costs (decide, templates, the send ledger in PostgreSQL,
tracing, the scheduler's outbox) is left out, so the sum is a floor. Twilio's Messages
API takes one recipient per request; SendGrid's mail send takes up to 1,000, so
the floor for the benchmark's mix (the share of texts from ``make_debtors``) charges an
email its Kafka records and events alone. The budget is the machine's cores divided by
the target rate (25 % of the raw pass-through's wall rate, measured in the same run); if
the mix's floor exceeds it, no design that sends each text through the twilio SDK meets
the target on this machine.

Run: ``uv run --no-sync python bench/throughput_floor.py [--messages 100000] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import psutil
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from parley_cli.local.broker import TansuBroker
from parley_cli.local.ports import free_port, port_answers, wait_until
from parley_cli.local.synthetic import make_debtors
from parley_messenger.adapters.twilio_client import TwilioSender
from parley_messenger.domain.model import OutboundMessage
from parley_messenger.settings import TwilioSettings
from parley_shared.events import (
    AddressFacts,
    AddressProvenance,
    Channel,
    ContactDecision,
    DeliveryReported,
    DeliveryStatus,
    ReminderProposed,
    Verdict,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kafka_baseline import raw_pass_through

TARGET_RATIO = 0.25
# Records a reminder's path moves through the broker relative to the raw pass-through's
# two produced and two read per message: 3 produced (1.5 times), 5 read (2.5); the smaller.
KAFKA_WORK_PER_REMINDER = 1.5


def sms_share() -> float:
    """Texts among the end-to-end benchmark's reminders (it imports ``make_debtors``)."""
    debtors = make_debtors(10_000, "floor")
    return sum(debtor.channel == "sms" for debtor in debtors) / len(debtors)


# The fewest fields that still make a valid Message resource for the SDK: a bigger answer
# would only cost the client more, and this is a floor.
MINIMAL_MESSAGE = json.dumps({"sid": "SM" + "0" * 32, "status": "queued"}).encode()
CANNED_ANSWER = (
    b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
    + f"Content-Length: {len(MINIMAL_MESSAGE)}\r\n\r\n".encode()
    + MINIMAL_MESSAGE
)


async def _answer_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            writer.write(CANNED_ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


async def serve_canned(port: int) -> None:
    server = await asyncio.start_server(_answer_forever, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


@dataclass(frozen=True)
class Floor:
    cores: int
    raw_messages: int
    raw_per_second: float
    raw_cpu_ms_per_message: float  # broker + clients, both hops
    calls: int
    concurrency: int
    sdk_client_cpu_ms: float
    bare_post_client_cpu_ms: float
    provider_server_cpu_ms: float
    kafka_ms_per_reminder: float
    contract_ms_per_reminder: float  # 3 events written, 5 reads validated
    floor_ms_per_reminder: float  # one SMS reminder
    sms_share: float
    mix_floor_ms_per_reminder: float  # the benchmark's mix, emails costing no request
    budget_ms_per_reminder: float
    best_possible_ratio: float  # of the mix, if nothing else cost CPU

    @property
    def target_reachable(self) -> bool:
        return self.mix_floor_ms_per_reminder <= self.budget_ms_per_reminder


async def measure_raw(messages: int) -> tuple[float, float]:
    """Raw pass-through: wall rate, and CPU ms per message of the broker plus this process."""
    with tempfile.TemporaryDirectory(prefix="parley-floor-") as workdir:
        broker = TansuBroker(workdir=Path(workdir) / "tansu")
        broker.start()
        try:
            assert broker.pid is not None
            broker_process = psutil.Process(broker.pid)
            # A short first run: topic metadata and connections, not the broker at work.
            await raw_pass_through(broker.bootstrap_servers, min(messages, 2000))
            broker_before, own_before = _cpu_seconds(broker_process), time.process_time()
            rate = await raw_pass_through(broker.bootstrap_servers, messages)
            spent = _cpu_seconds(broker_process) - broker_before + time.process_time() - own_before
        finally:
            broker.stop()
    return rate.per_second, 1000 * spent / messages


def measure_contract(rounds: int = 3000) -> float:
    """CPU ms per reminder to write its three events and validate its five reads."""
    proposal = ReminderProposed(
        debtor_id="floor-1",
        proposal_id=uuid.uuid4(),
        campaign_id="floor",
        campaign_version=1,
        step=0,
        channel=Channel.SMS,
        address="+14155550100",
        time_zone="America/New_York",
        template="first-notice",
        variables={"name": "Ada", "balance": "$10.00", "creditor": "Bank", "reference": "R-1"},
        address_facts=AddressFacts(provenance=AddressProvenance.CONSUMER_USED),
    )
    decision = ContactDecision(
        debtor_id=proposal.debtor_id,
        proposal_id=proposal.proposal_id,
        verdict=Verdict.APPROVED,
        lawful_until=datetime.now(UTC) + timedelta(hours=1),
        rule_set_version="floor",
        proposal=proposal,
    )
    report = DeliveryReported(
        debtor_id=proposal.debtor_id,
        proposal_id=proposal.proposal_id,
        channel=Channel.SMS,
        status=DeliveryStatus.SENT,
        provider="twilio",
        provider_message_id="SM" + "0" * 32,
        proposed_at=proposal.occurred_at,
    )
    reads = ((ReminderProposed, proposal, 1), (ContactDecision, decision, 2))
    reads += ((DeliveryReported, report, 2),)
    before = time.process_time()
    for _ in range(rounds):
        for model, event, readers in reads:
            written = event.model_dump_json().encode()
            for _ in range(readers):
                model.model_validate_json(written)
    return 1000 * (time.process_time() - before) / rounds


async def _timed_calls(calls: int, concurrency: int, send: Callable[[], Awaitable[None]]) -> float:
    """CPU ms per call of this process for ``calls`` awaited ``send()``s, ``concurrency`` at
    a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await send()

    await asyncio.gather(*(one() for _ in range(min(calls, 500))))  # connections, caches
    before = time.process_time()
    await asyncio.gather(*(one() for _ in range(calls)))
    return 1000 * (time.process_time() - before) / calls


async def measure_provider_call(url: str, calls: int, concurrency: int) -> tuple[float, float]:
    """Client CPU ms per SMS through the messenger's TwilioSender, and per bare POST."""
    # Spans that are never sampled: tracing is one of the costs the floor counts as free.
    unsampled = TracerProvider(sampler=ALWAYS_OFF)
    sender = TwilioSender(
        TwilioSettings(base_url=url), unsampled, timeout=10, connections=concurrency
    )
    message = OutboundMessage(
        proposal_id=uuid.uuid4(),
        debtor_id="floor",
        channel=Channel.SMS,
        to="+14155550100",
        body="Ada, a reminder from Bank about R-1: $10.00 is due. Reply STOP to opt out.",
    )

    async def send_sms() -> None:
        outcome = await sender.send(message)
        if outcome.provider_message_id is None:
            raise RuntimeError(f"the canned provider did not accept: {outcome}")

    try:
        sdk = await _timed_calls(calls, concurrency, send_sms)
    finally:
        await sender.close()
    form = {"To": "+14155550100", "From": "+15005550006", "Body": "Ada, a reminder."}
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def bare_post() -> None:
            async with session.post(f"{url}/2010-04-01/Messages.json", data=form) as answer:
                await answer.read()

        bare = await _timed_calls(calls, concurrency, bare_post)
    return sdk, bare


def measure(
    messages: int, calls: int, concurrency: int, say: Callable[[str], None] = print
) -> Floor:
    cores = psutil.cpu_count() or 1
    say(f"raw pass-through of {messages:,} messages ...")
    raw_rate, raw_cpu = asyncio.run(measure_raw(messages))
    say(f"  {raw_rate:,.0f} msg/s, {raw_cpu:.3f} ms CPU per message (broker + clients)")
    port = free_port()
    server = psutil.Popen([sys.executable, __file__, "--serve", str(port)], env=os.environ.copy())
    try:
        if not wait_until(lambda: port_answers(port), timeout=30):
            raise RuntimeError(f"the canned provider did not answer on port {port} in 30 s")
        server_before = _cpu_seconds(server)
        say(f"{calls:,} SMS through TwilioSender, then {calls:,} bare POSTs ...")
        sdk, bare = asyncio.run(
            measure_provider_call(f"http://127.0.0.1:{port}", calls, concurrency)
        )
        server_cpu = 1000 * (_cpu_seconds(server) - server_before) / (2 * calls)
    finally:
        server.terminate()
        server.wait(timeout=10)
    kafka = KAFKA_WORK_PER_REMINDER * raw_cpu
    contract = measure_contract()
    floor = kafka + contract + sdk + server_cpu
    # Emails could share one SendGrid request (up to 1,000 recipients), so the mix's floor
    # charges them nothing beyond their Kafka records and events.
    texts = sms_share()
    mix_floor = texts * floor + (1 - texts) * (kafka + contract)
    budget = 1000 * cores / (TARGET_RATIO * raw_rate)
    result = Floor(
        cores=cores,
        raw_messages=messages,
        raw_per_second=raw_rate,
        raw_cpu_ms_per_message=raw_cpu,
        calls=calls,
        concurrency=concurrency,
        sdk_client_cpu_ms=sdk,
        bare_post_client_cpu_ms=bare,
        provider_server_cpu_ms=server_cpu,
        kafka_ms_per_reminder=kafka,
        contract_ms_per_reminder=contract,
        floor_ms_per_reminder=floor,
        sms_share=texts,
        mix_floor_ms_per_reminder=mix_floor,
        budget_ms_per_reminder=budget,
        best_possible_ratio=1000 * cores / mix_floor / raw_rate,
    )
    say(
        f"  events {contract:.3f} ms, SDK call {sdk:.3f} ms client (bare POST {bare:.3f}),"
        f" provider {server_cpu:.3f} ms;"
        f" floor {floor:.3f} ms per SMS reminder, {mix_floor:.3f} ms for the mix"
        f" ({texts:.0%} texts), against a budget of {budget:.3f} ms:"
        f" at best {result.best_possible_ratio:.1%} of the raw pass-through"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000, help="raw pass-through size")
    parser.add_argument("--calls", type=int, default=5_000, help="provider requests to time")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        asyncio.run(serve_canned(arguments.serve))
        return
    result = measure(arguments.messages, arguments.calls, arguments.concurrency)
    summary = asdict(result) | {"target_reachable": result.target_reachable}
    if arguments.json:
        arguments.json.write_text(json.dumps({"summary": summary}, indent=1))


if __name__ == "__main__":
    main()
