from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest
from common_core.enums import CourseCode
from common_core.events.class_events import (
    ClassCreatedV1,
    ClassDeletedV1,
    ClassUpdatedV1,
    StudentCreatedV1,
    StudentDeletedV1,
    StudentUpdatedV1,
)
from pydantic import BaseModel, ValidationError

ID_FIELD = {
    ClassCreatedV1: "class_id",
    ClassUpdatedV1: "class_id",
    ClassDeletedV1: "class_id",
    StudentCreatedV1: "student_id",
    StudentUpdatedV1: "student_id",
    StudentDeletedV1: "student_id",
}
USER_FIELD = {
    ClassCreatedV1: "user_id",
    ClassUpdatedV1: "user_id",
    ClassDeletedV1: "user_id",
    StudentCreatedV1: "created_by_user_id",
    StudentUpdatedV1: "updated_by_user_id",
    StudentDeletedV1: "user_id",
}


def _with(event: BaseModel, **overrides: Any) -> dict[str, Any]:
    return {**event.model_dump(), **overrides}


def _error_locs(excinfo: pytest.ExceptionInfo[ValidationError]) -> list[tuple[int | str, ...]]:
    return [error["loc"] for error in excinfo.value.errors()]


def test_aggregate_id_is_the_aggregate_uuid_as_string(sample_event: BaseModel) -> None:
    aggregate_uuid = getattr(sample_event, ID_FIELD[type(sample_event)])

    assert isinstance(aggregate_uuid, UUID)
    assert sample_event.aggregate_id == str(aggregate_uuid)  # type: ignore[attr-defined]
    assert UUID(sample_event.aggregate_id) == aggregate_uuid  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad_version", [0, -1])
def test_version_below_one_is_rejected(sample_event: BaseModel, bad_version: int) -> None:
    with pytest.raises(ValidationError) as excinfo:
        type(sample_event).model_validate(_with(sample_event, version=bad_version))

    assert _error_locs(excinfo) == [("version",)]
    assert excinfo.value.errors()[0]["type"] == "greater_than_equal"


