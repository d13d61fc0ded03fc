"""The one factory: builds the consent service from its settings. Nothing connects here;
connections open when the returned app's lifespan starts."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from opentelemetry.sdk.trace import SpanProcessor
from parley_shared.clock import Clock, clock_for
from parley_shared.database import create_engine
from parley_shared.events import ConsentChanged
from parley_shared.kafka import DeadLetters, EventPublisher, build_broker
from parley_shared.metrics import metrics_for
from parley_shared.service import ServiceParts, build_service_app
from parley_shared.telemetry import build_tracer_provider
from parley_shared.topics import Topics

from parley_consent import __version__
from parley_consent.adapters.database import ConsentRepository
from parley_consent.adapters.publisher import DecisionPublisher
from parley_consent.domain import RuleSet, default_rule_set
from parley_consent.entrypoints.http import build_http_router
from parley_consent.entrypoints.kafka import build_kafka_router
from parley_consent.settings import ConsentSettings

SERVICE_NAME = "parley-consent"
MIGRATIONS_DIR = Path(__file__).parent / "adapters" / "migrations"


def create_app(
    settings: ConsentSettings,
    *,
    span_processors: tuple[SpanProcessor, ...] = (),
    clock: Clock | None = None,
    rules: RuleSet | None = None,
) -> FastAPI:
    tracer_provider = build_tracer_provider(SERVICE_NAME, __version__, span_processors)
    engine = create_engine(settings.database_url, tracer_provider)
    broker = build_broker(settings.kafka, tracer_provider, client_id=SERVICE_NAME)
    repository = ConsentRepository(engine)
    clock = clock or clock_for(settings.simulated_start, settings.simulated_speed)
    rules = rules or default_rule_set()
    topics = Topics.for_prefix(settings.kafka.topic_prefix)
    decisions = DecisionPublisher(
        broker, settings.kafka, topics.decisions, tracer_provider.get_tracer("parley_consent")
    )
    consent_changes = EventPublisher(
        broker,
        topics.consent_changes,
        ConsentChanged,
        "Consent changes recorded over HTTP, for every service that honours them.",
    )
    kafka_router = build_kafka_router(
        settings,
        decisions=decisions,
        repository=repository,
        clock=clock,
        rules=rules,
        dead_letters=DeadLetters(broker, topics.dead_letters, metrics_for(broker)),
        tracer=tracer_provider.get_tracer("parley_consent"),
    )
    broker.include_router(kafka_router)

    async def stop() -> None:
        # The subscribers finish the batch in hand (publishing its decisions, committing
        # its offsets) before the decision producer closes; the broker stops them again
        # afterwards, which then does nothing.
        for subscriber in kafka_router.subscribers:
            await subscriber.stop()
        await decisions.stop()

    http_router = build_http_router(
        consent_changes=consent_changes, repository=repository, rules=rules, clock=clock
    )
    return build_service_app(
        ServiceParts(
            name=SERVICE_NAME,
            version=__version__,
            settings=settings,
            broker=broker,
            engine=engine,
            tracer_provider=tracer_provider,
            migrations_dir=MIGRATIONS_DIR,
            routers=(http_router,),
            on_stopping=(stop,),
        )
    )
