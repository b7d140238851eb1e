"""The one module naming every Kafka topic, and which event class each topic carries.

An envelope's ``event_type`` equals the topic name. ``python -m common_core.events.topics``
prints every topic, one per line.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from pydantic import BaseModel

from common_core.events.class_events import (
    ClassCreatedV1,
    ClassDeletedV1,
    ClassUpdatedV1,
    StudentCreatedV1,
    StudentDeletedV1,
    StudentUpdatedV1,
)

__all__ = [
    "ALL_TOPICS",
    "CLASS_CREATED_TOPIC",
    "CLASS_DELETED_TOPIC",
    "CLASS_UPDATED_TOPIC",
    "EVENT_BY_TOPIC",
    "STUDENT_CREATED_TOPIC",
    "STUDENT_DELETED_TOPIC",
    "STUDENT_UPDATED_TOPIC",
    "TOPIC_BY_EVENT",
    "UnknownEventError",
    "event_class_for",
    "topic_for",
]

CLASS_CREATED_TOPIC = "huleedu.class.created.v1"
CLASS_UPDATED_TOPIC = "huleedu.class.updated.v1"
CLASS_DELETED_TOPIC = "huleedu.class.deleted.v1"
STUDENT_CREATED_TOPIC = "huleedu.class.student.created.v1"
STUDENT_UPDATED_TOPIC = "huleedu.class.student.updated.v1"
STUDENT_DELETED_TOPIC = "huleedu.class.student.deleted.v1"

_REGISTRY: tuple[tuple[str, type[BaseModel]], ...] = (
    (CLASS_CREATED_TOPIC, ClassCreatedV1),
    (CLASS_UPDATED_TOPIC, ClassUpdatedV1),
    (CLASS_DELETED_TOPIC, ClassDeletedV1),
    (STUDENT_CREATED_TOPIC, StudentCreatedV1),
    (STUDENT_UPDATED_TOPIC, StudentUpdatedV1),
    (STUDENT_DELETED_TOPIC, StudentDeletedV1),
)

ALL_TOPICS: tuple[str, ...] = tuple(topic for topic, _ in _REGISTRY)
"""Every topic, in a stable order."""

TOPIC_BY_EVENT: Mapping[type[BaseModel], str] = MappingProxyType(
    {event_cls: topic for topic, event_cls in _REGISTRY}
)
"""Event class -> the topic it is published on (read-only)."""

EVENT_BY_TOPIC: Mapping[str, type[BaseModel]] = MappingProxyType(
    {topic: event_cls for topic, event_cls in _REGISTRY}
)
"""Topic (== envelope ``event_type``) -> the event class it carries (read-only)."""

# One event class per topic and one topic per event class, checked once at import.
if not (len(_REGISTRY) == len(TOPIC_BY_EVENT) == len(EVENT_BY_TOPIC)):  # pragma: no cover
    raise RuntimeError("topic registry is not one-to-one")


class UnknownEventError(KeyError):
    """An event class or topic that is not registered in this module."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        # KeyError would otherwise show the repr() of its argument, quotes and all.
        return self.message


def topic_for(event: type[BaseModel] | BaseModel) -> str:
    """The topic of an event class or event instance.

    Raises :class:`UnknownEventError` if the class is not registered.
    """
    event_cls = event if isinstance(event, type) else type(event)
    try:
        return TOPIC_BY_EVENT[event_cls]
    except KeyError:
        known = ", ".join(cls.__name__ for cls in TOPIC_BY_EVENT)
        raise UnknownEventError(
            f"{event_cls.__qualname__} is not a registered event class (known: {known})"
        ) from None


def event_class_for(topic_or_event_type: str) -> type[BaseModel]:
    """The event class carried by a topic (equivalently, an envelope ``event_type``).

    Raises :class:`UnknownEventError` if the topic is not registered.
    """
    try:
        return EVENT_BY_TOPIC[topic_or_event_type]
    except (KeyError, TypeError):
        raise UnknownEventError(
            f"unknown event type {topic_or_event_type!r} (known: {', '.join(ALL_TOPICS)})"
        ) from None


if __name__ == "__main__":
    for _topic in ALL_TOPICS:
        print(_topic)
