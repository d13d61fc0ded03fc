"""PostgreSQL plumbing: engines, per-service schemas and Alembic migrations.

Each service owns one PostgreSQL schema and its own Alembic history (version table
inside that schema), so services can share a database server without sharing tables.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import MetaData, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# A pooled connection handed back this recently was working a moment ago. Checking it
# again before every transaction (three round trips on asyncpg) cost the busy messenger
# more than some of its statements; one idle for longer is checked first, so a
# PostgreSQL restart while a service was quiet costs no request an error.
PING_CONNECTIONS_IDLE_FOR_SECONDS = 1.0


def create_engine(
    database_url: str,
    tracer_provider: TracerProvider | None = None,
    *,
    ping_idle_for_seconds: float = PING_CONNECTIONS_IDLE_FOR_SECONDS,
) -> AsyncEngine:
    engine = create_async_engine(database_url, pool_size=5, max_overflow=5)
    _ping_connections_idle_for(engine.sync_engine, ping_idle_for_seconds)
    if tracer_provider is not None:
        SQLAlchemyInstrumentor().instrument(
            engine=engine.sync_engine, tracer_provider=tracer_provider, enable_commenter=False
        )
    return engine


def _ping_connections_idle_for(engine: Engine, seconds: float) -> None:
    """Check a pooled connection before use when it sat idle for ``seconds`` or more; a
    dead one is replaced (the pool retries the checkout on ``DisconnectionError``)."""

    def idle_from_now(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    event.listen(engine, "connect", idle_from_now)
    event.listen(engine, "checkin", idle_from_now)

    # The driver's errors as the dialect presents them; anything else is a bug, not a
    # dead connection, and surfaces as it is.
    driver_error: type[Exception] = engine.dialect.loaded_dbapi.Error

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since < seconds:
            return
        try:
            dbapi_connection.ping()
        except driver_error as error:
            raise DisconnectionError("pooled connection no longer answers") from error


async def ping(engine: AsyncEngine) -> bool:
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception:
        # Any failure means "not reachable" to a health probe, which reports it as a 503.
        return False
    return True


async def upgrade_to_head(migrations_dir: Path, database_url: str) -> None:
    """Apply a service's migrations. Alembic's async env runs its own event loop, so it
    runs in a worker thread."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    await asyncio.to_thread(command.upgrade, config, "head")


def migration_lock_key(schema: str) -> int:
    """The advisory lock that one schema's migrations run under: a stable 63-bit number."""
    digest = hashlib.sha256(f"parley migrations {schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def run_migrations_in_env(metadata: MetaData, schema: str) -> None:
    """The body of every service's ``env.py``: online migrations over asyncpg."""
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("sqlalchemy.url is not set for the migration run")

    def migrate(connection: Connection) -> None:
        # Replicas starting together would each try the same DDL, and all but one fail.
        # The first to take this lock migrates; the others wait, then find nothing to do.
        # It is held until the migration's transaction ends.
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": migration_lock_key(schema)}
        )
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=metadata,
            version_table_schema=schema,
            include_schemas=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(migrate)
        finally:
            await engine.dispose()

    asyncio.run(run())
