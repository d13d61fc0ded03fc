"""``parley campaign preview``: its numbers agree with an actual simulated run of the same
campaign through the real scheduler and consent services; its report stands on its own."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from parley_cli.main import app
from parley_cli.preview.simulate import DayTally, simulate
from parley_consent.bootstrap import create_app as create_consent
from parley_consent.domain.evaluation import evaluate_case
from parley_consent.settings import ConsentSettings
from parley_scheduler.bootstrap import create_app as create_scheduler
from parley_shared.settings import KafkaSettings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from tests.scheduler.conftest import FakeTemplateChecker, ManualClock, settings_for
from tests.support.apps import running_app
from tests.support.kafka import wait_for

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "campaigns"
CAMPAIGN = (EXAMPLES / "late-payers.yaml").read_text()
ACCOUNTS = (EXAMPLES / "accounts.csv").read_text()
# Tuesday 13:30 UTC: 08:30 in New York, 05:30 in Los Angeles, 13:30 in London.
START = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)
DAYS = 5


def _preview() -> list[DayTally]:
    return simulate(CAMPAIGN, ACCOUNTS, days=DAYS, start=START, evaluate=evaluate_case).days


def test_the_preview_explains_who_is_contacted_and_why_not() -> None:
    result = simulate(CAMPAIGN, ACCOUNTS, days=DAYS, start=START, evaluate=evaluate_case)
    total = result.totals()
    # tx-001 (Texas) and ny-004 (disputed) are outside the audience; bad-001 was rejected.
    assert (result.accounts, result.in_audience) == (8, 6)
    assert [(p.row, p.field) for p in result.rejected_rows] == [(10, "phone")]
    # ny-003 has no texting consent: the consent rules veto the text, and cite the rule.
    assert total.vetoes_by_rule["US-F-SMS"] == 1
    # ca-002 has paid: no day-3 reminder for it.
    assert total.sends_by_channel == Counter({"sms": 5, "email": 4})
    assert total.proposals == total.approved + total.deferred + total.vetoed
    # Five days from 13:30 UTC touch six UTC dates.
    assert len(result.days) == DAYS + 1


async def test_the_preview_agrees_with_an_actual_simulated_run(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    clock = ManualClock(START)
    consent = create_consent(
        ConsentSettings(kafka=kafka_settings, database_url=database_url), clock=clock
    )
    scheduler = create_scheduler(
        settings_for(kafka_settings, database_url),
        clock=clock,
        template_checker=FakeTemplateChecker(),
    )
    engine = create_async_engine(database_url)

    async def settled() -> bool:
        async with engine.connect() as connection:
            pending = await connection.execute(
                text(
                    "SELECT count(*) FROM scheduler.proposals p LEFT JOIN scheduler.decisions d"
                    " USING (proposal_id) WHERE d.proposal_id IS NULL"
                )
            )
            return pending.scalar_one() == 0

    async with (
        running_app(consent),
        running_app(scheduler),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(scheduler),
            base_url="http://s",
            headers={"X-API-Key": "op-secret-1"},
        ) as api,
    ):
        imported = await api.post(
            "/v1/accounts/imports", content=ACCOUNTS, headers={"Content-Type": "text/csv"}
        )
        assert imported.status_code == 200
        created = await api.post(
            "/v1/campaigns", content=CAMPAIGN, headers={"Content-Type": "application/yaml"}
        )
        assert created.status_code == 201, created.text
        assert (await api.post("/v1/campaigns/late-payers/activate")).status_code == 200
        # The scheduler's clock ticks hourly, like the preview's; after each tick that proposed
        # something, the consent service decides before time moves on.
        while clock.current < START + timedelta(days=DAYS):
            report = (await api.post("/v1/ticks")).json()
            if report["new"] or report["reproposed"]:
                assert await wait_for(settled, timeout=40)
            clock.advance(hours=1)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT (p.event->>'occurred_at')::timestamptz AS at, p.channel,"
                        " d.verdict, d.rule_ids FROM scheduler.proposals p"
                        " JOIN scheduler.decisions d USING (proposal_id)"
                    )
                )
            ).all()
    await engine.dispose()

    actual: dict[date, DayTally] = {}
    for row in rows:
        day = row.at.astimezone(UTC).date()
        tally = actual.setdefault(day, DayTally(day))
        tally.proposals += 1
        if row.verdict == "approved":
            tally.approved += 1
            tally.sends_by_channel[row.channel] += 1
        elif row.verdict == "deferred":
            tally.deferred += 1
            tally.deferrals_by_rule.update(row.rule_ids)
        else:
            tally.vetoed += 1
            tally.vetoes_by_rule.update(row.rule_ids)
    predicted = {tally.day: tally for tally in _preview() if tally.proposals}
    assert predicted == actual


def test_the_command_prints_the_table_and_writes_a_self_contained_html_report(
    tmp_path: Path,
) -> None:
    target = tmp_path / "report.html"
    result = CliRunner().invoke(
        app,
        [
            "campaign",
            "preview",
            str(EXAMPLES / "late-payers.yaml"),
            "--accounts",
            str(EXAMPLES / "accounts.csv"),
            "--days",
            "14",
            "--start",
            "2026-11-24T13:30:00+00:00",
            "--html",
            str(target),
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "US-F-SMS" in result.output and "total" in result.output
    assert "row 10, phone: not a valid phone number" in result.output
    page = target.read_text()
    assert '<img alt="Approved, deferred and vetoed' in page
    assert 'src="data:image/png;base64,' in page
    # Self-contained: nothing is fetched from anywhere when the page is opened.
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "Northwind Utilities has asked us to contact you" in page


def test_an_invalid_campaign_is_refused_with_line_and_field(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(CAMPAIGN.replace("channel: sms", "channel: pager"))
    result = CliRunner().invoke(
        app,
        ["campaign", "preview", str(broken), "--accounts", str(EXAMPLES / "accounts.csv")],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 2
    assert "line 14, steps.0.channel: Input should be 'sms' or 'email'" in result.output
