"""The scheduler's one factory: everything is built here from typed settings."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from opentelemetry.sdk.trace import SpanProcessor
from parley_shared.clock import Clock, clock_for
from parley_shared.database import create_engine
from parley_shared.events import ReminderProposed
from parley_shared.kafka import EventPublisher, build_broker
from parley_shared.service import ServiceParts, build_service_app
from parley_shared.telemetry import build_tracer_provider
from parley_shared.topics import Topics

from parley_scheduler import __version__, handlers
from parley_scheduler.adapters.database import SchedulerStore
from parley_scheduler.adapters.publisher import ProposalPublisher
from parley_scheduler.entrypoints.http import build_http_router
from parley_scheduler.entrypoints.kafka import build_router
from parley_scheduler.settings import SchedulerSettings

SERVICE_NAME = "parley-scheduler"
MIGRATIONS = Path(__file__).parent / "adapters" / "migrations"


def create_app(
    settings: SchedulerSettings,
    *,
    span_processors: tuple[SpanProcessor, ...] = (),
    clock: Clock | None = None,
) -> FastAPI:
    clock = clock or clock_for(settings.simulated_start, settings.simulated_speed)
    tracer_provider = build_tracer_provider(SERVICE_NAME, __version__, span_processors)
    engine = create_engine(settings.database_url, tracer_provider)
    broker = build_broker(settings.kafka, tracer_provider, client_id=SERVICE_NAME)
    store = SchedulerStore(engine)
    publisher = ProposalPublisher(
        EventPublisher(
            broker,
            Topics.for_prefix(settings.kafka.topic_prefix).proposals,
            ReminderProposed,
            "A proposed reminder: one campaign step for one debtor.",
        ),
        tracer_provider.get_tracer("parley_scheduler"),
    )
    broker.include_router(build_router(settings.kafka, store))

    async def publish_leftovers() -> None:
        # Proposals stored but not published before a crash go out now.
        await handlers.publish_pending(store, publisher, clock)

    return build_service_app(
        ServiceParts(
            name=SERVICE_NAME,
            version=__version__,
            settings=settings,
            broker=broker,
            engine=engine,
            tracer_provider=tracer_provider,
            migrations_dir=MIGRATIONS,
            routers=(build_http_router(store, publisher, clock),),
            on_started=(publish_leftovers,),
        )
    )
