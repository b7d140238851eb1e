from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from common_core.enums import CourseCode
from common_core.events.class_events import ClassCreatedV1, StudentCreatedV1
from common_core.events.envelope import EventEnvelope, make_envelope
from common_core.events.parsing import (
    EventParseError,
    StateRecord,
    parse_event_message,
    parse_state_record,
)
from common_core.events.state_events import ClassStateV1, StudentStateV1
from common_core.events.topics import (
    CLASS_CREATED_TOPIC,
    CLASS_STATE_TOPIC,
    STUDENT_CREATED_TOPIC,
    STUDENT_STATE_TOPIC,
)
from pydantic import BaseModel, ValidationError


def _valid_message(**overrides: Any) -> dict[str, Any]:
    envelope = make_envelope(
        ClassCreatedV1(
            class_id=UUID("6f1c7a52-3a5e-4c4e-9f39-0d4f2b1d9a01"),
            class_designation="9A",
            course_codes=[CourseCode.ENG5],
            user_id="teacher-1",
            version=1,
        ),
        source_service="class_management_service",
    )
    raw: dict[str, Any] = json.loads(envelope.model_dump_json())
    return {**raw, **overrides}


def _parse_error(message: dict[str, Any] | str | bytes) -> EventParseError:
    value = json.dumps(message).encode() if isinstance(message, dict) else message
    with pytest.raises(EventParseError) as excinfo:
        parse_event_message(value)
    return excinfo.value


def test_round_trip_of_every_event_class(sample_event: BaseModel) -> None:
    envelope = make_envelope(
        sample_event, source_service="class_management_service", metadata={"trace_id": "t-1"}
    )

    parsed = parse_event_message(envelope.model_dump_json().encode())

    assert parsed == envelope
    assert type(parsed) is type(envelope)
    assert type(parsed.data) is type(sample_event)
    assert parsed.data == sample_event
    assert parsed.event_id == envelope.event_id
    assert parsed.correlation_id == envelope.correlation_id
    assert parsed.event_timestamp == envelope.event_timestamp
    assert parsed.metadata == {"trace_id": "t-1"}


def test_round_trip_from_str(sample_event: BaseModel) -> None:
    envelope = make_envelope(sample_event, source_service="svc")

    parsed = parse_event_message(envelope.model_dump_json())

    assert parsed == envelope


def test_round_trip_keeps_a_non_utc_timestamp_as_the_same_instant() -> None:
    local = datetime(2025, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=1)))

    parsed = parse_event_message(json.dumps(_valid_message(event_timestamp=local.isoformat())))

    assert parsed.event_timestamp == local
    assert parsed.event_timestamp.utcoffset() == timedelta(0)
    assert parsed.event_timestamp == datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def test_parsed_data_is_typed_by_event_type() -> None:
    message = _valid_message(
        event_type=STUDENT_CREATED_TOPIC,
        data={
            "student_id": "c2d9e8f7-1b2a-4c3d-8e4f-5a6b7c8d9e03",
            "first_name": "Anna",
            "last_name": "Svensson",
            "created_by_user_id": "u",
            "version": 1,
        },
    )

    parsed = parse_event_message(json.dumps(message))

    assert isinstance(parsed, EventEnvelope)
    assert isinstance(parsed.data, StudentCreatedV1)
    assert parsed.data.class_ids == []
    assert parsed.data.aggregate_id == "c2d9e8f7-1b2a-4c3d-8e4f-5a6b7c8d9e03"


@pytest.mark.parametrize("value", [b"{not json", b"", "}", b"\xff\xfe\x00"])
def test_invalid_json_is_rejected(value: bytes | str) -> None:
    error = _parse_error(value)

    assert "not valid JSON" in str(error)
    assert error.event_type is None


@pytest.mark.parametrize("value", [b"[]", b'"text"', b"42", b"null"])
def test_non_object_json_is_rejected(value: bytes) -> None:
    assert "must be a JSON object" in str(_parse_error(value))


