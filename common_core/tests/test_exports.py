from __future__ import annotations

import importlib
from pathlib import Path

import common_core.events
import pytest

import common_core


def test_common_core_reexports() -> None:
    from common_core import enums, names

    assert set(common_core.__all__) == {
        "PersonNameV1",
        "ClassStatus",
        "CourseCode",
        "Language",
        "CourseInfo",
        "COURSES",
        "course_language",
        "course_display_name",
    }
    assert common_core.PersonNameV1 is names.PersonNameV1
    for name in common_core.__all__:
        if name != "PersonNameV1":
            assert getattr(common_core, name) is getattr(enums, name)


EVENT_NAMES = {
    "class_events": [
        "ClassCreatedV1",
        "ClassUpdatedV1",
        "ClassDeletedV1",
        "ClassPreviousV1",
        "StudentCreatedV1",
        "StudentUpdatedV1",
        "StudentDeletedV1",
        "StudentPreviousV1",
    ],
    "essay_events": ["EssayLinkedV1", "EssayUnlinkedV1"],
    "state_events": ["ClassStateV1", "StudentStateV1"],
    "envelope": ["EventEnvelope", "envelope_class", "make_envelope"],
    "parsing": ["EventParseError", "StateRecord", "parse_event_message", "parse_state_record"],
    "topics": [
        "CLASS_CREATED_TOPIC",
        "CLASS_UPDATED_TOPIC",
        "CLASS_DELETED_TOPIC",
        "STUDENT_CREATED_TOPIC",
        "STUDENT_UPDATED_TOPIC",
        "STUDENT_DELETED_TOPIC",
        "ESSAY_LINKED_TOPIC",
        "ESSAY_UNLINKED_TOPIC",
        "CLASS_STATE_TOPIC",
        "STUDENT_STATE_TOPIC",
        "TOPICS",
        "TopicSpec",
        "TOPIC_BY_EVENT",
        "TOPIC_CONFIGS",
        "EVENT_BY_TOPIC",
        "ALL_TOPICS",
        "CHANGE_TOPICS",
        "STATE_TOPICS",
        "COMPACTED_TOPICS",
        "UnknownEventError",
        "topic_for",
        "topic_spec",
        "event_class_for",
    ],
}


@pytest.mark.parametrize(
    ("submodule", "name"),
    [(submodule, name) for submodule, names in EVENT_NAMES.items() for name in names],
)
def test_events_package_reexports(submodule: str, name: str) -> None:
    module = importlib.import_module(f"common_core.events.{submodule}")

    assert getattr(common_core.events, name) is getattr(module, name)
    assert name in common_core.events.__all__
    assert name in dir(common_core.events)


def test_events_package_all_is_exactly_the_reexports() -> None:
    expected = {name for names in EVENT_NAMES.values() for name in names}

    assert set(common_core.events.__all__) == expected


def test_events_package_star_import() -> None:
    namespace: dict[str, object] = {}
    exec("from common_core.events import *", namespace)

    assert namespace["parse_event_message"] is common_core.events.parse_event_message


def test_unknown_events_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchEvent"):
        _ = common_core.events.NoSuchEvent  # type: ignore[attr-defined]


def test_package_is_marked_typed() -> None:
    assert (Path(common_core.__file__).parent / "py.typed").is_file()
