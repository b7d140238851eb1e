"""One W3C trace from a request, through its statements, to the publish of its events.

Every request runs in a trace context: the caller's ``traceparent``/``tracestate`` when they
are valid, else a new trace (a malformed header is ignored, never an error). Each event the
request causes stores that context in ``envelope.metadata`` (``trace_metadata``, in the
outbox row with the rest of the envelope), and the relay sends it as the Kafka headers
``traceparent``/``tracestate`` (``trace_headers``).

Spans are recorded only while tracing is on (``start_tracing``: when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, or with an exporter a test gives): then the
OpenTelemetry ASGI middleware makes the request's server span, the asyncpg instrumentation
a span per statement under it, and the publisher a producer span per message, a child of
the context stored with its row, whose own context is what the Kafka headers carry (a
consumer's span becomes its child). Off, no SDK span exists and nothing is logged:
``PropagateTraceContext`` only makes the caller's context (or a new one) current, which
costs a few microseconds a request (docs/performance.md).

The aiokafka instrumentation is not used: it appends a second ``traceparent`` to headers
that already carry the stored one, and its span ends before the broker acknowledges.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import context, trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.status import Status, StatusCode

from services.class_management_service.config import SERVICE_NAME
from services.class_management_service.domain import OutboxMessage
from services.class_management_service.secrets_masking import mask_url_passwords

logger = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACE_FIELDS = (TRACEPARENT, TRACESTATE)
_ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
_TRACE_HEADER_NAMES = tuple(name.encode() for name in TRACE_FIELDS)
_PROPAGATOR = TraceContextTextMapPropagator()

Headers = list[tuple[str, bytes]]
ASGIApp = Any  # an ASGI callable (Quart's asgi_app and the middlewares around it)


@dataclass(slots=True)
class _Tracing:
    provider: Any = None  # the SDK's TracerProvider while tracing is on
    tracer: trace.Tracer | None = None


_active = _Tracing()


def start_tracing(exporter: Any = None) -> bool:
    """Record spans when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (OTLP over HTTP, batched)
    or ``exporter`` is given (tests: an ``InMemorySpanExporter``, exported at once).
    Returns whether tracing is on. Call before ``create_app``; once per process."""
    endpoint = os.environ.get(_ENDPOINT_VARIABLE, "").strip()
    if exporter is None and not endpoint:
        return False
    # Imported only when on: the SDK and the instrumentations cost nothing when off.
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        logger.info("Tracing: spans exported to %s", mask_url_passwords(endpoint))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    _active.provider = provider
    _active.tracer = provider.get_tracer(__name__)
    return True


def stop_tracing() -> None:
    """Flush and stop what ``start_tracing`` started (no-op when tracing is off)."""
    provider, _active.provider, _active.tracer = _active.provider, None, None
    if provider is None:
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AsyncPGInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
    provider.shutdown()


def traced_asgi(app: ASGIApp) -> ASGIApp:
    """``app`` inside the OpenTelemetry ASGI middleware when tracing is on, else inside
    ``PropagateTraceContext``."""
    if _active.provider is None:
        return PropagateTraceContext(app)
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware(
        app, tracer_provider=_active.provider, exclude_spans=["receive", "send"]
    )


class PropagateTraceContext:
    """Tracing off: the caller's valid trace context, or a new trace, is the request's
    current span context (a non-recording span: nothing is recorded or exported)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        carrier = {
            name.decode(): value.decode("latin-1")
            for name, value in scope["headers"]
            if name in _TRACE_HEADER_NAMES
        }
        span_context = _span_context_of(carrier)
        token = context.attach(trace.set_span_in_context(NonRecordingSpan(span_context)))
        try:
            await self._app(scope, receive, send)
        finally:
            context.detach(token)


def trace_metadata() -> dict[str, str]:
    """The current trace context as ``envelope.metadata`` stores it: ``traceparent``, and
    ``tracestate`` when there is one; a new trace outside any request."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        span_context = _new_trace()
    return _formatted(span_context)


def trace_headers(metadata: Any) -> Headers:
    """The Kafka headers of the trace context stored in an envelope's ``metadata``."""
    if not isinstance(metadata, Mapping):
        return []
    return [
        (name, value.encode())
        for name in TRACE_FIELDS
        if isinstance(value := metadata.get(name), str) and value
    ]


def untraced() -> Any:
    """A context in which instrumented libraries record no spans: the relay's own
    statements (claims every poll, deletes) belong to no request's trace."""
    return suppress_instrumentation()


def start_publish_span(message: OutboxMessage) -> tuple[Span | None, Headers]:
    """Tracing on: a producer span for one message, child of the trace context in its
    headers, and the headers with that span's context in place of the stored one. Off:
    ``(None, message.headers)``."""
    tracer = _active.tracer
    if tracer is None:
        return None, message.headers
    topic, headers = message.topic, message.headers
    stored = {name: value.decode() for name, value in headers if name in TRACE_FIELDS}
    span = tracer.start_span(
        f"{topic} publish",
        context=_PROPAGATOR.extract(stored),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.message.id": str(message.event_id),
        },
    )
    own = _formatted(span.get_span_context())
    sent = [(name, value) for name, value in headers if name not in TRACE_FIELDS]
    sent.extend((name, value.encode()) for name, value in own.items())
    return span, sent


def end_publish_span(span: Span | None, error: BaseException | None) -> None:
    """End a ``start_publish_span`` span with the broker's answer."""
    if span is None:
        return
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.end()


def _span_context_of(carrier: Mapping[str, str]) -> SpanContext:
    if carrier:
        span_context = trace.get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
        if span_context.is_valid:
            return span_context
    return _new_trace()


def _new_trace() -> SpanContext:
    # Sampled, so that consumers which trace (parent-based sampling) record the hop.
    return SpanContext(
        trace_id=random.getrandbits(128) or 1,
        span_id=random.getrandbits(64) or 1,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def _formatted(span_context: SpanContext) -> dict[str, str]:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, trace.set_span_in_context(NonRecordingSpan(span_context)))
    return carrier
