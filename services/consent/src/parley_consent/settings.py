"""The consent service's settings: the shared ones plus what only consent needs."""

from __future__ import annotations

from parley_shared.settings import ServiceSettings
from pydantic import Field


class ConsentSettings(ServiceSettings):
    http_port: int = Field(default=8102, ge=0, le=65535)
    rule_set_version: str = Field(
        default="2026.11-skeleton",
        description="Version of the contact rules applied; recorded with every decision.",
    )
