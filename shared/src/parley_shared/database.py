"""PostgreSQL plumbing: engines, per-service schemas and Alembic migrations.

Each service owns one PostgreSQL schema and its own Alembic history (version table
inside that schema), so services can share a database server without sharing tables.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def create_engine(database_url: str, tracer_provider: TracerProvider | None = None) -> AsyncEngine:
    engine = create_async_engine(database_url, pool_size=5, max_overflow=5, pool_pre_ping=True)
    if tracer_provider is not None:
        SQLAlchemyInstrumentor().instrument(
            engine=engine.sync_engine, tracer_provider=tracer_provider, enable_commenter=False
        )
    return engine


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
