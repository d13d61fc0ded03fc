"""The dashboard picture is drawn from real /metrics text, as the services export it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from parley_cli.dashboard import (
    MetricsTimeline,
    Scrape,
    _histogram_quantile,
    parse_metrics,
    render_dashboard,
)
from parley_shared.events import Channel, DeliveryReported, DeliveryStatus
from parley_shared.metrics import ServiceMetrics
from prometheus_client import generate_latest


def _sent(seconds_waited: float) -> DeliveryReported:
    return DeliveryReported(
        debtor_id="d",
        proposal_id=uuid.uuid4(),
        channel=Channel.SMS,
        status=DeliveryStatus.SENT,
        provider="twilio",
        proposed_at=datetime.now(UTC) - timedelta(seconds=seconds_waited),
    )


def test_parsed_scrapes_sum_counters_and_read_histograms() -> None:
    metrics = ServiceMetrics()
    for waited in (0.2, 0.3, 0.4, 40.0):
        metrics.record_published(_sent(waited))
    scrape = Scrape(1.0, parse_metrics(generate_latest(metrics.registry).decode()))
    assert scrape.total("parley_deliveries_total", status="sent") == 4
    buckets = scrape.by_label("parley_proposal_to_sent_seconds_bucket", "le", channel="sms")
    assert _histogram_quantile(buckets, 0.5) == 0.5
    assert _histogram_quantile(buckets, 0.99) == 60


def test_the_picture_is_a_png(tmp_path: Path) -> None:
    metrics = ServiceMetrics()
    timeline = MetricsTimeline()
    for second in range(3):
        metrics.record_published(_sent(0.1 + second))
        timeline.scrapes.append(
            Scrape(float(second), parse_metrics(generate_latest(metrics.registry).decode()))
        )
    picture = render_dashboard(timeline, tmp_path / "dashboard.png")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert picture.stat().st_size > 20_000
