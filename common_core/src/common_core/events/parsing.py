"""Turning Kafka records back into typed :class:`EventEnvelope` objects.

The readers are tolerant of what a newer producer may send within v1: fields they do not
know are ignored, and course codes and class statuses they do not know are kept as plain
strings. They raise :class:`EventParseError` only for what they cannot read at all: not
JSON, no or an unknown ``event_type``, another ``schema_version``, or a known field whose
value is invalid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from common_core.events.envelope import EventEnvelope, envelope_class
from common_core.events.topics import (
    ALL_TOPICS,
    STATE_TOPICS,
    UnknownEventError,
    event_class_for,
    topic_spec,
)

__all__ = ["EventParseError", "StateRecord", "parse_event_message", "parse_state_record"]


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


def parse_event_message(value: bytes | str | None) -> EventEnvelope[Any]:
    """Parse a serialised envelope into ``EventEnvelope[EventClass]`` for its ``event_type``.

    ``.data`` of the result is an instance of the event class registered for the topic.
    Raises :class:`EventParseError` for no value (a tombstone: read state topics with
    :func:`parse_state_record`), invalid JSON, a missing or unknown ``event_type``, or an
    envelope or payload that fails validation.
    """
    if value is None:
        raise EventParseError(
            "event message has no value (a tombstone); read the records of a state topic "
            "with parse_state_record"
        )
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


@dataclass(frozen=True, slots=True)
class StateRecord:
    """One record of a state topic: an aggregate's latest state, or its deletion."""

    topic: str
    aggregate_id: str
    """The record's key: the class id or student id."""
    envelope: EventEnvelope[Any] | None
    """The envelope of the aggregate's state; ``None`` for a tombstone (it was deleted)."""

    @property
    def deleted(self) -> bool:
        """Whether this record is a tombstone: the aggregate no longer exists."""
        return self.envelope is None

    @property
    def state(self) -> BaseModel | None:
        """The aggregate's state (``ClassStateV1`` or ``StudentStateV1``); ``None`` if deleted."""
        return None if self.envelope is None else self.envelope.data


def parse_state_record(
    topic: str, key: bytes | str | None, value: bytes | str | None
) -> StateRecord:
    """Read one record of a compacted state topic (``huleedu.class.state.v1``, ...).

    A null ``value`` is a tombstone: the aggregate named by ``key`` was deleted, and the
    result's ``envelope`` is ``None``. Otherwise the value is parsed like
    :func:`parse_event_message`. Raises :class:`EventParseError` when ``topic`` is not a
    state topic, the key is missing or not UTF-8, the value cannot be parsed, or the
    envelope belongs to another topic or another aggregate than the key.
    """
    try:
        spec = topic_spec(topic)
    except UnknownEventError as exc:
        raise EventParseError(str(exc), event_type=topic) from None
    if not spec.compacted:
        raise EventParseError(
            f"{topic!r} is not a state topic (state topics: {', '.join(STATE_TOPICS)}); "
            "parse its messages with parse_event_message",
            event_type=topic,
        )
    if key is None:
        raise EventParseError(f"a record of {topic!r} has no key", event_type=topic)
    try:
        aggregate_id = key.decode() if isinstance(key, bytes) else key
    except UnicodeDecodeError as exc:
        raise EventParseError(f"a key of {topic!r} is not UTF-8: {exc}", event_type=topic) from exc
    if value is None:
        return StateRecord(topic=topic, aggregate_id=aggregate_id, envelope=None)
    envelope = parse_event_message(value)
    if envelope.event_type != topic:
        raise EventParseError(
            f"a record of {topic!r} holds a {envelope.event_type!r} event",
            event_type=envelope.event_type,
        )
    if envelope.data.aggregate_id != aggregate_id:
        raise EventParseError(
            f"a record of {topic!r} keyed {aggregate_id!r} holds the state of "
            f"{envelope.data.aggregate_id!r}",
            event_type=topic,
        )
    return StateRecord(topic=topic, aggregate_id=aggregate_id, envelope=envelope)
