"""The scheduler's one factory: everything is built here from typed settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from fastapi import FastAPI
from opentelemetry.sdk.trace import SpanProcessor
from parley_shared.clock import Clock, clock_for
from parley_shared.database import create_engine
from parley_shared.kafka import DeadLetters, build_broker
from parley_shared.metrics import metrics_for
from parley_shared.service import ServiceParts, build_service_app
from parley_shared.telemetry import build_tracer_provider
from parley_shared.topics import Topics

from parley_scheduler import __version__, handlers
from parley_scheduler.adapters.database import SchedulerStore
from parley_scheduler.adapters.publisher import ProposalPublisher
from parley_scheduler.adapters.template_checks import MessengerTemplateChecker
from parley_scheduler.domain.templates import TemplateChecker
from parley_scheduler.entrypoints.http import build_http_router
from parley_scheduler.entrypoints.kafka import build_router
from parley_scheduler.settings import SchedulerSettings

SERVICE_NAME = "parley-scheduler"
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"
log = logging.getLogger(__name__)


def create_app(
    settings: SchedulerSettings,
    *,
    span_processors: tuple[SpanProcessor, ...] = (),
    clock: Clock | None = None,
    template_checker: TemplateChecker | None = None,
) -> FastAPI:
    clock = clock or clock_for(settings.simulated_start, settings.simulated_speed)
    tracer_provider = build_tracer_provider(SERVICE_NAME, __version__, span_processors)
    engine = create_engine(settings.database_url, tracer_provider)
    broker = build_broker(settings.kafka, tracer_provider, client_id=SERVICE_NAME)
    store = SchedulerStore(engine)
    publisher = ProposalPublisher(
        broker,
        settings.kafka,
        Topics.for_prefix(settings.kafka.topic_prefix).proposals,
        tracer_provider.get_tracer("parley_scheduler"),
    )
    checker = template_checker or MessengerTemplateChecker(settings.messenger_url)
    topics = Topics.for_prefix(settings.kafka.topic_prefix)
    broker.include_router(
        build_router(
            settings.kafka,
            store,
            dead_letters=DeadLetters(broker, topics.dead_letters, metrics_for(broker)),
            tracer=tracer_provider.get_tracer("parley_scheduler"),
        )
    )
    loop_task: list[asyncio.Task[None]] = []

    async def tick_forever() -> None:
        while True:
            try:
                await handlers.tick(store, publisher, clock)
            except Exception:
                # A failed tick (database or broker away) is retried on the next one; every
                # step it would have proposed is still due then, with the same ids.
                log.exception(
                    "scheduling tick failed; retrying in %.1f s", settings.tick_interval_seconds
                )
            await asyncio.sleep(settings.tick_interval_seconds)

    async def start() -> None:
        if not settings.api_keys:
            log.warning("no API keys configured: the scheduler's API is open (local use only)")
        await publisher.start()
        # Proposals stored but not published before a crash go out now.
        await handlers.publish_pending(store, publisher, clock)
        handlers.settle_heap()
        if settings.tick_interval_seconds > 0:
            loop_task.append(asyncio.create_task(tick_forever(), name="scheduler-ticks"))

    async def stop() -> None:
        for task in loop_task:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await publisher.stop()

    return build_service_app(
        ServiceParts(
            name=SERVICE_NAME,
            version=__version__,
            settings=settings,
            broker=broker,
            engine=engine,
            tracer_provider=tracer_provider,
            migrations_dir=MIGRATIONS,
            routers=(build_http_router(store, publisher, clock, checker, settings.api_keys),),
            on_started=(start,),
            on_stopping=(stop,),
        )
    )
