from __future__ import annotations

from enum import StrEnum

from parley_shared.settings import ServiceSettings
from pydantic import BaseModel, Field


class Role(StrEnum):
    OPERATOR = "operator"
    AUDITOR = "auditor"


class ApiKey(BaseModel):
    """One API key, stored only as the SHA-256 of the key (hex)."""

    name: str = Field(min_length=1, max_length=128, description="Who holds the key.")
    role: Role
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="Hex SHA-256 of the key.")


class SchedulerSettings(ServiceSettings):
    http_port: int = Field(default=8101, ge=0, le=65535)
    messenger_url: str = Field(
        default="http://127.0.0.1:8103",
        description="Base URL of the messenger, asked to check a campaign's templates.",
    )
    tick_interval_seconds: float = Field(
        default=5.0,
        ge=0,
        description="Real seconds between scheduling ticks; 0 turns the loop off.",
    )
    api_keys: list[ApiKey] = Field(
        default_factory=list,
        description="Hashed API keys with their roles; empty leaves the API open (local use).",
    )
