"""The one factory that builds the messenger: tracing, database, broker, providers, routes."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from opentelemetry.sdk.trace import SpanProcessor
from parley_shared.clock import Clock, clock_for
from parley_shared.database import create_engine
from parley_shared.events import Channel, ConsentChanged, DeliveryReported
from parley_shared.kafka import (
    DeadLetters,
    EventPublisher,
    build_broker,
)
from parley_shared.metrics import metrics_for
from parley_shared.service import ServiceParts, build_service_app
from parley_shared.telemetry import build_tracer_provider
from parley_shared.topics import Topics

from parley_messenger import __version__
from parley_messenger.adapters.coalescing import CoalescedSendLedger, CoalescedSuppressions
from parley_messenger.adapters.consent_client import ConsentClient
from parley_messenger.adapters.database import ReceiptStore, SendStore, SuppressionStore
from parley_messenger.adapters.preference_links import PreferenceLinks
from parley_messenger.adapters.sendgrid_client import SendGridSender
from parley_messenger.adapters.signatures import (
    SendGridWebhookVerifier,
    TwilioWebhookVerifier,
    UnsubscribeLinks,
)
from parley_messenger.adapters.templates import TemplateChecker, TemplateRenderer
from parley_messenger.adapters.twilio_client import TwilioSender
from parley_messenger.domain.preference_limits import SlidingWindowLimit
from parley_messenger.domain.retry import RetryPolicy
from parley_messenger.entrypoints.http import HttpDeps, build_http_router
from parley_messenger.entrypoints.kafka import build_router
from parley_messenger.entrypoints.preference_center import (
    PreferenceDeps,
    build_preference_router,
)
from parley_messenger.handlers import Deps
from parley_messenger.listening import ListeningDeps
from parley_messenger.settings import MessengerSettings

log = logging.getLogger(__name__)

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
    # One pooled connection per send that can be in flight, so no send waits for one.
    connections = settings.send_concurrency
    twilio = TwilioSender(
        settings.twilio, tracer_provider, timeout=timeout, connections=connections
    )
    sendgrid = SendGridSender(
        settings.sendgrid, tracer_provider, timeout=timeout, connections=connections
    )
    # Declared on the broker, so the AsyncAPI document lists what the messenger publishes.
    deliveries = EventPublisher(
        broker, topics.deliveries, DeliveryReported, "What became of one proposal's message."
    )
    consent_changes = EventPublisher(
        broker,
        topics.consent_changes,
        ConsentChanged,
        "Opt-outs and dead addresses the messenger heard of: STOP replies, unsubscribes, "
        "provider errors.",
    )
    clock = clock or clock_for(settings.simulated_start, settings.simulated_speed)
    sends = SendStore(engine)
    suppressions = SuppressionStore(engine)
    links = UnsubscribeLinks(settings.unsubscribe_secret.get_secret_value())
    preference_links = PreferenceLinks(
        settings.preference_link_secret.get_secret_value(),
        max_age_seconds=settings.preference_link_max_age_days * 86_400,
    )
    consent = ConsentClient(settings.consent_url, timeout=settings.send_timeout_seconds)
    tracer = tracer_provider.get_tracer("parley_messenger")
    deps = Deps(
        # Concurrent sends share their claim, check and outcome statements.
        sends=CoalescedSendLedger(sends, tracer),
        senders={Channel.SMS: twilio, Channel.EMAIL: sendgrid},
        renderer=TemplateRenderer(),
        publish=deliveries.publish,
        clock=clock,
        public_base_url=settings.public_base_url,
        suppressions=CoalescedSuppressions(suppressions, tracer),
        publish_consent=consent_changes.publish,
        link_signer=links,
        preference_links=preference_links,
        max_sms_segments=settings.sms_max_segments,
        retry=RetryPolicy(
            max_attempts=settings.retry_max_attempts,
            base_delay=settings.retry_base_delay_seconds,
            max_delay=settings.retry_max_delay_seconds,
        ),
    )

    broker.include_router(
        build_router(
            settings.kafka,
            deps,
            tracer=tracer,
            dead_letters=DeadLetters(broker, topics.dead_letters, metrics_for(broker)),
            batch_size=settings.decision_batch_size,
            concurrency=settings.send_concurrency,
            publish_unconfirmed=deliveries.publish_unconfirmed,
        )
    )
    http_router = build_http_router(
        HttpDeps(
            listening=ListeningDeps(
                sends=sends,
                suppressions=suppressions,
                receipts=ReceiptStore(engine),
                publish_delivery=deliveries.publish,
                publish_consent=consent_changes.publish,
                clock=clock,
                sender_name=settings.sendgrid.from_name,
                tracer=tracer_provider.get_tracer("parley_messenger.receipts"),
            ),
            public_base_url=settings.public_base_url,
            twilio=TwilioWebhookVerifier(settings.twilio.auth_token.get_secret_value()),
            sendgrid=SendGridWebhookVerifier(
                settings.sendgrid.event_webhook_public_key,
                settings.sendgrid.event_max_age_seconds,
            ),
            links=links,
            checker=TemplateChecker(max_sms_segments=settings.sms_max_segments),
            metrics=metrics_for(broker),
        )
    )
    preference_router = build_preference_router(
        PreferenceDeps(
            links=preference_links,
            consent=consent,
            sends=sends,
            suppressions=suppressions,
            clock=clock,
            limit=SlidingWindowLimit(settings.preference_rate_limit_per_minute, 60.0),
            contact_email=settings.sendgrid.from_email,
        )
    )
    return build_service_app(
        ServiceParts(
            name="messenger",
            version=__version__,
            settings=settings,
            broker=broker,
            engine=engine,
            tracer_provider=tracer_provider,
            migrations_dir=MIGRATIONS_DIR,
            routers=(http_router, preference_router),
            on_stopping=(twilio.close, sendgrid.close, consent.close),
        )
    )
