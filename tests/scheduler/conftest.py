"""Scheduler test helpers: a clock the test moves, a template checker stand-in, app clients."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from parley_scheduler.bootstrap import create_app
from parley_scheduler.entrypoints.auth import hash_key
from parley_scheduler.settings import ApiKey, Role, SchedulerSettings
from parley_shared.events import Channel
from parley_shared.settings import KafkaSettings

from tests.support.apps import running_app

OPERATOR_KEY = "op-secret-1"
AUDITOR_KEY = "audit-secret-1"
KEYS = [
    ApiKey(name="alice", role=Role.OPERATOR, sha256=hash_key(OPERATOR_KEY)),
    ApiKey(name="audrey", role=Role.AUDITOR, sha256=hash_key(AUDITOR_KEY)),
]
# A Tuesday, 13:30 UTC: 08:30 in New York.
START = datetime(2026, 11, 24, 13, 30, tzinfo=UTC)


@dataclass
class ManualClock:
    """Time moves only when the test says so."""

    current: datetime = START

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@dataclass
class FakeTemplateChecker:
    problems: dict[str, list[tuple[int | None, str]]] = field(default_factory=dict)
    asked: list[tuple[str, str, Channel]] = field(default_factory=list)

    async def check(
        self, template: str, locale: str, channel: Channel, variables: tuple[str, ...]
    ) -> list[tuple[int | None, str]]:
        self.asked.append((template, locale, channel))
        return self.problems.get(template, [])


def settings_for(
    kafka: KafkaSettings, database_url: str, *, keys: bool = True, **extra: object
) -> SchedulerSettings:
    return SchedulerSettings(
        kafka=kafka,
        database_url=database_url,
        tick_interval_seconds=0,
        api_keys=KEYS if keys else [],
        **extra,  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def scheduler_client(
    settings: SchedulerSettings,
    clock: ManualClock,
    checker: FakeTemplateChecker | None = None,
    key: str | None = OPERATOR_KEY,
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, clock=clock, template_checker=checker or FakeTemplateChecker())
    headers = {"X-API-Key": key} if key else {}
    async with (
        running_app(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://scheduler", headers=headers
        ) as client,
    ):
        yield client
