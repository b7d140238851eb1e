from __future__ import annotations

import gc
import json
import weakref
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from common_core.events.class_events import ClassCreatedV1, ClassDeletedV1
from common_core.events.envelope import EventEnvelope, envelope_class, make_envelope
from common_core.events.topics import CLASS_DELETED_TOPIC, UnknownEventError, topic_for
from pydantic import BaseModel, ValidationError

CLASS_ID = UUID("6f1c7a52-3a5e-4c4e-9f39-0d4f2b1d9a01")


def _deleted() -> ClassDeletedV1:
    return ClassDeletedV1(class_id=CLASS_ID, user_id="teacher-1", version=3)


def _envelope_fields(**overrides: Any) -> dict[str, Any]:
    return {
        "event_type": CLASS_DELETED_TOPIC,
        "source_service": "class_management_service",
        "data": _deleted(),
        **overrides,
    }


def test_defaults() -> None:
    before = datetime.now(UTC)
    envelope = EventEnvelope[ClassDeletedV1](**_envelope_fields())
    after = datetime.now(UTC)

    assert envelope.event_id.version == 4
    assert envelope.correlation_id.version == 4
    assert envelope.event_id != envelope.correlation_id
    assert envelope.schema_version == 1
    assert envelope.metadata is None
    assert envelope.event_timestamp.utcoffset() == timedelta(0)
    assert before <= envelope.event_timestamp <= after


def test_default_ids_differ_between_envelopes() -> None:
    first = EventEnvelope[ClassDeletedV1](**_envelope_fields())
    second = EventEnvelope[ClassDeletedV1](**_envelope_fields())

    assert first.event_id != second.event_id
    assert first.correlation_id != second.correlation_id


def test_make_envelope_sets_event_type_from_the_topic(sample_event: BaseModel) -> None:
    envelope = make_envelope(sample_event, source_service="class_management_service")

    assert envelope.event_type == topic_for(sample_event)
    assert envelope.data is sample_event
    assert envelope.source_service == "class_management_service"
    expected_cls: object = EventEnvelope[type(sample_event)]  # type: ignore[misc]
    assert type(envelope) is expected_cls
    assert envelope.event_id.version == 4
    assert envelope.correlation_id.version == 4


def test_make_envelope_uses_given_ids_and_metadata() -> None:
    event_id, correlation_id = uuid4(), uuid4()

    envelope = make_envelope(
        _deleted(),
        source_service="svc",
        correlation_id=correlation_id,
        metadata={"trace": "abc", "attempt": 2},
        event_id=event_id,
    )

    assert envelope.event_id == event_id
    assert envelope.correlation_id == correlation_id
    assert envelope.metadata == {"trace": "abc", "attempt": 2}


def test_make_envelope_rejects_unregistered_event() -> None:
    class NotAnEvent(BaseModel):
        x: int = 1

    with pytest.raises(UnknownEventError, match="NotAnEvent"):
        make_envelope(NotAnEvent(), source_service="svc")


def test_naive_timestamp_is_rejected() -> None:
    with pytest.raises(ValidationError) as excinfo:
        EventEnvelope[ClassDeletedV1](**_envelope_fields(event_timestamp=datetime(2025, 1, 1)))

    assert excinfo.value.errors()[0]["loc"] == ("event_timestamp",)
    assert excinfo.value.errors()[0]["type"] == "timezone_aware"


def test_naive_timestamp_string_is_rejected() -> None:
    with pytest.raises(ValidationError):
        EventEnvelope[ClassDeletedV1](**_envelope_fields(event_timestamp="2025-01-01T12:00:00"))


def test_aware_timestamp_is_converted_to_utc() -> None:
    stockholm_summer = timezone(timedelta(hours=2))
    local = datetime(2025, 6, 1, 14, 30, tzinfo=stockholm_summer)

    envelope = EventEnvelope[ClassDeletedV1](**_envelope_fields(event_timestamp=local))

    assert envelope.event_timestamp == local
    assert envelope.event_timestamp.tzinfo is UTC
    assert (envelope.event_timestamp.hour, envelope.event_timestamp.minute) == (12, 30)


