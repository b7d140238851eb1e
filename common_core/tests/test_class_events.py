from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import pytest
from common_core.enums import ClassStatus, CourseCode
from common_core.events.class_events import (
    ClassCreatedV1,
    ClassPreviousV1,
    ClassUpdatedV1,
    StudentCreatedV1,
    StudentPreviousV1,
    StudentUpdatedV1,
)
from common_core.events.state_events import ClassStateV1, StudentStateV1
from common_core.events.topics import TOPICS, topic_for, topic_spec
from pydantic import BaseModel, ValidationError

from common_core.tests.conftest import SAMPLE_FACTORIES

USER_FIELD = {
    StudentCreatedV1: "created_by_user_id",
    StudentUpdatedV1: "updated_by_user_id",
    StudentStateV1: "created_by_user_id",
}


def _id_field(event: BaseModel) -> str:
    return topic_spec(topic_for(event)).key_field


@pytest.fixture(
    params=[cls for cls in SAMPLE_FACTORIES if "version" in cls.model_fields],
    ids=lambda cls: cls.__name__,
)
def versioned_event(request: pytest.FixtureRequest) -> BaseModel:
    """A valid instance of each event class that carries an aggregate version."""
    return SAMPLE_FACTORIES[request.param]()


def _with(event: BaseModel, **overrides: Any) -> dict[str, Any]:
    return {**event.model_dump(), **overrides}


def _error_locs(excinfo: pytest.ExceptionInfo[ValidationError]) -> list[tuple[int | str, ...]]:
    return [error["loc"] for error in excinfo.value.errors()]


def test_aggregate_id_is_the_aggregate_uuid_as_string(sample_event: BaseModel) -> None:
    aggregate_uuid = getattr(sample_event, _id_field(sample_event))

    assert isinstance(aggregate_uuid, UUID)
    assert sample_event.aggregate_id == str(aggregate_uuid)  # type: ignore[attr-defined]
    assert UUID(sample_event.aggregate_id) == aggregate_uuid  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad_version", [0, -1])
def test_version_below_one_is_rejected(versioned_event: BaseModel, bad_version: int) -> None:
    with pytest.raises(ValidationError) as excinfo:
        type(versioned_event).model_validate(_with(versioned_event, version=bad_version))

    assert _error_locs(excinfo) == [("version",)]
    assert excinfo.value.errors()[0]["type"] == "greater_than_equal"


@pytest.mark.parametrize("bad_version", [True, "2", 1.5, None])
def test_version_must_be_an_integer(versioned_event: BaseModel, bad_version: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        type(versioned_event).model_validate(_with(versioned_event, version=bad_version))

    assert _error_locs(excinfo) == [("version",)]


def test_version_is_required(versioned_event: BaseModel) -> None:
    fields = versioned_event.model_dump()
    del fields["version"]

    with pytest.raises(ValidationError) as excinfo:
        type(versioned_event).model_validate(fields)

    assert _error_locs(excinfo) == [("version",)]


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "1234", "", 42])
def test_bad_aggregate_uuid_is_rejected(sample_event: BaseModel, bad_id: object) -> None:
    field = _id_field(sample_event)

    with pytest.raises(ValidationError) as excinfo:
        type(sample_event).model_validate(_with(sample_event, **{field: bad_id}))

    assert _error_locs(excinfo) == [(field,)]


def test_aggregate_uuid_string_is_parsed(sample_event: BaseModel) -> None:
    field = _id_field(sample_event)
    new_id = uuid4()

    event = type(sample_event).model_validate(_with(sample_event, **{field: str(new_id)}))

    assert getattr(event, field) == new_id


@pytest.mark.parametrize("bad_user", ["", "   "])
def test_blank_user_id_is_rejected(sample_event: BaseModel, bad_user: str) -> None:
    field = USER_FIELD.get(type(sample_event), "user_id")

    with pytest.raises(ValidationError) as excinfo:
        type(sample_event).model_validate(_with(sample_event, **{field: bad_user}))

    assert _error_locs(excinfo) == [(field,)]


def test_events_are_frozen(versioned_event: BaseModel) -> None:
    with pytest.raises(ValidationError):
        versioned_event.version = 99  # type: ignore[attr-defined]
    assert versioned_event.version != 99  # type: ignore[attr-defined]


