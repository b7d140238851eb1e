"""The trace context an event stores and the headers the relay sends from it."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from services.class_management_service.tracing import (
    start_tracing,
    stop_tracing,
    trace_headers,
    trace_metadata,
)

VALID = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-01")


def test_outside_any_request_an_event_gets_a_new_trace_each_time() -> None:
    first, second = trace_metadata(), trace_metadata()

    assert list(first) == ["traceparent"]  # no tracestate of a new trace
    assert VALID.fullmatch(first["traceparent"])
    assert first["traceparent"].split("-")[1] != second["traceparent"].split("-")[1]


def test_headers_are_the_stored_trace_context() -> None:
    stored = {"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "tracestate": "k=v"}

    assert trace_headers({**stored, "other": "x"}) == [
        ("traceparent", stored["traceparent"].encode()),
        ("tracestate", b"k=v"),
    ]


@pytest.mark.parametrize(
    "metadata",
    [None, [], "traceparent", {}, {"traceparent": 7}, {"traceparent": ""}, {"tracestate": None}],
)
def test_rows_without_a_usable_trace_context_get_no_trace_headers(metadata: Any) -> None:
    # Rows written before tracing, or by another producer's envelope: nothing is invented.
    assert trace_headers(metadata) == []


def test_tracing_is_off_and_silent_without_an_otlp_endpoint(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    with caplog.at_level(logging.DEBUG):
        assert start_tracing() is False
        stop_tracing()

    assert caplog.records == []


def test_an_otlp_endpoint_turns_tracing_on_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://user:secret@127.0.0.1:9/")
    with caplog.at_level(logging.INFO, logger="services.class_management_service.tracing"):
        try:
            assert start_tracing() is True
        finally:
            stop_tracing()  # nothing was recorded: nothing to send

    (line,) = [record.getMessage() for record in caplog.records]
    assert "127.0.0.1:9" in line
    assert "secret" not in line
