"""Logging: readable text by default, one JSON object per line with LOG_FORMAT=json.

Every line, tracebacks included, has the passwords of URLs in it masked."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from services.class_management_service.config import LogFormat, Settings
from services.class_management_service.secrets_masking import mask_url_passwords

_STANDARD_ATTRIBUTES = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with ANSI colour escapes
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {
            key: value for key, value in record.__dict__.items() if key not in _STANDARD_ATTRIBUTES
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return mask_url_passwords(json.dumps(entry, default=str))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        correlation_id = getattr(record, "correlation_id", None)
        user_id = getattr(record, "user_id", None)
        if correlation_id:
            line += f" correlation_id={correlation_id} user_id={user_id}"
        return mask_url_passwords(line)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if settings.LOG_FORMAT is LogFormat.JSON else TextFormatter()
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.LOG_LEVEL.upper())
    # Libraries speak only when something is wrong.
    for noisy in ("uvicorn.access", "sqlalchemy.engine", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # aiokafka logs an ERROR on every reconnect attempt while the broker is down. The relay
    # reports an outage itself (one WARNING when it starts, one INFO when it ends), and
    # /healthz names it; every failure aiokafka raises reaches the relay as an exception.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
