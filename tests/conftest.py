"""Session-wide real infrastructure for the suite: a Tansu broker and an embedded PostgreSQL,
started from wheels; each test gets fresh topics, consumer groups and its own database."""

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


@pytest.fixture(scope="session")
def local_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
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
