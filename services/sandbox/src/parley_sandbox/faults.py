"""Misbehaviour on request: the next N calls to a stand-in, or every call for a number of
seconds, are rate limited, fail with a server error, answer slowly, or accept the message
and answer too late (a timeout)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
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
    times: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="How many calls it applies to (ignored with for_seconds).",
    )
    for_seconds: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="Apply to every call for this many seconds instead of a number of calls. "
        "The period starts when the fault reaches the front of the queue: at once if no "
        "other fault is pending, else when the one before it is used up or its period ends.",
    )
    delay_seconds: float = Field(default=0.0, ge=0, le=120)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    delay_seconds: float
    for_seconds: float | None = None

    @property
    def refuses(self) -> bool:
        return self.kind in ("rate_limit", "server_error", "unavailable")

    @property
    def status(self) -> int:
        return {"rate_limit": 429, "server_error": 500, "unavailable": 503}.get(self.kind, 200)

    async def wait(self) -> None:
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)


@dataclass
class _Queue:
    faults: deque[Fault] = field(default_factory=deque)
    # When the fault at the front started applying; only timed faults use it.
    head_since: float = 0.0


class FaultPlan:
    """Faults queued per provider, used up in the order given: a counted fault by one call,
    a timed one by its period running out."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._queues: dict[Provider, _Queue] = {"twilio": _Queue(), "sendgrid": _Queue()}

    def add(self, request: FaultRequest) -> int:
        queue = self._queues[request.provider]
        self._expire(queue)
        if not queue.faults:
            queue.head_since = self._clock()
        if request.for_seconds is not None:
            queue.faults.append(Fault(request.kind, request.delay_seconds, request.for_seconds))
        else:
            queue.faults.extend(
                Fault(request.kind, request.delay_seconds) for _ in range(request.times)
            )
        return len(queue.faults)

    def _expire(self, queue: _Queue) -> None:
        """Drops timed faults whose period is over; the next one starts where it ended."""
        now = self._clock()
        while queue.faults and queue.faults[0].for_seconds is not None:
            ends = queue.head_since + (queue.faults[0].for_seconds or 0.0)
            if now < ends:
                return
            queue.faults.popleft()
            queue.head_since = ends

    def next_for(self, provider: Provider) -> Fault | None:
        queue = self._queues[provider]
        self._expire(queue)
        if not queue.faults:
            return None
        head = queue.faults[0]
        if head.for_seconds is None:
            queue.faults.popleft()
            queue.head_since = self._clock()
        return head

    def pending(self) -> dict[str, int]:
        for queue in self._queues.values():
            self._expire(queue)
        return {provider: len(queue.faults) for provider, queue in self._queues.items()}

    def clear(self) -> None:
        for queue in self._queues.values():
            queue.faults.clear()
