"""The HTTP and Kafka shell every service shares: lifespan, health endpoints, serving.

A service's factory builds its broker, engine and routes, then hands them to
``build_service_app``; nothing here connects until the app starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import PlainTextResponse
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from parley_shared.database import ping, upgrade_to_head
from parley_shared.logs import configure_logging
from parley_shared.metrics import ConsumerLagProbe, metrics_for
from parley_shared.settings import KafkaSettings, ServiceSettings
from parley_shared.topics import ensure_topics

log = logging.getLogger(__name__)


@dataclass
class ServiceParts:
    """What a service's factory assembled; the shell starts and stops it in order."""

    name: str
    version: str
    settings: ServiceSettings
    broker: KafkaBroker
    engine: AsyncEngine
    tracer_provider: TracerProvider
    migrations_dir: Path
    routers: Sequence[APIRouter] = ()
    on_started: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=tuple)
    on_stopping: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=tuple)


def build_service_app(parts: ServiceParts) -> FastAPI:
    metrics = metrics_for(parts.broker)
    metrics.describe_service(parts.name, parts.version)
    lag_probe = ConsumerLagProbe(
        parts.broker,
        metrics,
        parts.settings.kafka.bootstrap_servers,
        interval_seconds=parts.settings.lag_probe_interval_seconds,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if parts.settings.migrate_on_start:
            log.info("%s: applying database migrations", parts.name)
            await upgrade_to_head(parts.migrations_dir, parts.settings.database_url)
        created = await ensure_topics(parts.settings.kafka)
        if created:
            log.info("%s: created topics %s", parts.name, ", ".join(created))
        await parts.broker.start()
        for hook in parts.on_started:
            await hook()
        await lag_probe.start()
        log.info("%s: started", parts.name)
        try:
            yield
        finally:
            await lag_probe.stop()
            for hook in parts.on_stopping:
                await hook()
            # Stopping the broker finishes in-flight messages and commits their offsets.
            await parts.broker.stop()
            await parts.engine.dispose()
            parts.tracer_provider.force_flush()
            log.info("%s: stopped", parts.name)

    app = FastAPI(title=f"Parley {parts.name}", version=parts.version, lifespan=lifespan)
    app.state.parts = parts

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "ok", "service": parts.name}

    @app.get("/health/ready", tags=["health"])
    @app.get("/health", tags=["health"])
    async def ready(response: Response) -> dict[str, object]:
        broker_ok = await parts.broker.ping(timeout=2.0)
        database_ok = await ping(parts.engine)
        healthy = broker_ok and database_ok
        response.status_code = 200 if healthy else 503
        return {
            "status": "ok" if healthy else "unavailable",
            "service": parts.name,
            "version": parts.version,
            "checks": {"broker": broker_ok, "database": database_ok},
        }

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in parts.routers:
        app.include_router(router)
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=parts.tracer_provider, excluded_urls="health,metrics"
    )
    return app


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    configure_logging(settings.log_level, settings.log_format, service=parts_name(app))
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level=settings.log_level.lower(),
        access_log=False,
        # Uvicorn's own handlers would bypass the JSON formatter.
        log_config=None,
        # On SIGTERM the lifespan stops the broker, which finishes in-flight messages
        # and commits their offsets; this bounds how long open HTTP requests may take.
        timeout_graceful_shutdown=20,
    )


def asyncapi_document(app: FastAPI) -> dict[str, object]:
    """The AsyncAPI document FastStream generates from a built (not started) service."""
    parts: ServiceParts = app.state.parts
    spec = AsyncAPI(
        parts.broker,
        title=f"Parley {parts.name}",
        version=parts.version,
        description=f"Kafka topics that {parts.name} consumes and publishes.",
    ).to_specification()
    document: dict[str, object] = spec.to_jsonable()
    return document


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def service_main(
    settings_factory: Callable[[], SettingsT],
    create_app: Callable[[SettingsT], FastAPI],
    argv: Sequence[str] | None = None,
) -> None:
    """A service's command line: no argument serves it; ``asyncapi`` prints its document;
    ``migrate`` applies its database migrations and exits (run once per release when
    replicas start with ``migrate_on_start`` off)."""
    args = list(sys.argv[1:] if argv is None else argv)
    settings = settings_factory()
    if args == ["asyncapi"]:
        # Default Kafka settings: the document describes the contract, not one deployment.
        documented = create_app(settings.model_copy(update={"kafka": KafkaSettings()}))
        print(json.dumps(asyncapi_document(documented), indent=2, sort_keys=True))
        return
    app = create_app(settings)
    if args == ["migrate"]:
        parts: ServiceParts = app.state.parts
        configure_logging(settings.log_level, settings.log_format, service=parts.name)
        asyncio.run(upgrade_to_head(parts.migrations_dir, settings.database_url))
        log.info("%s: database migrated", parts.name)
        return
    if args:
        raise SystemExit(f"usage: {parts_name(app)} [asyncapi | migrate]")
    serve(app, settings)


def parts_name(app: FastAPI) -> str:
    parts: ServiceParts = app.state.parts
    return parts.name
