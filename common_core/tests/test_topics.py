from __future__ import annotations

import re
import subprocess
import sys

import pytest
from common_core.events import topics
from common_core.events.class_events import (
    ClassCreatedV1,
    ClassDeletedV1,
    ClassUpdatedV1,
    StudentCreatedV1,
    StudentDeletedV1,
    StudentUpdatedV1,
)
from common_core.events.essay_events import EssayLinkedV1, EssayUnlinkedV1
from common_core.events.state_events import ClassStateV1, StudentStateV1
from common_core.events.topics import (
    ALL_TOPICS,
    CHANGE_TOPICS,
    COMPACTED_TOPICS,
    EVENT_BY_TOPIC,
    STATE_TOPICS,
    TOPIC_BY_EVENT,
    TOPIC_CONFIGS,
    TOPICS,
    UnknownEventError,
    event_class_for,
    topic_for,
    topic_spec,
)
from pydantic import BaseModel

EXPECTED = [
    ("CLASS_CREATED_TOPIC", "huleedu.class.created.v1", ClassCreatedV1),
    ("CLASS_UPDATED_TOPIC", "huleedu.class.updated.v1", ClassUpdatedV1),
    ("CLASS_DELETED_TOPIC", "huleedu.class.deleted.v1", ClassDeletedV1),
    ("STUDENT_CREATED_TOPIC", "huleedu.class.student.created.v1", StudentCreatedV1),
    ("STUDENT_UPDATED_TOPIC", "huleedu.class.student.updated.v1", StudentUpdatedV1),
    ("STUDENT_DELETED_TOPIC", "huleedu.class.student.deleted.v1", StudentDeletedV1),
    ("ESSAY_LINKED_TOPIC", "huleedu.class.essay.linked.v1", EssayLinkedV1),
    ("ESSAY_UNLINKED_TOPIC", "huleedu.class.essay.unlinked.v1", EssayUnlinkedV1),
    ("CLASS_STATE_TOPIC", "huleedu.class.state.v1", ClassStateV1),
    ("STUDENT_STATE_TOPIC", "huleedu.class.student.state.v1", StudentStateV1),
]
STATE = {"huleedu.class.state.v1", "huleedu.class.student.state.v1"}


@pytest.mark.parametrize(("constant", "topic", "event_cls"), EXPECTED)
def test_topic_constants_and_their_event_classes(
    constant: str, topic: str, event_cls: type[BaseModel]
) -> None:
    assert getattr(topics, constant) == topic
    assert TOPIC_BY_EVENT[event_cls] == topic
    assert topic_for(event_cls) == topic
    assert event_class_for(topic) is event_cls
    assert EVENT_BY_TOPIC[topic] is event_cls


def test_all_topics_lists_every_topic_in_order() -> None:
    assert list(ALL_TOPICS) == [topic for _, topic, _ in EXPECTED]
    assert isinstance(ALL_TOPICS, tuple)


def test_every_event_class_has_exactly_one_topic_and_every_topic_one_class() -> None:
    assert set(TOPIC_BY_EVENT) == {event_cls for _, _, event_cls in EXPECTED}
    assert len(set(TOPIC_BY_EVENT.values())) == len(TOPIC_BY_EVENT) == len(ALL_TOPICS)
    assert set(TOPIC_BY_EVENT.values()) == set(ALL_TOPICS)
    assert len(set(ALL_TOPICS)) == len(ALL_TOPICS)
    assert {topic: cls for cls, topic in TOPIC_BY_EVENT.items()} == dict(EVENT_BY_TOPIC)


def test_only_the_state_topics_are_compacted() -> None:
    assert set(STATE_TOPICS) == set(COMPACTED_TOPICS) == STATE
    assert list(CHANGE_TOPICS) == [topic for _, topic, _ in EXPECTED if topic not in STATE]
    for topic in ALL_TOPICS:
        expected = {"cleanup.policy": "compact"} if topic in STATE else {}
        assert dict(TOPIC_CONFIGS[topic]) == dict(topic_spec(topic).config) == expected
        assert topic_spec(topic).compacted is (topic in STATE)
    assert [spec.name for spec in TOPICS] == list(ALL_TOPICS)


def test_every_topic_name_follows_the_platform_scheme() -> None:
    for topic in ALL_TOPICS:
        assert re.fullmatch(r"huleedu\.class(\.[a-z]+){1,2}\.v1", topic), topic


def test_the_key_field_is_a_uuid_field_of_the_event(all_sample_events: list[BaseModel]) -> None:
    for event in all_sample_events:
        spec = topic_spec(topic_for(event))
        assert spec.key_field in type(event).model_fields
        assert str(getattr(event, spec.key_field)) == event.aggregate_id  # type: ignore[attr-defined]


def test_topic_spec_of_an_unknown_topic_raises_clear_error() -> None:
    with pytest.raises(UnknownEventError, match="unknown event type 'nope'"):
        topic_spec("nope")


def test_topic_for_accepts_an_instance(all_sample_events: list[BaseModel]) -> None:
    for event in all_sample_events:
        assert topic_for(event) == topic_for(type(event))
        assert event_class_for(topic_for(event)) is type(event)


def test_mappings_are_read_only() -> None:
    with pytest.raises(TypeError):
        TOPIC_BY_EVENT[BaseModel] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        EVENT_BY_TOPIC["x"] = BaseModel  # type: ignore[index]


class _NotAnEvent(BaseModel):
    value: int = 0


@pytest.mark.parametrize("event", [_NotAnEvent, _NotAnEvent()])
def test_topic_for_unregistered_event_raises_clear_error(event: object) -> None:
    with pytest.raises(UnknownEventError) as excinfo:
        topic_for(event)  # type: ignore[arg-type]

    assert isinstance(excinfo.value, KeyError)
    message = str(excinfo.value)
    assert "_NotAnEvent is not a registered event class" in message
    assert "ClassCreatedV1" in message


def test_subclass_of_an_event_is_not_registered() -> None:
    class ClassCreatedV1Subclass(ClassCreatedV1):
        pass

    with pytest.raises(UnknownEventError):
        topic_for(ClassCreatedV1Subclass)


@pytest.mark.parametrize("bad", ["huleedu.class.created.v2", "", "ClassCreatedV1"])
def test_event_class_for_unknown_topic_raises_clear_error(bad: str) -> None:
    with pytest.raises(UnknownEventError) as excinfo:
        event_class_for(bad)

    message = str(excinfo.value)
    assert message.startswith(f"unknown event type {bad!r}")
    assert "huleedu.class.created.v1" in message


def test_running_the_module_lists_every_topic() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "common_core.events.topics"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert result.stdout.splitlines() == list(ALL_TOPICS)
    assert result.stderr == ""
