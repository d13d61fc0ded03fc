"""One statement for many concurrent sends: the ledger's claims and outcomes and the
send-time opt-out check, each gathered from every send waiting for it.

A call joins the next statement, never one already running: an opt-out check asked for
after an opt-out was stored therefore runs after it too, exactly as a check of its own
would, and its answer comes back as soon as that one statement has run. While a
statement runs, the calls arriving meanwhile gather for the next one, so batches grow
with the load and an idle service waits for nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, Tracer

from parley_messenger.adapters.database import SendStore, SuppressionStore
from parley_messenger.domain.model import SendRecord
from parley_messenger.domain.suppression import SuppressionChange

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


@dataclass
class _Waiting(Generic[ItemT, ResultT]):
    item: ItemT
    future: asyncio.Future[ResultT]
    caller: SpanContext


class Coalescer(Generic[ItemT, ResultT]):
    """Runs ``run_many`` for the calls waiting, one batch at a time; each call gets the
    answer for its own item, or the batch's exception."""

    def __init__(
        self,
        run_many: Callable[[list[ItemT]], Awaitable[list[ResultT]]],
        *,
        name: str,
        tracer: Tracer | None = None,
        max_items: int = 1000,
    ) -> None:
        self._run_many = run_many
        self._name = name
        self._tracer = tracer
        self._max_items = max_items
        self._waiting: list[_Waiting[ItemT, ResultT]] = []
        self._worker: asyncio.Task[None] | None = None

    async def __call__(self, item: ItemT) -> ResultT:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ResultT] = loop.create_future()
        caller = trace.get_current_span().get_span_context()
        self._waiting.append(_Waiting(item, future, caller))
        if self._worker is None:
            # A context of its own: the batch's statements belong to no one reminder's
            # trace; its span links to the traces of every send it served instead.
            self._worker = loop.create_task(self._drain(), context=contextvars.Context())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_items]
                del self._waiting[: self._max_items]
                await self._run(batch)
        finally:
            # No await between the last look at the queue and this: a call arriving
            # later finds no worker and starts one.
            self._worker = None

    async def _run(self, batch: list[_Waiting[ItemT, ResultT]]) -> None:
        # A caller that gave up (its task was cancelled) gets no work done for it.
        live = [waiting for waiting in batch if not waiting.future.done()]
        if not live:
            return
        span = (
            nullcontext()
            if self._tracer is None
            else self._tracer.start_as_current_span(
                self._name,
                links=[Link(w.caller) for w in live if w.caller.is_valid],
                attributes={"parley.batch_size": len(live)},
            )
        )
        try:
            with span:
                results = await self._run_many([waiting.item for waiting in live])
        except BaseException as error:
            for waiting in live:
                if not waiting.future.done():
                    if isinstance(error, asyncio.CancelledError):
                        waiting.future.cancel()
                    else:
                        waiting.future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for waiting, result in zip(live, results, strict=True):
            if not waiting.future.done():
                waiting.future.set_result(result)


class CoalescedSendLedger:
    """The send ledger with claims and outcomes of concurrent sends written together;
    each claim is still committed before its caller goes on to the provider."""

    def __init__(self, store: SendStore, tracer: Tracer | None = None) -> None:
        self._store = store
        self._claim = Coalescer(store.claim_many, name="messenger sends claim", tracer=tracer)
        self._finish = Coalescer(store.finish_many, name="messenger sends finish", tracer=tracer)

    async def claim(self, record: SendRecord) -> SendRecord | None:
        return await self._claim(record)

    async def finish(self, record: SendRecord) -> bool:
        return await self._finish(record)

    async def give_up_on_claim(
        self, proposal_id: uuid.UUID, finished_at: datetime, detail: str
    ) -> SendRecord | None:
        # Only after a crash or a redelivery: rare, so not worth gathering.
        return await self._store.give_up_on_claim(proposal_id, finished_at, detail)


class CoalescedSuppressions:
    """The send-time opt-out check of concurrent sends in one query. Each query starts
    after every check it answers was asked for, so none answers from before its call."""

    def __init__(self, store: SuppressionStore, tracer: Tracer | None = None) -> None:
        self._store = store
        self._check = Coalescer(
            store.first_suppressing_many, name="messenger suppressions check", tracer=tracer
        )

    async def apply(self, changes: list[SuppressionChange]) -> bool:
        return await self._store.apply(changes)

    async def first_suppressing(self, scopes: tuple[str, ...]) -> str | None:
        return await self._check(scopes)
