"""JSON log lines carry no ANSI escapes (uvicorn adds a coloured copy of its messages)."""

from __future__ import annotations

import json
import logging

from services.class_management_service.logging_setup import JsonFormatter


def test_json_lines_leave_out_uvicorns_coloured_copy() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, "Started", None, None)
    record.color_message = "\x1b[32mStarted\x1b[0m"
    record.route = "/healthz"
    line = JsonFormatter().format(record)
    assert "\x1b" not in line
    entry = json.loads(line)
    assert "color_message" not in entry
    assert (entry["message"], entry["route"]) == ("Started", "/healthz")
