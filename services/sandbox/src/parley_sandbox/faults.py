"""Misbehaviour on request: the next N calls to a stand-in are rate limited, fail with a
server error, answer slowly, or accept the message and answer too late (a timeout)."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from parley_sandbox.records import Provider

FaultKind = Literal["rate_limit", "server_error", "unavailable", "slow", "timeout"]


class FaultRequest(BaseModel):
    provider: Provider
    kind: FaultKind = Field(
        description="rate_limit: 429 (Twilio code 20429); server_error: 500; unavailable: "
        "503; slow: answer normally after delay_seconds; timeout: accept the message, then "
        "answer only after delay_seconds (longer than the client waits)."
    )
    times: int = Field(default=1, ge=1, le=1000, description="How many calls it applies to.")
    delay_seconds: float = Field(default=0.0, ge=0, le=120)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    delay_seconds: float

    @property
    def refuses(self) -> bool:
        return self.kind in ("rate_limit", "server_error", "unavailable")

    @property
    def status(self) -> int:
        return {"rate_limit": 429, "server_error": 500, "unavailable": 503}.get(self.kind, 200)

    async def wait(self) -> None:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)


class FaultPlan:
    """Faults queued per provider, used up one call at a time in the order given."""

    def __init__(self) -> None:
        self._queues: dict[Provider, deque[Fault]] = {"twilio": deque(), "sendgrid": deque()}

    def add(self, request: FaultRequest) -> int:
        queue = self._queues[request.provider]
        queue.extend(Fault(request.kind, request.delay_seconds) for _ in range(request.times))
        return len(queue)

    def next_for(self, provider: Provider) -> Fault | None:
        queue = self._queues[provider]
        return queue.popleft() if queue else None

    def pending(self) -> dict[str, int]:
        return {provider: len(queue) for provider, queue in self._queues.items()}

    def clear(self) -> None:
        for queue in self._queues.values():
            queue.clear()
