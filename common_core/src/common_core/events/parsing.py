"""Turning a Kafka message value back into a typed :class:`EventEnvelope`."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from common_core.events.envelope import EventEnvelope, envelope_class
from common_core.events.topics import ALL_TOPICS, UnknownEventError, event_class_for

__all__ = ["EventParseError", "parse_event_message"]


class EventParseError(ValueError):
    """A message that is not a valid envelope of a known event.

    ``event_type`` is the message's event type when it could be read, else ``None``.
    """

    def __init__(self, message: str, *, event_type: str | None = None) -> None:
        super().__init__(message)
        self.event_type = event_type


def _summarise(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in error["loc"]) or "<envelope>"
        parts.append(f"{location}: {error['msg']}")
    return f"{exc.error_count()} validation error(s): " + "; ".join(parts)


def parse_event_message(value: bytes | str) -> EventEnvelope[Any]:
    """Parse a serialised envelope into ``EventEnvelope[EventClass]`` for its ``event_type``.

    ``.data`` of the result is an instance of the event class registered for the topic.
    Raises :class:`EventParseError` for invalid JSON, a missing or unknown ``event_type``, or
    an envelope or payload that fails validation.
    """
    try:
        raw = json.loads(value)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventParseError(f"event message is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EventParseError(f"event message must be a JSON object, got {type(raw).__name__}")
    if "event_type" not in raw:
        raise EventParseError("event message has no 'event_type'")
    event_type = raw["event_type"]
    if not isinstance(event_type, str):
        raise EventParseError(
            f"event message 'event_type' must be a string, got {type(event_type).__name__}"
        )
    try:
        event_cls = event_class_for(event_type)
    except UnknownEventError:
        raise EventParseError(
            f"unknown event_type {event_type!r} (known: {', '.join(ALL_TOPICS)})",
            event_type=event_type,
        ) from None
    try:
        return envelope_class(event_cls).model_validate_json(value)
    except ValidationError as exc:
        raise EventParseError(
            f"invalid {event_type!r} event ({event_cls.__name__}): {_summarise(exc)}",
            event_type=event_type,
        ) from exc
