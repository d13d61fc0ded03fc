"""Real infrastructure for the suite, started from wheels: a Tansu broker per test module and
one embedded PostgreSQL; each test gets fresh topics, consumer groups and its own database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from parley_cli.local.broker import TansuBroker
from parley_cli.local.postgres import EmbeddedPostgres
from parley_shared.settings import KafkaSettings
from parley_shared.topics import ensure_topics
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


@pytest.fixture(scope="module")
def local_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """A broker per test module: it starts in about a second, and a module's tests cannot
    meet the state a whole session leaves in the broker's memory (thousands of topics)."""
    broker = TansuBroker(workdir=tmp_path_factory.mktemp("tansu"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def local_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    postgres = EmbeddedPostgres(workdir=Path(tmp_path_factory.mktemp("postgres")))
    postgres.start()
    yield postgres
    postgres.stop()


@pytest.fixture
async def kafka_settings(local_broker: TansuBroker) -> KafkaSettings:
    """Fresh, explicitly created topics and consumer groups for one test."""
    run = uuid.uuid4().hex[:10]
    settings = KafkaSettings(
        bootstrap_servers=local_broker.bootstrap_servers,
        topic_prefix=f"t{run}.",
        group_prefix=f"g{run}",
        partitions=3,
        session_timeout_ms=3000,
        heartbeat_interval_ms=500,
    )
    await ensure_topics(settings)
    return settings


@pytest.fixture
async def database_url(local_postgres: EmbeddedPostgres) -> AsyncIterator[str]:
    """A fresh, empty database for one test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(local_postgres.url(), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield local_postgres.url(name)
    async with admin.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


def pytest_unconfigure(config: pytest.Config) -> None:
    """One closing line, after pytest's own summary, naming every test that did not pass:
    CI keeps only the end of a long run's output, where the per-test lines may be cut off."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    not_passed = [
        f"{report.nodeid} ({outcome}{'' if outcome == 'failed' else ' at ' + report.when}: "
        f"{_first_line_of_crash(report)})"
        for outcome in ("failed", "error")
        for report in reporter.stats.get(outcome, [])
        if hasattr(report, "nodeid")
    ]
    if not_passed:
        reporter.write_line(f"not passed ({len(not_passed)}): " + "; ".join(not_passed))


def _first_line_of_crash(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    message = str(getattr(crash, "message", "")).strip()
    return message.splitlines()[0][:200] if message else "no message"