def test_missing_event_type_is_rejected() -> None:
    message = _valid_message()
    del message["event_type"]

    assert str(_parse_error(message)) == "event message has no 'event_type'"


@pytest.mark.parametrize("event_type", [None, 1, ["huleedu.class.created.v1"]])
def test_non_string_event_type_is_rejected(event_type: object) -> None:
    assert "'event_type' must be a string" in str(
        _parse_error(_valid_message(event_type=event_type))
    )


def test_unknown_event_type_is_rejected() -> None:
    error = _parse_error(_valid_message(event_type="huleedu.class.renamed.v1"))

    assert str(error).startswith("unknown event_type 'huleedu.class.renamed.v1'")
    assert CLASS_CREATED_TOPIC in str(error)
    assert error.event_type == "huleedu.class.renamed.v1"


def test_invalid_payload_names_the_event_type_and_the_bad_field() -> None:
    message = _valid_message()
    message["data"]["version"] = 0

    error = _parse_error(message)

    text = str(error)
    assert CLASS_CREATED_TOPIC in text
    assert "ClassCreatedV1" in text
    assert "data.version" in text
    assert "greater than or equal to 1" in text
    assert error.event_type == CLASS_CREATED_TOPIC
    assert isinstance(error.__cause__, ValidationError)


def test_payload_for_the_wrong_event_class_is_rejected() -> None:
    message = _valid_message(event_type=STUDENT_CREATED_TOPIC)

    text = str(_parse_error(message))

    assert "StudentCreatedV1" in text
    assert "data.student_id" in text


@pytest.mark.parametrize(
    ("overrides", "location"),
    [
        ({"schema_version": 2}, "schema_version"),
        ({"event_timestamp": "2025-01-01T12:00:00"}, "event_timestamp"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"correlation_id": "1234"}, "correlation_id"),
        ({"source_service": ""}, "source_service"),
        ({"data": None}, "data"),
    ],
)
def test_invalid_envelope_fields_are_rejected(overrides: dict[str, Any], location: str) -> None:
    text = str(_parse_error(_valid_message(**overrides)))

    assert f"{location}:" in text
    assert CLASS_CREATED_TOPIC in text


def test_missing_data_is_rejected() -> None:
    message = _valid_message()
    del message["data"]

    assert "data: Field required" in str(_parse_error(message))


@pytest.mark.parametrize(
    ("field", "value"),
    [("class_id", "nope"), ("course_codes", [""]), ("user_id", ""), ("status", 3)],
)
def test_invalid_event_fields_are_rejected(field: str, value: object) -> None:
    message = _valid_message()
    message["data"][field] = value

    assert f"data.{field}" in str(_parse_error(message))


def test_event_parse_error_is_a_value_error() -> None:
    assert issubclass(EventParseError, ValueError)
    with pytest.raises(ValueError):
        parse_event_message(b"nope")


# -- tolerant reading: what a newer producer may send within v1 ---------------------


def test_unknown_fields_are_ignored_in_the_envelope_and_the_data() -> None:
    message = _valid_message(trace={"id": "x"}, priority=3)
    message["data"] = {**message["data"], "room": "B12", "previous": {"colour": "red"}}

    parsed = parse_event_message(json.dumps(message))

    assert isinstance(parsed.data, ClassCreatedV1)
    assert not hasattr(parsed, "trace") and not hasattr(parsed.data, "room")


def test_an_unknown_course_code_and_status_are_kept() -> None:
    message = _valid_message()
    message["data"] = {**message["data"], "course_codes": ["PHY1"], "status": "paused"}

    parsed = parse_event_message(json.dumps(message))

    assert parsed.data.course_codes == ["PHY1"]
    assert parsed.data.status == "paused"
    assert json.loads(parsed.model_dump_json())["data"]["course_codes"] == ["PHY1"]


