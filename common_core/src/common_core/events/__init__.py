"""Events of the platform: the envelope, the event classes, topics and parsing.

Submodules are imported lazily so that ``python -m common_core.events.topics`` runs the
topics module only once; every name below can still be imported from here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from common_core.events.class_events import ClassCreatedV1 as ClassCreatedV1
    from common_core.events.class_events import ClassDeletedV1 as ClassDeletedV1
    from common_core.events.class_events import ClassPreviousV1 as ClassPreviousV1
    from common_core.events.class_events import ClassUpdatedV1 as ClassUpdatedV1
    from common_core.events.class_events import StudentCreatedV1 as StudentCreatedV1
    from common_core.events.class_events import StudentDeletedV1 as StudentDeletedV1
    from common_core.events.class_events import StudentPreviousV1 as StudentPreviousV1
    from common_core.events.class_events import StudentUpdatedV1 as StudentUpdatedV1
    from common_core.events.envelope import EventEnvelope as EventEnvelope
    from common_core.events.envelope import envelope_class as envelope_class
    from common_core.events.envelope import make_envelope as make_envelope
    from common_core.events.essay_events import EssayLinkedV1 as EssayLinkedV1
    from common_core.events.essay_events import EssayUnlinkedV1 as EssayUnlinkedV1
    from common_core.events.parsing import EventParseError as EventParseError
    from common_core.events.parsing import StateRecord as StateRecord
    from common_core.events.parsing import parse_event_message as parse_event_message
    from common_core.events.parsing import parse_state_record as parse_state_record
    from common_core.events.state_events import ClassStateV1 as ClassStateV1
    from common_core.events.state_events import StudentStateV1 as StudentStateV1
    from common_core.events.topics import ALL_TOPICS as ALL_TOPICS
    from common_core.events.topics import CHANGE_TOPICS as CHANGE_TOPICS
    from common_core.events.topics import CLASS_CREATED_TOPIC as CLASS_CREATED_TOPIC
    from common_core.events.topics import CLASS_DELETED_TOPIC as CLASS_DELETED_TOPIC
    from common_core.events.topics import CLASS_STATE_TOPIC as CLASS_STATE_TOPIC
    from common_core.events.topics import CLASS_UPDATED_TOPIC as CLASS_UPDATED_TOPIC
    from common_core.events.topics import COMPACTED_TOPICS as COMPACTED_TOPICS
    from common_core.events.topics import ESSAY_LINKED_TOPIC as ESSAY_LINKED_TOPIC
    from common_core.events.topics import ESSAY_UNLINKED_TOPIC as ESSAY_UNLINKED_TOPIC
    from common_core.events.topics import EVENT_BY_TOPIC as EVENT_BY_TOPIC
    from common_core.events.topics import STATE_TOPICS as STATE_TOPICS
    from common_core.events.topics import STUDENT_CREATED_TOPIC as STUDENT_CREATED_TOPIC
    from common_core.events.topics import STUDENT_DELETED_TOPIC as STUDENT_DELETED_TOPIC
    from common_core.events.topics import STUDENT_STATE_TOPIC as STUDENT_STATE_TOPIC
    from common_core.events.topics import STUDENT_UPDATED_TOPIC as STUDENT_UPDATED_TOPIC
    from common_core.events.topics import TOPIC_BY_EVENT as TOPIC_BY_EVENT
    from common_core.events.topics import TOPIC_CONFIGS as TOPIC_CONFIGS
    from common_core.events.topics import TOPICS as TOPICS
    from common_core.events.topics import TopicSpec as TopicSpec
    from common_core.events.topics import UnknownEventError as UnknownEventError
    from common_core.events.topics import event_class_for as event_class_for
    from common_core.events.topics import topic_for as topic_for
    from common_core.events.topics import topic_spec as topic_spec

_SUBMODULE_BY_NAME: dict[str, str] = {
    **dict.fromkeys(
        (
            "ClassCreatedV1",
            "ClassDeletedV1",
            "ClassPreviousV1",
            "ClassUpdatedV1",
            "StudentCreatedV1",
            "StudentDeletedV1",
            "StudentPreviousV1",
            "StudentUpdatedV1",
        ),
        "class_events",
    ),
    **dict.fromkeys(
        (
            "EssayLinkedV1",
            "EssayUnlinkedV1",
        ),
        "essay_events",
    ),
    **dict.fromkeys(
        (
            "ClassStateV1",
            "StudentStateV1",
        ),
        "state_events",
    ),
    **dict.fromkeys(
        (
            "EventEnvelope",
            "envelope_class",
            "make_envelope",
        ),
        "envelope",
    ),
    **dict.fromkeys(
        (
            "EventParseError",
            "StateRecord",
            "parse_event_message",
            "parse_state_record",
        ),
        "parsing",
    ),
    **dict.fromkeys(
        (
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
        ),
        "topics",
    ),
}

__all__ = sorted(_SUBMODULE_BY_NAME)

if not TYPE_CHECKING:
    # Hidden from type checkers so that a misspelt import is still an error for them.

    def __getattr__(name: str) -> Any:
        submodule = _SUBMODULE_BY_NAME.get(name)
        if submodule is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{submodule}"), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
