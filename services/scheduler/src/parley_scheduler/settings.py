from __future__ import annotations

from parley_shared.settings import ServiceSettings
from pydantic import Field


class SchedulerSettings(ServiceSettings):
    http_port: int = Field(default=8101, ge=0, le=65535)
