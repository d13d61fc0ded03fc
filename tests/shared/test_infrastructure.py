"""The embedded default really starts: the broker speaks Kafka and PostgreSQL answers."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from parley_messenger.bootstrap import MIGRATIONS_DIR as MESSENGER_MIGRATIONS
from parley_shared.database import create_engine
from parley_shared.settings import KafkaSettings
from parley_shared.topics import Topics
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.kafka import payloads, produce_raw, read_topic


async def test_topics_exist_with_the_configured_partition_count(
    kafka_settings: KafkaSettings,
) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_settings.bootstrap_servers)
    await admin.start()
    try:
        names = Topics.for_prefix(kafka_settings.topic_prefix).all()
        described = await admin.describe_topics(list(names))
    finally:
        await admin.close()
    counts = {topic["topic"]: len(topic["partitions"]) for topic in described}
    assert counts == dict.fromkeys(names, kafka_settings.partitions)


async def test_a_message_goes_through_the_broker(kafka_settings: KafkaSettings) -> None:
    topic = Topics.for_prefix(kafka_settings.topic_prefix).proposals
    await produce_raw(kafka_settings, topic, [b'{"hello": "world"}'], key=b"d-1")
    records = await read_topic(kafka_settings, topic, at_least=1)
    assert payloads(records) == [{"hello": "world"}]


async def test_each_test_gets_its_own_database(database_url: str) -> None:
    engine = create_async_engine(database_url)
    async with engine.connect() as connection:
        tables = await connection.execute(
            text("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
        )
        assert tables.scalar_one() == 0
    await engine.dispose()


async def _backend_of_a_pooled_connection_killed_while_idle(
    database_url: str, ping_idle_for_seconds: float
) -> tuple[int, int]:
    """Use a pooled connection, have PostgreSQL end its backend while it sits in the pool
    (as a server restart would), wait past 0.3 s, then use the pool again: the backend
    pids before and after."""
    engine = create_engine(database_url, ping_idle_for_seconds=ping_idle_for_seconds)
    admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            before = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with admin.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": before})
        await asyncio.sleep(0.3)
        async with engine.connect() as connection:
            after = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        return before, after
    finally:
        await engine.dispose()
        await admin.dispose()


async def test_a_connection_that_died_while_idle_is_replaced_before_use(
    database_url: str,
) -> None:
    before, after = await _backend_of_a_pooled_connection_killed_while_idle(
        database_url, ping_idle_for_seconds=0.2
    )
    assert after != before


async def test_a_connection_used_moments_ago_is_not_checked_again(database_url: str) -> None:
    """The other side of the same setting: within the idle time the pool trusts the
    connection, so the dead one is only found by the statement (which then fails and
    the caller's retry or redelivery takes over). This is what makes the check above the
    ping's doing, not the pool's."""
    with pytest.raises(DBAPIError):
        await _backend_of_a_pooled_connection_killed_while_idle(
            database_url, ping_idle_for_seconds=60
        )


async def test_replicas_starting_together_migrate_once_without_failing(
    database_url: str, tmp_path: Path
) -> None:
    """Replicas started at once each run their migrations on an empty database, in
    processes of their own (as Alembic needs): every one must succeed, and the schema
    end at head. A barrier makes them start migrating in the same instant."""
    count = 4
    script = (
        "import asyncio, pathlib, sys, time\n"
        "from parley_messenger.bootstrap import MIGRATIONS_DIR\n"
        "from parley_shared.database import upgrade_to_head\n"
        "barrier = pathlib.Path(sys.argv[2])\n"
        "(barrier / sys.argv[3]).touch()\n"
        "while len(list(barrier.iterdir())) < int(sys.argv[4]):\n"
        "    time.sleep(0.001)\n"
        "asyncio.run(upgrade_to_head(MIGRATIONS_DIR, sys.argv[1]))\n"
    )
    replicas = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            database_url,
            str(tmp_path),
            f"replica-{number}",
            str(count),
            stderr=asyncio.subprocess.PIPE,
        )
        for number in range(count)
    ]
    outcomes = await asyncio.gather(*(replica.communicate() for replica in replicas))
    failures = [
        stderr.decode(errors="replace")[-2000:]
        for replica, (_, stderr) in zip(replicas, outcomes, strict=True)
        if replica.returncode != 0
    ]
    assert failures == []
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            versions = (
                await connection.execute(text("SELECT version_num FROM messenger.alembic_version"))
            ).all()
    finally:
        await engine.dispose()
    config = Config()
    config.set_main_option("script_location", str(MESSENGER_MIGRATIONS))
    assert [row.version_num for row in versions] == ScriptDirectory.from_config(config).get_heads()