def test_a_message_of_todays_producer_parses_with_the_new_fields_defaulted() -> None:
    """The payloads the service published before the events carried the whole state."""
    updated = _valid_message(
        event_type="huleedu.class.student.updated.v1",
        data={
            "student_id": "c2d9e8f7-1b2a-4c3d-8e4f-5a6b7c8d9e03",
            "first_name": "Con",
            "last_name": "Tracted",
            "student_email": None,
            "add_class_ids": None,
            "remove_class_ids": ["6f1c7a52-3a5e-4c4e-9f39-0d4f2b1d9a01"],
            "updated_by_user_id": "teacher-1",
            "version": 2,
        },
    )

    data = parse_event_message(json.dumps(updated)).data

    assert (data.legal_full_name, data.class_ids, data.previous) == (None, None, None)
    assert data.remove_class_ids == [UUID("6f1c7a52-3a5e-4c4e-9f39-0d4f2b1d9a01")]


def test_a_tombstone_is_not_an_event_message() -> None:
    error = _parse_error(None)  # type: ignore[arg-type]

    assert "no value (a tombstone)" in str(error)
    assert "parse_state_record" in str(error)


# -- state topics ----------------------------------------------------------------------


def _state_envelope(event: BaseModel) -> bytes:
    return (
        make_envelope(event, source_service="class_management_service").model_dump_json().encode()
    )


@pytest.mark.parametrize("key_type", [bytes, str])
def test_a_state_record_parses_into_the_aggregates_state(
    all_sample_events: list[BaseModel], key_type: type
) -> None:
    state = next(e for e in all_sample_events if isinstance(e, StudentStateV1))
    key = state.aggregate_id.encode() if key_type is bytes else state.aggregate_id

    record = parse_state_record(STUDENT_STATE_TOPIC, key, _state_envelope(state))

    assert isinstance(record, StateRecord)
    assert (record.topic, record.aggregate_id, record.deleted) == (
        STUDENT_STATE_TOPIC,
        state.aggregate_id,
        False,
    )
    assert record.state == state
    assert record.envelope is not None and record.envelope.event_type == STUDENT_STATE_TOPIC


def test_a_tombstone_on_a_state_topic_is_a_deletion() -> None:
    record = parse_state_record(CLASS_STATE_TOPIC, b"6f1c7a52-3a5e-4c4e-9f39-0d4f2b1d9a01", None)

    assert record.deleted
    assert (record.envelope, record.state) == (None, None)
    assert record.aggregate_id == "6f1c7a52-3a5e-4c4e-9f39-0d4f2b1d9a01"


def test_a_state_record_of_another_aggregate_than_its_key_is_rejected(
    all_sample_events: list[BaseModel],
) -> None:
    state = next(e for e in all_sample_events if isinstance(e, ClassStateV1))

    with pytest.raises(EventParseError, match="keyed 'other' holds the state of"):
        parse_state_record(CLASS_STATE_TOPIC, b"other", _state_envelope(state))


def test_a_state_record_holding_another_topics_event_is_rejected(
    all_sample_events: list[BaseModel],
) -> None:
    state = next(e for e in all_sample_events if isinstance(e, ClassStateV1))

    with pytest.raises(EventParseError, match=r"holds a 'huleedu\.class\.state\.v1' event"):
        parse_state_record(STUDENT_STATE_TOPIC, state.aggregate_id, _state_envelope(state))


@pytest.mark.parametrize(
    ("topic", "key", "message"),
    [
        (CLASS_CREATED_TOPIC, b"k", "is not a state topic"),
        ("huleedu.nope.v1", b"k", "unknown event type 'huleedu.nope.v1'"),
        (CLASS_STATE_TOPIC, None, "has no key"),
        (CLASS_STATE_TOPIC, b"\xff\xfe", "is not UTF-8"),
    ],
)
def test_state_records_that_cannot_be_read_raise_clear_errors(
    topic: str, key: bytes | None, message: str
) -> None:
    with pytest.raises(EventParseError, match=message) as excinfo:
        parse_state_record(topic, key, None)

    assert excinfo.value.event_type == topic


def test_an_unreadable_state_value_raises_the_parse_error() -> None:
    with pytest.raises(EventParseError, match="not valid JSON"):
        parse_state_record(CLASS_STATE_TOPIC, b"k", b"{")