@pytest.mark.parametrize("bad_version", [True, "2", 1.5, None])
def test_version_must_be_an_integer(sample_event: BaseModel, bad_version: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        type(sample_event).model_validate(_with(sample_event, version=bad_version))

    assert _error_locs(excinfo) == [("version",)]


def test_version_is_required(sample_event: BaseModel) -> None:
    fields = sample_event.model_dump()
    del fields["version"]

    with pytest.raises(ValidationError) as excinfo:
        type(sample_event).model_validate(fields)

    assert _error_locs(excinfo) == [("version",)]


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1234", "", 42])
def test_bad_aggregate_uuid_is_rejected(sample_event: BaseModel, bad_id: object) -> None:
    field = ID_FIELD[type(sample_event)]

    with pytest.raises(ValidationError) as excinfo:
        type(sample_event).model_validate(_with(sample_event, **{field: bad_id}))

    assert _error_locs(excinfo) == [(field,)]


def test_aggregate_uuid_string_is_parsed(sample_event: BaseModel) -> None:
    field = ID_FIELD[type(sample_event)]
    new_id = uuid4()

    event = type(sample_event).model_validate(_with(sample_event, **{field: str(new_id)}))

    assert getattr(event, field) == new_id


@pytest.mark.parametrize("bad_user", ["", "   "])
def test_blank_user_id_is_rejected(sample_event: BaseModel, bad_user: str) -> None:
    field = USER_FIELD[type(sample_event)]

    with pytest.raises(ValidationError) as excinfo:
        type(sample_event).model_validate(_with(sample_event, **{field: bad_user}))

    assert _error_locs(excinfo) == [(field,)]


def test_events_are_frozen(sample_event: BaseModel) -> None:
    with pytest.raises(ValidationError):
        sample_event.version = 99  # type: ignore[attr-defined]
    assert sample_event.version != 99  # type: ignore[attr-defined]


@pytest.mark.parametrize("event_cls", [ClassCreatedV1, ClassUpdatedV1])
def test_unknown_course_code_is_rejected(event_cls: type[BaseModel]) -> None:
    with pytest.raises(ValidationError) as excinfo:
        event_cls.model_validate(
            {
                "class_id": uuid4(),
                "class_designation": "9A",
                "course_codes": ["ENG5", "MATH1"],
                "user_id": "teacher-1",
                "version": 1,
            }
        )

    assert _error_locs(excinfo) == [("course_codes", 1)]


def test_course_codes_are_parsed_into_the_enum() -> None:
    event = ClassCreatedV1.model_validate(
        {
            "class_id": str(uuid4()),
            "class_designation": "  9A ",
            "course_codes": ["SV3", "ENG7"],
            "user_id": "teacher-1",
            "version": 4,
        }
    )

    assert event.course_codes == [CourseCode.SV3, CourseCode.ENG7]
    assert event.class_designation == "9A"


@pytest.mark.parametrize("bad", ["", "   ", "x" * 256])
def test_bad_class_designation_is_rejected(bad: str) -> None:
    with pytest.raises(ValidationError):
        ClassCreatedV1(
            class_id=uuid4(), class_designation=bad, course_codes=[], user_id="u", version=1
        )


def test_class_updated_fields_default_to_none() -> None:
    event = ClassUpdatedV1(class_id=uuid4(), user_id="teacher-1", version=2)

    assert event.class_designation is None
    assert event.course_codes is None


def test_student_created_class_ids_default_to_a_fresh_empty_list() -> None:
    first = StudentCreatedV1(
        student_id=uuid4(), first_name="A", last_name="B", created_by_user_id="u", version=1
    )
    second = StudentCreatedV1(
        student_id=uuid4(), first_name="C", last_name="D", created_by_user_id="u", version=1
    )

    assert first.class_ids == []
    assert first.student_email is None
    first.class_ids.append(uuid4())
    assert second.class_ids == []


def test_student_updated_fields_default_to_none() -> None:
    event = StudentUpdatedV1(student_id=uuid4(), updated_by_user_id="u", version=5)

    assert (
        event.first_name,
        event.last_name,
        event.student_email,
        event.add_class_ids,
        event.remove_class_ids,
    ) == (None, None, None, None, None)


@pytest.mark.parametrize("field", ["first_name", "last_name"])
@pytest.mark.parametrize("bad", ["", "   ", "x" * 256, "a\x00b"])
def test_student_names_are_validated_like_person_names(field: str, bad: str) -> None:
    fields: dict[str, Any] = {
        "student_id": uuid4(),
        "first_name": "Anna",
        "last_name": "Svensson",
        "created_by_user_id": "u",
        "version": 1,
    }
    with pytest.raises(ValidationError) as excinfo:
        StudentCreatedV1.model_validate({**fields, field: bad})
    assert _error_locs(excinfo) == [(field,)]

    update = {"student_id": uuid4(), "updated_by_user_id": "u", "version": 2, field: bad}
    with pytest.raises(ValidationError) as excinfo:
        StudentUpdatedV1.model_validate(update)
    assert _error_locs(excinfo) == [(field,)]


def test_student_names_are_stripped() -> None:
    event = StudentUpdatedV1(
        student_id=uuid4(),
        first_name=" Anna ",
        last_name="\tSvensson",
        updated_by_user_id="u",
        version=2,
    )

    assert (event.first_name, event.last_name) == ("Anna", "Svensson")


@pytest.mark.parametrize("field", ["add_class_ids", "remove_class_ids"])
def test_bad_class_ids_in_student_update_are_rejected(field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        StudentUpdatedV1.model_validate(
            {"student_id": uuid4(), "updated_by_user_id": "u", "version": 2, field: ["nope"]}
        )

    assert _error_locs(excinfo) == [(field, 0)]


def test_event_json_round_trip(sample_event: BaseModel) -> None:
    assert type(sample_event).model_validate_json(sample_event.model_dump_json()) == sample_event
