"""``parley consent evaluate`` and ``parley consent explain``, in-process and against a
consent service served over HTTP (real broker, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from parley_cli.main import app
from parley_consent.bootstrap import create_app
from parley_consent.settings import ConsentSettings
from parley_shared.events import ConsentChanged, ConsentChangeKind, ConsentSource, HoldKind
from parley_shared.settings import KafkaSettings
from typer.testing import CliRunner

from tests.consent.fakes import FixedClock
from tests.support.apps import serve_http

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "consent"
MASSACHUSETTS = EXAMPLES / "massachusetts-third-text-in-a-week.json"
NOON_EASTERN = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)

runner = CliRunner()


def test_evaluate_local_prints_the_decision_json() -> None:
    result = runner.invoke(app, ["consent", "evaluate", "--local", str(MASSACHUSETTS)])
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)
    assert decision["verdict"] == "deferred"
    assert [reason["rule_id"] for reason in decision["reasons"]] == ["US-MA"]


def test_evaluate_reads_the_case_from_stdin() -> None:
    result = runner.invoke(
        app, ["consent", "evaluate", "--local", "-"], input=MASSACHUSETTS.read_text()
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["defer_until"] == "2026-06-15T12:00:00Z"


def test_an_invalid_case_exits_2_naming_the_field() -> None:
    case = json.loads(MASSACHUSETTS.read_text())
    case["now"] = "2026-06-12T12:00:00"  # no offset
    result = runner.invoke(app, ["consent", "evaluate", "--local", "-"], input=json.dumps(case))
    assert result.exit_code == 2
    assert "now" in result.stderr and "time zone" in result.stderr
    assert result.stdout == ""


def test_a_file_that_is_not_json_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "case.json"
    broken.write_text("{not json")
    result = runner.invoke(app, ["consent", "evaluate", "--local", str(broken)])
    assert result.exit_code == 2
    assert "not JSON" in result.stderr


async def test_evaluate_and_explain_against_the_running_service(
    kafka_settings: KafkaSettings, database_url: str
) -> None:
    settings = ConsentSettings(kafka=kafka_settings, database_url=database_url)
    service = create_app(settings, clock=FixedClock(NOON_EASTERN))
    async with serve_http(service) as url:
        env = {"PARLEY_CONSENT_URL": url}
        evaluated = await asyncio.to_thread(
            runner.invoke, app, ["consent", "evaluate", str(MASSACHUSETTS)], env=env
        )
        assert evaluated.exit_code == 0, evaluated.output
        assert json.loads(evaluated.stdout)["verdict"] == "deferred"

        bad = json.loads(MASSACHUSETTS.read_text())
        bad["proposal"]["channel"] = "pigeon"
        refused = await asyncio.to_thread(
            runner.invoke, app, ["consent", "evaluate", "-"], input=json.dumps(bad), env=env
        )
        assert refused.exit_code == 2
        assert "proposal.channel" in refused.stderr

        hold = ConsentChanged(
            debtor_id="d-77",
            occurred_at=NOON_EASTERN - timedelta(days=1),
            kind=ConsentChangeKind.HOLD,
            hold_kind=HoldKind.DISPUTE,
            source=ConsentSource.OPERATOR,
            evidence="letter-5",
        )
        async with httpx.AsyncClient(base_url=url) as client:
            posted = await client.post(
                "/v1/consent-changes", json=json.loads(hold.model_dump_json())
            )
        assert posted.status_code == 201
        explained = await asyncio.to_thread(
            runner.invoke, app, ["consent", "explain", "d-77"], env=env
        )
        assert explained.exit_code == 0, explained.output
        assert "hold: dispute (in force) until no end date" in explained.stdout
        as_json = await asyncio.to_thread(
            runner.invoke, app, ["consent", "explain", "d-77", "--json"], env=env
        )
        assert json.loads(as_json.stdout)["holds"][0]["kind"] == "dispute"


def test_an_unreachable_service_exits_1_with_the_url() -> None:
    result = runner.invoke(
        app,
        ["consent", "explain", "d-1", "--url", "http://127.0.0.1:9"],
    )
    assert result.exit_code == 1
    assert "http://127.0.0.1:9" in result.stderr
