"""A picture of what an SRE would see: the services' /metrics scraped during a run and the
dashboard's key panels drawn from them (matplotlib, no Grafana needed)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Scrape:
    seconds: float
    samples: Mapping[tuple[str, Labels], float]

    def total(self, name: str, **match: str) -> float:
        return sum(
            value
            for (sample, labels), value in self.samples.items()
            if sample == name and all(dict(labels).get(k) == v for k, v in match.items())
        )

    def by_label(self, name: str, label: str, **match: str) -> dict[str, float]:
        grouped: dict[str, float] = defaultdict(float)
        for (sample, labels), value in self.samples.items():
            as_dict = dict(labels)
            if sample == name and all(as_dict.get(k) == v for k, v in match.items()):
                grouped[as_dict.get(label, "")] += value
        return dict(grouped)


@dataclass
class MetricsTimeline:
    """Scrapes of every service, merged per instant (counters summed across services)."""

    scrapes: list[Scrape] = field(default_factory=list)

    @property
    def last(self) -> Scrape:
        return self.scrapes[-1]


def parse_metrics(text: str) -> dict[tuple[str, Labels], float]:
    samples: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            samples[key] = samples.get(key, 0.0) + sample.value
    return samples


async def scrape_all(client: httpx.AsyncClient, base_urls: list[str], started: float) -> Scrape:
    merged: dict[tuple[str, Labels], float] = defaultdict(float)
    for base_url in base_urls:
        with contextlib.suppress(httpx.HTTPError):
            response = await client.get(f"{base_url}/metrics", timeout=5)
            for key, value in parse_metrics(response.text).items():
                merged[key] += value
    return Scrape(time.monotonic() - started, dict(merged))


@contextlib.asynccontextmanager
async def recording(
    base_urls: list[str], interval_seconds: float = 1.0
) -> AsyncIterator[MetricsTimeline]:
    """Scrape the services every ``interval_seconds`` while the block runs, and once at the end."""
    timeline = MetricsTimeline()
    started = time.monotonic()
    async with httpx.AsyncClient() as client:

        async def keep_scraping() -> None:
            while True:
                timeline.scrapes.append(await scrape_all(client, base_urls, started))
                await asyncio.sleep(interval_seconds)

        task = asyncio.create_task(keep_scraping())
        try:
            yield timeline
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            timeline.scrapes.append(await scrape_all(client, base_urls, started))


def _histogram_quantile(buckets: dict[str, float], quantile: float) -> float | None:
    """The bucket bound below which ``quantile`` of observations fall (upper-bound estimate)."""
    bounds = sorted((float(le), count) for le, count in buckets.items())
    if not bounds or bounds[-1][1] == 0:
        return None
    wanted = quantile * bounds[-1][1]
    for bound, count in bounds:
        if count >= wanted:
            return bound
    return bounds[-1][0]


def render_dashboard(timeline: MetricsTimeline, path: Path, title: str = "Parley pipeline") -> Path:
    """Draw the key panels (throughput, decisions by rule, delivery outcomes, latency, lag)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    last = timeline.last
    times = [scrape.seconds for scrape in timeline.scrapes]
    figure, axes = plt.subplots(2, 3, figsize=(16, 8.5), constrained_layout=True)
    figure.suptitle(title, fontsize=15)

    throughput = axes[0][0]
    for label, name, match in (
        ("proposed", "parley_proposals_total", {}),
        ("decided", "parley_decisions_total", {}),
        ("sent", "parley_deliveries_total", {"status": "sent"}),
    ):
        throughput.plot(times, [s.total(name, **match) for s in timeline.scrapes], label=label)
    throughput.set_title("Pipeline throughput (cumulative)")
    throughput.set_xlabel("seconds into the run")
    throughput.legend()

    rules = last.by_label("parley_decision_reasons_total", "rule_id")
    verdicts = last.by_label("parley_decisions_total", "verdict")
    decisions = axes[0][1]
    bars = {f"{v}": n for v, n in sorted(verdicts.items())} | {
        f"  {rule}": n for rule, n in sorted(rules.items(), key=lambda item: -item[1])
    }
    decisions.barh(list(bars), list(bars.values()), color="#4c72b0")
    decisions.invert_yaxis()
    decisions.set_title("Decisions by verdict, and rules cited")

    outcomes = axes[0][2]
    delivered = {
        f"{dict(labels).get('channel')} {dict(labels).get('status')}": value
        for (name, labels), value in last.samples.items()
        if name == "parley_deliveries_total" and value
    }
    outcomes.bar(list(delivered), list(delivered.values()), color="#55a868")
    outcomes.set_title("Delivery outcomes")
    outcomes.tick_params(axis="x", rotation=30)

    latency = axes[1][0]
    for quantile in (0.5, 0.99):
        series = []
        for scrape in timeline.scrapes:
            buckets = scrape.by_label("parley_proposal_to_sent_seconds_bucket", "le")
            series.append(_histogram_quantile(buckets, quantile))
        latency.plot(
            times, [float("nan") if v is None else v for v in series], label=f"p{quantile * 100:g}"
        )
    latency.set_yscale("log")
    latency.set_title("Proposal to sent latency (s, bucket bound)")
    latency.legend()

    lag = axes[1][1]
    groups = sorted(
        {
            dict(labels).get("group", "")
            for (name, labels) in last.samples
            if name.endswith("lag_messages")
        }
    )
    for group in groups:
        lag.plot(
            times,
            [s.total("parley_consumer_lag_messages", group=group) for s in timeline.scrapes],
            label=group.rsplit(".", 1)[-1] or group,
        )
    lag.set_title("Consumer lag (messages)")
    if groups:
        lag.legend()

    errors = axes[1][2]
    error_counts = {
        "dead letters": last.total("parley_dead_letters_total"),
        "provider errors": last.total("parley_provider_errors_total"),
        "webhook rejections": last.total("parley_webhook_rejections_total"),
        "handler exceptions": last.total("faststream_received_processed_messages_exceptions_total"),
    }
    errors.bar(list(error_counts), list(error_counts.values()), color="#c44e52")
    # A clean run has no errors: keep the axis at zero and up rather than centred on it.
    errors.set_ylim(0, max(1.0, *error_counts.values()) * 1.2)
    errors.set_title("Errors")
    errors.tick_params(axis="x", rotation=20)

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
