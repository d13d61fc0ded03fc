"""The one factory that builds the messenger: tracing, database, broker, providers, routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from opentelemetry.sdk.trace import SpanProcessor
from parley_shared.clock import Clock, clock_for
from parley_shared.database import create_engine
from parley_shared.events import Channel, DeliveryReported
from parley_shared.kafka import EventPublisher, build_broker
from parley_shared.service import ServiceParts, build_service_app
from parley_shared.telemetry import build_tracer_provider
from parley_shared.topics import Topics

from parley_messenger import __version__
from parley_messenger.adapters.database import SendStore
from parley_messenger.adapters.sendgrid_client import SendGridSender
from parley_messenger.adapters.templates import TemplateRenderer
from parley_messenger.adapters.twilio_client import TwilioSender
from parley_messenger.entrypoints.kafka import build_router
from parley_messenger.handlers import Deps
from parley_messenger.settings import MessengerSettings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "adapters" / "migrations"


def create_app(
    settings: MessengerSettings,
    *,
    span_processors: tuple[SpanProcessor, ...] = (),
    clock: Clock | None = None,
) -> FastAPI:
    tracer_provider = build_tracer_provider("parley-messenger", __version__, span_processors)
    engine = create_engine(settings.database_url, tracer_provider)
    broker = build_broker(settings.kafka, tracer_provider, client_id="parley-messenger")
    topics = Topics.for_prefix(settings.kafka.topic_prefix)
    timeout = settings.send_timeout_seconds
    twilio = TwilioSender(settings.twilio, tracer_provider, timeout=timeout)
    sendgrid = SendGridSender(settings.sendgrid, tracer_provider, timeout=timeout)
    # Declared on the broker, so the AsyncAPI document lists what the messenger publishes.
    deliveries = EventPublisher(
        broker, topics.deliveries, DeliveryReported, "What became of one proposal's message."
    )
    deps = Deps(
        sends=SendStore(engine),
        senders={Channel.SMS: twilio, Channel.EMAIL: sendgrid},
        renderer=TemplateRenderer(),
        publish=deliveries.publish,
        clock=clock or clock_for(settings.simulated_start, settings.simulated_speed),
        public_base_url=settings.public_base_url,
    )
    broker.include_router(build_router(settings.kafka, deps))
    return build_service_app(
        ServiceParts(
            name="messenger",
            version=__version__,
            settings=settings,
            broker=broker,
            engine=engine,
            tracer_provider=tracer_provider,
            migrations_dir=MIGRATIONS_DIR,
            on_stopping=(twilio.close, sendgrid.close),
        )
    )
