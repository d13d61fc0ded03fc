"""Typed settings shared by every service; each service extends ``ServiceSettings``.

Settings are read from ``PARLEY_*`` environment variables (nested with ``__``) when a
service's factory builds them, never at import time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseModel):
    bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list of the brokers."
    )
    topic_prefix: str = Field(
        default="", description="Prepended to every topic name, e.g. 'staging.'."
    )
    partitions: int = Field(
        default=6, ge=1, description="Partition count used when Parley creates its topics."
    )
    replication_factor: int = Field(default=1, ge=1)
    group_prefix: str = Field(
        default="parley", description="Consumer groups are named '<prefix>.<service>'."
    )
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    heartbeat_interval_ms: int = Field(default=3_000, ge=100)


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PARLEY_", env_nested_delimiter="__", extra="ignore"
    )

    kafka: KafkaSettings = KafkaSettings()
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        description="SQLAlchemy URL of the PostgreSQL database (asyncpg driver).",
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    migrate_on_start: bool = Field(
        default=True, description="Apply this service's Alembic migrations at start-up."
    )
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one object per line with trace ids; text: for people."
    )
    lag_probe_interval_seconds: float = Field(
        default=15.0,
        ge=0,
        description="How often consumer lag is read from the broker for /metrics; 0 turns it off.",
    )
    simulated_start: datetime | None = Field(
        default=None,
        description="Run on a simulated clock starting at this instant (demo and tests only).",
    )
    simulated_speed: float = Field(default=1.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        # Plain postgres URLs are accepted for convenience; the services need asyncpg.
        for plain in ("postgresql://", "postgres://"):
            if url.startswith(plain):
                return "postgresql+asyncpg://" + url[len(plain) :]
        if not url.startswith("postgresql+asyncpg://"):
            raise ValueError("database_url must be a PostgreSQL URL (postgresql+asyncpg://...)")
        return url