@pytest.mark.parametrize("version", [2, 0, "1", "2"])
def test_schema_version_other_than_1_is_rejected(version: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        EventEnvelope[ClassDeletedV1](**_envelope_fields(schema_version=version))

    assert excinfo.value.errors()[0]["loc"] == ("schema_version",)


@pytest.mark.parametrize("source", ["", "   "])
def test_blank_source_service_is_rejected(source: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        EventEnvelope[ClassDeletedV1](**_envelope_fields(source_service=source))

    assert excinfo.value.errors()[0]["loc"] == ("source_service",)


@pytest.mark.parametrize("field", ["event_id", "correlation_id"])
def test_bad_uuids_are_rejected(field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        EventEnvelope[ClassDeletedV1](**_envelope_fields(**{field: "not-a-uuid"}))

    assert excinfo.value.errors()[0]["loc"] == (field,)


def test_event_type_must_match_the_data() -> None:
    with pytest.raises(ValidationError, match="does not match"):
        EventEnvelope[ClassDeletedV1](**_envelope_fields(event_type="huleedu.class.created.v1"))


def test_data_is_validated_into_the_event_class() -> None:
    envelope = EventEnvelope[ClassDeletedV1](
        **_envelope_fields(data={"class_id": str(CLASS_ID), "user_id": "u", "version": 7})
    )

    assert envelope.data == ClassDeletedV1(class_id=CLASS_ID, user_id="u", version=7)


def test_invalid_data_is_rejected() -> None:
    with pytest.raises(ValidationError) as excinfo:
        EventEnvelope[ClassDeletedV1](
            **_envelope_fields(data={"class_id": str(CLASS_ID), "user_id": "u", "version": 0})
        )

    assert excinfo.value.errors()[0]["loc"] == ("data", "version")


def test_envelope_is_frozen() -> None:
    envelope = make_envelope(_deleted(), source_service="svc")

    with pytest.raises(ValidationError):
        envelope.source_service = "other"  # type: ignore[misc]


def test_serialised_form_is_json_with_every_field() -> None:
    created = ClassCreatedV1(
        class_id=CLASS_ID, class_designation="9A", course_codes=[], user_id="u", version=1
    )
    envelope = make_envelope(created, source_service="svc", metadata={"k": "v"})

    raw = json.loads(envelope.model_dump_json().encode())

    assert set(raw) == {
        "event_id",
        "event_type",
        "event_timestamp",
        "source_service",
        "schema_version",
        "correlation_id",
        "data",
        "metadata",
    }
    assert raw["event_type"] == "huleedu.class.created.v1"
    assert raw["schema_version"] == 1
    assert raw["event_id"] == str(envelope.event_id)
    assert raw["event_timestamp"].endswith("Z")
    assert raw["data"] == {
        "class_id": str(CLASS_ID),
        "class_designation": "9A",
        "course_codes": [],
        "user_id": "u",
        "version": 1,
        "student_count": 0,
        "status": "active",
    }
    assert raw["metadata"] == {"k": "v"}


def test_the_envelope_class_of_an_event_survives_garbage_collection() -> None:
    # pydantic holds parametrised generics weakly; rebuilding one costs about a millisecond.
    kept = weakref.ref(envelope_class(ClassCreatedV1))
    gc.collect()
    assert kept() is not None and kept() is envelope_class(ClassCreatedV1)
    envelope = make_envelope(
        ClassCreatedV1(
            class_id=uuid4(),
            class_designation="9A",
            course_codes=["ENG5"],
            user_id="t",
            version=1,
        ),
        source_service="test",
    )
    gc.collect()
    assert type(envelope) is envelope_class(ClassCreatedV1)
    assert type(envelope) is EventEnvelope[ClassCreatedV1]  # what pydantic gives out too