CLASS_FIELDS = {
    "class_id": "6f1c7a52-3a5e-4c4e-9f39-0d4f2b1d9a01",
    "class_designation": "9A",
    "course_codes": ["ENG5"],
    "user_id": "teacher-1",
    "version": 1,
    "student_count": 0,
    "status": "active",
}


@pytest.mark.parametrize("event_cls", [ClassCreatedV1, ClassUpdatedV1, ClassStateV1])
def test_unknown_course_codes_and_statuses_are_kept_as_strings(
    event_cls: type[BaseModel],
) -> None:
    """A newer producer's course or status: kept as sent, round-tripped unchanged."""
    event = event_cls.model_validate(
        {**CLASS_FIELDS, "course_codes": ["ENG5", "MATH1"], "status": "paused"}
    )

    assert event.course_codes == [CourseCode.ENG5, "MATH1"]  # type: ignore[attr-defined]
    assert type(event.course_codes[0]) is CourseCode  # type: ignore[attr-defined]
    assert type(event.course_codes[1]) is str  # type: ignore[attr-defined]
    assert event.status == "paused"  # type: ignore[attr-defined]
    assert event_cls.model_validate_json(event.model_dump_json()) == event
    known = event_cls.model_validate(CLASS_FIELDS)
    assert known.status is ClassStatus.ACTIVE  # type: ignore[attr-defined]


@pytest.mark.parametrize("bad", ["", 5, None])
def test_course_codes_that_are_not_strings_or_empty_are_rejected(bad: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        ClassCreatedV1.model_validate({**CLASS_FIELDS, "course_codes": ["ENG5", bad]})

    assert {loc[:2] for loc in _error_locs(excinfo)} == {("course_codes", 1)}


def test_class_created_defaults_are_the_truth_for_a_new_class() -> None:
    """Messages of older producers have neither field: a new class has 0 students."""
    fields = {k: v for k, v in CLASS_FIELDS.items() if k not in ("student_count", "status")}

    event = ClassCreatedV1.model_validate(fields)

    assert (event.student_count, event.status) == (0, ClassStatus.ACTIVE)


def test_previous_holds_only_the_changed_fields() -> None:
    previous = StudentPreviousV1(student_email=None, last_name="Old")

    assert previous.changed_fields == {"student_email", "last_name"}
    assert json.loads(previous.model_dump_json()) == {"student_email": None, "last_name": "Old"}
    assert previous.model_dump() == {"student_email": None, "last_name": "Old"}
    assert StudentPreviousV1.model_validate_json(previous.model_dump_json()) == previous
    assert ClassPreviousV1().model_dump() == {}


def test_previous_ignores_fields_it_does_not_know() -> None:
    previous = ClassPreviousV1.model_validate({"student_count": 3, "colour": "blue"})

    assert previous.changed_fields == {"student_count"}
    assert previous.student_count == 3


def test_updated_events_carry_the_whole_state_and_previous(
    all_sample_events: list[BaseModel],
) -> None:
    updated = next(e for e in all_sample_events if isinstance(e, StudentUpdatedV1))
    raw = json.loads(updated.model_dump_json())

    assert raw["class_ids"] == [str(updated.class_ids[0])]  # type: ignore[index]
    assert raw["previous"] == {
        "last_name": "Öberg",
        "student_email": "asa.oberg@example.com",
        "class_ids": ["6f1c7a52-3a5e-4c4e-9f39-0d4f2b1d9a01"],
    }
    assert raw["legal_full_name"] == "Åsa Öberg"


@pytest.mark.parametrize("event_cls", [StudentCreatedV1, StudentUpdatedV1, StudentStateV1])
def test_class_ids_are_sorted_and_distinct(event_cls: type[BaseModel]) -> None:
    low, high = UUID(int=1), UUID(int=2**100)
    sample = next(f() for c, f in SAMPLE_FACTORIES.items() if c is event_cls)

    event = event_cls.model_validate(_with(sample, class_ids=[str(high), str(low), str(high)]))

    assert event.class_ids == [low, high]  # type: ignore[attr-defined]


def test_every_registered_event_has_a_sample() -> None:
    assert {spec.event_class for spec in TOPICS} == set(SAMPLE_FACTORIES)


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
