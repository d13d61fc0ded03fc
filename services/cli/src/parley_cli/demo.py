"""The demo: a sample campaign through the whole local stack, summarised from the event stream."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer
from parley_shared.events import (
    Channel,
    ConsentChanged,
    ConsentChangeKind,
    ConsentSource,
    ContactDecision,
    DeliveryReported,
    DeliveryStatus,
    Verdict,
)
from parley_shared.topics import Topics

from parley_cli.dashboard import recording, render_dashboard
from parley_cli.demo_data import EMAIL_CAMPAIGN, SMS_CAMPAIGN, DemoDebtor, accounts_csv
from parley_cli.local.broker import LocalServiceError
from parley_cli.local.stack import LocalStack

# A Tuesday at 13:30 UTC: 08:30 in New York and 13:30 in London (inside the window), but
# 07:30 in Chicago, 06:30 in Denver and 05:30 in Los Angeles (outside it), whenever the
# demo is actually run.
DEMO_START = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)
FINAL_STATUSES = {
    DeliveryStatus.SENT,
    DeliveryStatus.FAILED,
    DeliveryStatus.EXPIRED,
    DeliveryStatus.UNKNOWN,
}


@dataclass
class DemoSummary:
    debtors: int = 0
    opted_out: int = 0
    proposed: int = 0
    decided: int = 0
    approved: int = 0
    deferred: int = 0
    vetoed_by_rule: Counter[str] = field(default_factory=Counter)
    deferred_by_rule: Counter[str] = field(default_factory=Counter)
    outcomes_by_channel: Counter[tuple[str, str]] = field(default_factory=Counter)
    at_stand_ins: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    dashboard: Path | None = None

    @property
    def vetoed(self) -> int:
        return self.decided - self.approved - self.deferred

    @property
    def delivered(self) -> int:
        return sum(self.outcomes_by_channel.values())


Watcher = Callable[[DemoSummary], None]


async def run_demo(
    stack: LocalStack, debtors: list[DemoDebtor], watch: Watcher, timeout: float = 150.0
) -> DemoSummary:
    started = time.monotonic()
    summary = DemoSummary(debtors=len(debtors))
    services = [stack.url_of(name) for name in ("scheduler", "consent", "messenger")]
    async with (
        recording(services, interval_seconds=0.5) as timeline,
        httpx.AsyncClient(timeout=60.0) as client,
    ):
        summary.opted_out = await _seed_opt_outs(client, stack.url_of("consent"), debtors)
        stack.progress(f"recorded {summary.opted_out} opt-outs with the consent service")
        for channel, campaign in ((Channel.SMS, SMS_CAMPAIGN), (Channel.EMAIL, EMAIL_CAMPAIGN)):
            accounts = [debtor for debtor in debtors if debtor.channel is channel]
            response = await client.post(
                stack.url_of("scheduler") + "/v1/campaign-runs",
                json={"campaign_yaml": campaign, "accounts_csv": accounts_csv(accounts)},
            )
            _raise_for(response, "scheduler")
            report = response.json()
            summary.proposed += report["planned"]
            stack.progress(
                f"scheduler proposed {report['planned']} {channel.value} reminders "
                f"({report['published']} published)"
            )
        await _follow_events(stack, summary, watch, timeout)
        messages = await client.get(stack.url_of("sandbox") + "/_sandbox/messages")
        _raise_for(messages, "sandbox")
        summary.at_stand_ins = Counter(message["provider"] for message in messages.json())
    summary.seconds = time.monotonic() - started
    # What an SRE's dashboard would have shown during the run, drawn from the scrapes.
    summary.dashboard = render_dashboard(
        timeline, stack.workdir / "dashboard.png", title=f"Parley demo: {len(debtors)} debtors"
    )
    return summary


async def _seed_opt_outs(
    client: httpx.AsyncClient, consent_url: str, debtors: list[DemoDebtor]
) -> int:
    opted_out = [debtor for debtor in debtors if debtor.opted_out]
    for debtor in opted_out:
        change = ConsentChanged(
            debtor_id=debtor.debtor_id,
            kind=ConsentChangeKind.OPT_OUT,
            channel=debtor.channel,
            address=debtor.address,
            source=ConsentSource.IMPORT,
            evidence=f"demo-import-{uuid.uuid5(uuid.NAMESPACE_URL, debtor.debtor_id)}",
        )
        response = await client.post(
            consent_url + "/v1/consent-changes", json=change.model_dump(mode="json")
        )
        _raise_for(response, "consent")
    return len(opted_out)


async def _follow_events(
    stack: LocalStack, summary: DemoSummary, watch: Watcher, timeout: float
) -> None:
    """Count decisions and delivery reports from the topics until every proposal is decided
    and every approved one has a final delivery outcome."""
    topics = Topics.for_prefix("")
    consumer = AIOKafkaConsumer(
        topics.decisions,
        topics.deliveries,
        bootstrap_servers=stack.broker.bootstrap_servers,
        group_id=f"parley-demo-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    decided: set[uuid.UUID] = set()
    finished: set[uuid.UUID] = set()
    deadline = time.monotonic() + timeout
    try:
        while summary.decided < summary.proposed or summary.delivered < summary.approved:
            if time.monotonic() > deadline:
                raise LocalServiceError(
                    f"timed out: {summary.decided}/{summary.proposed} decided, "
                    f"{summary.delivered}/{summary.approved} delivered; "
                    f"see the service logs in {stack.logs}"
                )
            batches = await consumer.getmany(timeout_ms=250)
            for partition, records in batches.items():
                for record in records:
                    if record.value is None:
                        continue
                    if partition.topic == topics.decisions:
                        _count_decision(
                            ContactDecision.model_validate_json(record.value), decided, summary
                        )
                    else:
                        _count_delivery(
                            DeliveryReported.model_validate_json(record.value), finished, summary
                        )
            watch(summary)
    finally:
        await consumer.stop()


def _count_decision(decision: ContactDecision, seen: set[uuid.UUID], summary: DemoSummary) -> None:
    if decision.proposal_id in seen:
        return
    seen.add(decision.proposal_id)
    summary.decided += 1
    rules = [reason.rule_id for reason in decision.reasons]
    if decision.verdict is Verdict.APPROVED:
        summary.approved += 1
    elif decision.verdict is Verdict.DEFERRED:
        summary.deferred += 1
        summary.deferred_by_rule.update(rules)
    else:
        summary.vetoed_by_rule.update(rules)


def _count_delivery(report: DeliveryReported, seen: set[uuid.UUID], summary: DemoSummary) -> None:
    if report.status not in FINAL_STATUSES or report.proposal_id in seen:
        return
    seen.add(report.proposal_id)
    summary.outcomes_by_channel[(report.channel.value, report.status.value)] += 1


def _raise_for(response: httpx.Response, part: str) -> None:
    if response.is_error:
        raise LocalServiceError(
            f"{part} answered {response.status_code} to {response.request.method} "
            f"{response.request.url.path}: {response.text[:500]}"
        )


def run_demo_sync(stack: LocalStack, debtors: list[DemoDebtor], watch: Watcher) -> DemoSummary:
    return asyncio.run(run_demo(stack, debtors, watch))
