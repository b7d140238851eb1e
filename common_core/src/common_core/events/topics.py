"""The one module naming every Kafka topic, which event class each carries and how it is kept.

An envelope's ``event_type`` equals the topic name. Change topics (one per kind of change,
including the essay links) keep every event; the two state topics are compacted
(``cleanup.policy=compact``): per key, Kafka keeps at least the latest record.
``python -m common_core.events.topics`` prints every topic, one per line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
from common_core.events.essay_events import EssayLinkedV1, EssayUnlinkedV1
from common_core.events.keyed import KeyedEvent
from common_core.events.state_events import ClassStateV1, StudentStateV1

__all__ = [
    "ALL_TOPICS",
    "CHANGE_TOPICS",
    "CLASS_CREATED_TOPIC",
    "CLASS_DELETED_TOPIC",
    "CLASS_STATE_TOPIC",
    "CLASS_UPDATED_TOPIC",
    "COMPACTED_TOPICS",
    "ESSAY_LINKED_TOPIC",
    "ESSAY_UNLINKED_TOPIC",
    "EVENT_BY_TOPIC",
    "STATE_TOPICS",
    "STUDENT_CREATED_TOPIC",
    "STUDENT_DELETED_TOPIC",
    "STUDENT_STATE_TOPIC",
    "STUDENT_UPDATED_TOPIC",
    "TOPICS",
    "TOPIC_BY_EVENT",
    "TOPIC_CONFIGS",
    "TopicSpec",
    "UnknownEventError",
    "event_class_for",
    "topic_for",
    "topic_spec",
]

CLASS_CREATED_TOPIC = "huleedu.class.created.v1"
CLASS_UPDATED_TOPIC = "huleedu.class.updated.v1"
CLASS_DELETED_TOPIC = "huleedu.class.deleted.v1"
STUDENT_CREATED_TOPIC = "huleedu.class.student.created.v1"
STUDENT_UPDATED_TOPIC = "huleedu.class.student.updated.v1"
STUDENT_DELETED_TOPIC = "huleedu.class.student.deleted.v1"
ESSAY_LINKED_TOPIC = "huleedu.class.essay.linked.v1"
ESSAY_UNLINKED_TOPIC = "huleedu.class.essay.unlinked.v1"
CLASS_STATE_TOPIC = "huleedu.class.state.v1"
STUDENT_STATE_TOPIC = "huleedu.class.student.state.v1"

_COMPACT = MappingProxyType({"cleanup.policy": "compact"})
_NO_CONFIG: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: its name, the event class its envelopes carry and its Kafka key."""

    name: str
    event_class: type[KeyedEvent]
    compacted: bool = False
    """A state topic: compacted, and a null value (tombstone) marks a deleted aggregate."""

    @property
    def key_field(self) -> str:
        """The ``data`` field whose value (as a string) is every message's Kafka key."""
        return self.event_class.KEY_FIELD

    @property
    def config(self) -> Mapping[str, str]:
        """The topic-level configuration it is created with (``cleanup.policy``)."""
        return _COMPACT if self.compacted else _NO_CONFIG


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(CLASS_CREATED_TOPIC, ClassCreatedV1),
    TopicSpec(CLASS_UPDATED_TOPIC, ClassUpdatedV1),
    TopicSpec(CLASS_DELETED_TOPIC, ClassDeletedV1),
    TopicSpec(STUDENT_CREATED_TOPIC, StudentCreatedV1),
    TopicSpec(STUDENT_UPDATED_TOPIC, StudentUpdatedV1),
    TopicSpec(STUDENT_DELETED_TOPIC, StudentDeletedV1),
    TopicSpec(ESSAY_LINKED_TOPIC, EssayLinkedV1),
    TopicSpec(ESSAY_UNLINKED_TOPIC, EssayUnlinkedV1),
    TopicSpec(CLASS_STATE_TOPIC, ClassStateV1, compacted=True),
    TopicSpec(STUDENT_STATE_TOPIC, StudentStateV1, compacted=True),
)
"""Every topic, in a stable order: the change topics, then the state topics."""

ALL_TOPICS: tuple[str, ...] = tuple(spec.name for spec in TOPICS)
"""Every topic's name, in the order of :data:`TOPICS`."""

CHANGE_TOPICS: tuple[str, ...] = tuple(spec.name for spec in TOPICS if not spec.compacted)
"""The topics of change events (one per kind of change), which keep every event."""

STATE_TOPICS: tuple[str, ...] = tuple(spec.name for spec in TOPICS if spec.compacted)
"""The compacted topics of the aggregates' latest states."""

COMPACTED_TOPICS: frozenset[str] = frozenset(STATE_TOPICS)
"""The topics created with ``cleanup.policy=compact``."""

TOPIC_CONFIGS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {spec.name: spec.config for spec in TOPICS}
)
"""Topic -> the topic-level configuration it is created with (read-only)."""

_SPEC_BY_TOPIC: Mapping[str, TopicSpec] = MappingProxyType({spec.name: spec for spec in TOPICS})

TOPIC_BY_EVENT: Mapping[type[BaseModel], str] = MappingProxyType(
    {spec.event_class: spec.name for spec in TOPICS}
)
"""Event class -> the topic it is published on (read-only)."""

EVENT_BY_TOPIC: Mapping[str, type[BaseModel]] = MappingProxyType(
    {spec.name: spec.event_class for spec in TOPICS}
)
"""Topic (== envelope ``event_type``) -> the event class it carries (read-only)."""

# One event class per topic and one topic per event class, checked once at import.
if not (len(TOPICS) == len(TOPIC_BY_EVENT) == len(EVENT_BY_TOPIC)):  # pragma: no cover
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
    return topic_spec(topic_or_event_type).event_class


def topic_spec(topic: str) -> TopicSpec:
    """The registry's entry of a topic (equivalently, an envelope ``event_type``).

    Raises :class:`UnknownEventError` if the topic is not registered.
    """
    try:
        return _SPEC_BY_TOPIC[topic]
    except (KeyError, TypeError):
        raise UnknownEventError(
            f"unknown event type {topic!r} (known: {', '.join(ALL_TOPICS)})"
        ) from None


if __name__ == "__main__":
    for _topic in ALL_TOPICS:
        print(_topic)
