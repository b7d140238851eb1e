"""One trace across the hop: request → its statements → the relay's publish → the consumer.

The request's W3C trace context (or a new trace, when it sent none or a malformed one) is in
every event's ``envelope.metadata`` and in the Kafka headers of the message read back from
the real broker. With tracing on (an in-memory exporter here, as OTLP would be with
OTEL_EXPORTER_OTLP_ENDPOINT), the ASGI server span, the asyncpg statement spans and the
publisher's producer span share that trace id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from quart import Quart
from quart.testing.app import TestApp as QuartTestApp

from services.class_management_service.app import create_app
from services.class_management_service.config import Settings
from services.class_management_service.tests.support.api import json_of, send, with_correlation
from services.class_management_service.tests.support.kafka_events import (
    ConsumedEvent,
    EventCollector,
)
from services.class_management_service.tests.support.polling import wait_until
from services.class_management_service.tracing import start_tracing, stop_tracing

if TYPE_CHECKING:
    from quart.typing import TestClientProtocol

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
TRACESTATE = "huleedu=gateway,rojo=00f067aa0ba902b7"
VALID_TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")
# Words of a line about tracing itself (not "traceparent", which aiokafka's DEBUG lines of
# the payloads they send contain).
ABOUT_TRACING = ("tracing", "opentelemetry", "otlp", "exporter", "tracer")
MALFORMED = (
    "not-a-traceparent",
    f"00-{'0' * 32}-{PARENT_SPAN_ID}-01",  # the all-zero trace id is invalid
    f"00-{TRACE_ID.upper()}-{PARENT_SPAN_ID}-01",  # upper-case hex is invalid
    f"00-{TRACE_ID}-{PARENT_SPAN_ID}",  # no flags
)


@pytest.fixture
async def traced(settings: Settings) -> AsyncIterator[tuple[Quart, InMemorySpanExporter]]:
    """The real app (relay included) with tracing on, spans kept in memory."""
    exporter = InMemorySpanExporter()
    start_tracing(exporter)
    try:
        app = create_app(settings)
        async with QuartTestApp(app, startup_timeout=30, shutdown_timeout=30):
            yield app, exporter
    finally:
        stop_tracing()


async def _create_class(client: TestClientProtocol, headers: dict[str, str], **trace: str) -> str:
    response = await send(
        client,
        "POST",
        "/v1/classes",
        {**with_correlation(headers), **trace},
        body={"name": "9A", "course_codes": ["ENG5"]},
    )
    return str((await json_of(response, 201))["id"])


async def _event_of(events: EventCollector, class_id: str) -> ConsumedEvent:
    (event,) = await events.wait_for(lambda e: e.key == class_id.encode(), timeout=60)
    return event


def _stored(event: ConsumedEvent) -> dict[str, Any]:
    metadata = event.envelope.metadata
    assert metadata is not None
    assert VALID_TRACEPARENT.fullmatch(metadata["traceparent"])
    return metadata


def _trace_id(traceparent: str | bytes) -> str:
    text = traceparent.decode() if isinstance(traceparent, bytes) else traceparent
    return text.split("-")[1]


def _hex(number: int, digits: int) -> str:
    return f"{number:0{digits}x}"


async def _spans_of(exporter: InMemorySpanExporter, trace_id: str) -> list[ReadableSpan]:
    def of_trace() -> list[ReadableSpan]:
        return [
            span
            for span in exporter.get_finished_spans()
            if span.context is not None and _hex(span.context.trace_id, 32) == trace_id
        ]

    async def published() -> bool:
        return any(span.kind is SpanKind.PRODUCER for span in of_trace())

    await wait_until(published, timeout=60)
    return of_trace()


# -- tracing off (the default): the context is carried, nothing is recorded ------------------


async def test_the_callers_trace_context_reaches_metadata_and_kafka_headers(
    client: TestClientProtocol, headers: dict[str, str], events: EventCollector
) -> None:
    class_id = await _create_class(client, headers, traceparent=TRACEPARENT, tracestate=TRACESTATE)

    event = await _event_of(events, class_id)
    assert _stored(event) == {"traceparent": TRACEPARENT, "tracestate": TRACESTATE}
    assert event.headers["traceparent"] == TRACEPARENT.encode()
    assert event.headers["tracestate"] == TRACESTATE.encode()


async def test_a_request_without_trace_context_starts_a_new_trace(
    client: TestClientProtocol, headers: dict[str, str], events: EventCollector
) -> None:
    first = await _event_of(events, await _create_class(client, headers))
    second = await _event_of(events, await _create_class(client, headers))

    traceparents = [_stored(event)["traceparent"] for event in (first, second)]
    assert [event.headers["traceparent"].decode() for event in (first, second)] == traceparents
    assert _trace_id(traceparents[0]) != _trace_id(traceparents[1])  # one trace per request
    assert "tracestate" not in first.headers
    assert "tracestate" not in _stored(first)


@pytest.mark.parametrize("malformed", MALFORMED)
async def test_a_malformed_traceparent_is_ignored_for_a_new_trace(
    client: TestClientProtocol, headers: dict[str, str], events: EventCollector, malformed: str
) -> None:
    class_id = await _create_class(client, headers, traceparent=malformed, tracestate=TRACESTATE)

    event = await _event_of(events, class_id)
    stored = _stored(event)
    assert stored["traceparent"] != malformed
    assert _trace_id(stored["traceparent"]) != TRACE_ID
    assert "tracestate" not in stored  # a tracestate without a valid traceparent is dropped
    assert event.headers["traceparent"] == stored["traceparent"].encode()


async def test_nothing_is_logged_about_tracing_when_it_is_off(
    client: TestClientProtocol,
    headers: dict[str, str],
    events: EventCollector,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG):
        class_id = await _create_class(client, headers, traceparent=MALFORMED[0])
        await _event_of(events, class_id)

    about_tracing = [
        record
        for record in caplog.records
        if record.name.startswith(("opentelemetry", "services.class_management_service.tracing"))
        or any(word in record.getMessage().lower() for word in ABOUT_TRACING)
    ]
    assert about_tracing == []


# -- tracing on: request, statements and publish share one trace ---------------------------


async def test_request_statements_and_publish_share_the_callers_trace(
    traced: tuple[Quart, InMemorySpanExporter], headers: dict[str, str], events: EventCollector
) -> None:
    app, exporter = traced
    class_id = await _create_class(
        app.test_client(), headers, traceparent=TRACEPARENT, tracestate=TRACESTATE
    )

    spans = await _spans_of(exporter, TRACE_ID)
    (server,) = [span for span in spans if span.kind is SpanKind.SERVER]
    statements = [span for span in spans if span.attributes.get("db.system") == "postgresql"]
    publishes = [span for span in spans if span.kind is SpanKind.PRODUCER]
    # The change's event and its state record: both sent in the caller's trace.
    (publish,) = [
        span
        for span in publishes
        if span.attributes.get("messaging.destination.name") == "huleedu.class.created.v1"
    ]
    assert server.parent is not None and _hex(server.parent.span_id, 16) == PARENT_SPAN_ID
    assert statements, "the request's INSERT is a span of its trace"
    assert all(span.parent == server.context for span in statements)
    assert publish.attributes["messaging.destination.name"] == "huleedu.class.created.v1"
    assert server.context is not None and publish.context is not None

    event = await _event_of(events, class_id)
    stored = _stored(event)
    # The envelope keeps the request's span; the headers carry the publish span, its child.
    assert stored == {
        "traceparent": f"00-{TRACE_ID}-{_hex(server.context.span_id, 16)}-01",
        "tracestate": TRACESTATE,
    }
    assert publish.parent is not None and publish.parent.span_id == server.context.span_id
    assert event.headers["traceparent"] == (
        f"00-{TRACE_ID}-{_hex(publish.context.span_id, 16)}-01".encode()
    )
    assert event.headers["tracestate"] == TRACESTATE.encode()
    assert publish.attributes["messaging.message.id"] == str(event.envelope.event_id)


@pytest.mark.parametrize("traceparent", [None, MALFORMED[0]])
async def test_with_tracing_a_request_without_valid_context_gets_one_new_trace(
    traced: tuple[Quart, InMemorySpanExporter],
    headers: dict[str, str],
    events: EventCollector,
    traceparent: str | None,
) -> None:
    app, exporter = traced
    trace = {} if traceparent is None else {"traceparent": traceparent}
    class_id = await _create_class(app.test_client(), headers, **trace)

    event = await _event_of(events, class_id)
    trace_id = _trace_id(_stored(event)["traceparent"])
    assert trace_id != TRACE_ID
    assert _trace_id(event.headers["traceparent"]) == trace_id
    spans = await _spans_of(exporter, trace_id)
    (server,) = [span for span in spans if span.kind is SpanKind.SERVER]
    assert server.parent is None  # a root: nothing of the malformed header was kept
    assert any(span.attributes.get("db.system") == "postgresql" for span in spans)


async def test_the_relays_own_statements_are_not_traced(
    traced: tuple[Quart, InMemorySpanExporter], headers: dict[str, str], events: EventCollector
) -> None:
    app, exporter = traced
    class_id = await _create_class(app.test_client(), headers, traceparent=TRACEPARENT)
    await _event_of(events, class_id)
    await _spans_of(exporter, TRACE_ID)

    outside = [
        span
        for span in exporter.get_finished_spans()
        if span.context is not None and _hex(span.context.trace_id, 32) != TRACE_ID
    ]
    # The relay claimed and deleted the row (and polls), the start-up pinged the database:
    # none of that is a trace of its own.
    assert [(span.name, span.attributes.get("db.statement")) for span in outside] == []
