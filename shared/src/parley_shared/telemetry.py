"""Tracing set-up: one TracerProvider per service, passed explicitly to every instrumentation.

Passing the provider (instead of setting the global one) lets tests run several
services in one process, each with its own ``service.name``, into one in-memory exporter.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from aiokafka.structs import ConsumerRecord
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    Tracer,
)

log = logging.getLogger(__name__)


def build_tracer_provider(
    service_name: str,
    service_version: str,
    span_processors: tuple[SpanProcessor, ...] = (),
) -> TracerProvider:
    """A provider for one service.

    With no processors given, spans go to OTLP when the standard ``OTEL_EXPORTER_OTLP_*``
    variables name an endpoint, and nowhere otherwise.
    """
    resource = Resource.create({SERVICE_NAME: service_name, SERVICE_VERSION: service_version})
    provider = TracerProvider(resource=resource)
    processors = span_processors or _processors_from_environment()
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def _processors_from_environment() -> tuple[SpanProcessor, ...]:
    wants_otlp = os.environ.get("OTEL_TRACES_EXPORTER", "otlp") == "otlp" and any(
        os.environ.get(name)
        for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    if not wants_otlp:
        return ()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    log.info("exporting traces over OTLP")
    return (BatchSpanProcessor(OTLPSpanExporter()),)


@contextmanager
def span_in_stored_trace(
    tracer: Tracer, name: str, trace_id: str | None, span_id: str | None
) -> Iterator[Span]:
    """A span that continues a trace whose context was stored earlier, e.g. a provider's
    webhook arriving minutes after the send: a child of the stored span, linked to the
    span current now (the webhook's own request), so both traces lead to each other.
    Without a stored context it is an ordinary child of the current span."""
    current = trace.get_current_span().get_span_context()
    links = [Link(current)] if current.is_valid else []
    parent: Context | None = None
    if trace_id and span_id:
        stored = SpanContext(
            trace_id=int(trace_id, 16),
            span_id=int(span_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        parent = trace.set_span_in_context(NonRecordingSpan(stored))
    with tracer.start_as_current_span(name, context=parent, links=links) as span:
        yield span


@contextmanager
def spans_in_record_traces(
    tracer: Tracer, records: Sequence[tuple[ConsumerRecord[Any, Any], uuid.UUID]]
) -> Iterator[None]:
    """One span per record of a batch, each in the trace its record arrived with (or the
    batch's when it carried none), open while the batch is handled: each reminder's trace
    still shows this service taking its event in, though one statement serves them all."""
    opened = []
    for record, proposal_id in records:
        headers = {key: value.decode(errors="replace") for key, value in record.headers or ()}
        opened.append(
            tracer.start_span(
                f"{record.topic} record",
                context=propagate.extract(headers) if "traceparent" in headers else None,
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": record.topic,
                    "messaging.kafka.message.offset": record.offset,
                    "parley.proposal_id": str(proposal_id),
                },
            )
        )
    try:
        yield
    except Exception as error:
        for span in opened:
            span.record_exception(error)
            span.set_status(trace.Status(trace.StatusCode.ERROR))
        raise
    finally:
        for span in opened:
            span.end()
