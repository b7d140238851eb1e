"""Service layer on hand-written fakes: stored outcomes and the events it announces."""

from __future__ import annotations

import uuid

import pytest
from common_core.events import (
    ClassCreatedV1,
    ClassDeletedV1,
    ClassPreviousV1,
    ClassUpdatedV1,
    EssayLinkedV1,
    EssayUnlinkedV1,
    StudentCreatedV1,
    StudentDeletedV1,
    StudentPreviousV1,
    StudentUpdatedV1,
)

from common_core import CourseCode, PersonNameV1
from services.class_management_service.domain import ListFilters, StudentChanges
from services.class_management_service.exceptions import (
    ClassNotFoundError,
    CourseNotFoundError,
    EssayAlreadyAssociatedError,
    EssayLinkNotFoundError,
    MultipleCourseError,
    StudentNotFoundError,
    VersionConflictError,
)
from services.class_management_service.implementations.class_management_service_impl import (
    ClassManagementServiceImpl,
)
from services.class_management_service.tests.unit.fakes import (
    FakeClassRepository,
    RecordingWaker,
)

USER = "teacher-1"
OTHER = "teacher-2"
CORRELATION = uuid.UUID("00000000-0000-4000-8000-000000000001")


@pytest.fixture
def repository() -> FakeClassRepository:
    return FakeClassRepository()


@pytest.fixture
def waker() -> RecordingWaker:
    return RecordingWaker()


@pytest.fixture
def service(repository: FakeClassRepository, waker: RecordingWaker) -> ClassManagementServiceImpl:
    return ClassManagementServiceImpl(repository, waker)


async def _class(service: ClassManagementServiceImpl, name: str = "9A", code: str = "ENG5"):
    return await service.create_class(
        user_id=USER, correlation_id=CORRELATION, name=name, course_codes=[code]
    )


async def _student(service: ClassManagementServiceImpl, class_ids=(), email=None):
    return await service.create_student(
        user_id=USER,
        correlation_id=CORRELATION,
        name=PersonNameV1(first_name="Ada", last_name="Lovelace"),
        email=email,
        class_ids=list(class_ids),
    )


async def test_create_class_stores_it_and_announces_created(service, repository, waker) -> None:
    record = await _class(service, "9A", "SV2")

    assert repository.classes[record.id].course_code is CourseCode.SV2
    (envelope,) = repository.outbox
    assert envelope.data == ClassCreatedV1(
        class_id=record.id,
        class_designation="9A",
        course_codes=[CourseCode.SV2],
        user_id=USER,
        version=1,
    )
    assert envelope.correlation_id == CORRELATION
    assert envelope.source_service == "class_management_service"
    assert waker.wakes == 1


@pytest.mark.parametrize(
    ("codes", "error"),
    [
        (["ENG9"], CourseNotFoundError),
        (["eng5"], CourseNotFoundError),
        (["ENG5", "SV1"], MultipleCourseError),
        ([], MultipleCourseError),
    ],
)
async def test_create_class_needs_exactly_one_known_course(
    service, repository, codes, error
) -> None:
    with pytest.raises(error):
        await service.create_class(
            user_id=USER, correlation_id=CORRELATION, name="9A", course_codes=codes
        )
    assert repository.classes == {}
    assert repository.outbox == []


async def test_update_class_applies_only_given_fields(service, repository) -> None:
    created = await _class(service, "9A", "ENG5")

    renamed = await service.update_class(
        user_id=USER,
        correlation_id=CORRELATION,
        class_id=created.id,
        name="9B",
        course_codes=None,
        expected_version=None,
    )

    assert renamed is not None
    assert (renamed.name, renamed.course_code, renamed.version) == ("9B", CourseCode.ENG5, 2)
    assert repository.outbox[-1].data == ClassUpdatedV1(
        class_id=created.id,
        class_designation="9B",
        course_codes=[CourseCode.ENG5],
        user_id=USER,
        version=2,
        student_count=0,
        previous=ClassPreviousV1(class_designation="9A"),
    )

    recoursed = await service.update_class(
        user_id=USER,
        correlation_id=CORRELATION,
        class_id=created.id,
        name=None,
        course_codes=["SV3"],
        expected_version=2,
    )
    assert recoursed is not None
    assert (recoursed.name, recoursed.course_code) == ("9B", CourseCode.SV3)
    assert repository.outbox[-1].data == ClassUpdatedV1(
        class_id=created.id,
        class_designation="9B",
        course_codes=[CourseCode.SV3],
        user_id=USER,
        version=3,
        student_count=0,
        previous=ClassPreviousV1(course_codes=[CourseCode.ENG5]),
    )
    # The same values again change nothing: same version, no event.
    same = await service.update_class(
        user_id=USER,
        correlation_id=CORRELATION,
        class_id=created.id,
        name="9B",
        course_codes=["SV3"],
        expected_version=3,
    )
    assert same == recoursed
    assert len(repository.outbox) == 3


async def test_update_class_is_not_found_when_missing_or_not_owned(service, repository) -> None:
    created = await _class(service)
    for user, class_id in ((USER, uuid.uuid4()), (OTHER, created.id)):
        with pytest.raises(ClassNotFoundError):
            await service.update_class(
                user_id=user,
                correlation_id=CORRELATION,
                class_id=class_id,
                name="x",
                course_codes=None,
                expected_version=None,
            )
    assert len(repository.outbox) == 1
    assert repository.classes[created.id].name == "9A"


async def test_update_class_with_stale_version_changes_nothing(service, repository) -> None:
    created = await _class(service)
    with pytest.raises(VersionConflictError):
        await service.update_class(
            user_id=USER,
            correlation_id=CORRELATION,
            class_id=created.id,
            name="x",
            course_codes=None,
            expected_version=7,
        )
    assert repository.classes[created.id].name == "9A"
    assert len(repository.outbox) == 1


async def test_get_and_delete_class_raise_not_found(service) -> None:
    created = await _class(service)
    with pytest.raises(ClassNotFoundError):
        await service.get_class(user_id=OTHER, class_id=created.id)
    with pytest.raises(ClassNotFoundError):
        await service.delete_class(
            user_id=OTHER, correlation_id=CORRELATION, class_id=created.id, expected_version=None
        )
    assert (await service.get_class(user_id=USER, class_id=created.id)).id == created.id


async def test_delete_class_announces_deleted_with_next_version(service, repository) -> None:
    created = await _class(service)
    await service.delete_class(
        user_id=USER, correlation_id=CORRELATION, class_id=created.id, expected_version=1
    )
    assert created.id not in repository.classes
    assert repository.outbox[-1].data == ClassDeletedV1(
        class_id=created.id, user_id=USER, version=2
    )


async def test_add_student_normalises_email_and_announces_created(service, repository) -> None:
    klass = await _class(service)
    student = await _student(service, [klass.id], email="  Ada@Example.COM ")

    assert student.email == "ada@example.com"
    assert repository.outbox[-2].data == StudentCreatedV1(
        student_id=student.id,
        first_name="Ada",
        last_name="Lovelace",
        student_email="ada@example.com",
        class_ids=[klass.id],
        created_by_user_id=USER,
        version=1,
        legal_full_name="Ada Lovelace",
    )
    # The class's student_count changed: its own new version and event.
    assert repository.outbox[-1].data == ClassUpdatedV1(
        class_id=klass.id,
        class_designation="9A",
        course_codes=[klass.course_code],
        user_id=USER,
        version=2,
        student_count=1,
        previous=ClassPreviousV1(student_count=0),
    )


async def test_add_student_to_someone_elses_class_is_not_found(service, repository) -> None:
    foreign = await service.create_class(
        user_id=OTHER, correlation_id=CORRELATION, name="x", course_codes=["ENG6"]
    )
    with pytest.raises(ClassNotFoundError):
        await _student(service, [foreign.id])
    assert repository.students == {}


async def test_update_student_applies_only_given_fields(service, repository) -> None:
    first = await _class(service, "9A")
    second = await _class(service, "9B")
    student = await _student(service, [first.id], email="ada@example.com")

    updated = await service.update_student(
        user_id=USER,
        correlation_id=CORRELATION,
        student_id=student.id,
        changes=StudentChanges(add_class_ids=(second.id,), remove_class_ids=(first.id,)),
        expected_version=None,
    )

    assert updated is not None
    assert updated.first_name == "Ada"
    assert updated.email == "ada@example.com"
    assert updated.class_ids == (second.id,)
    changed = [e.data for e in repository.outbox if e.event_type.endswith("student.updated.v1")]
    assert changed == [
        StudentUpdatedV1(
            student_id=student.id,
            first_name="Ada",
            last_name="Lovelace",
            legal_full_name="Ada Lovelace",
            student_email="ada@example.com",
            class_ids=[second.id],
            add_class_ids=[second.id],
            remove_class_ids=[first.id],
            updated_by_user_id=USER,
            version=2,
            previous=StudentPreviousV1(class_ids=[first.id]),
        )
    ]
    counts = {e.data.class_id: e.data.student_count for e in repository.outbox[-2:]}
    assert counts == {first.id: 0, second.id: 1}
    # Removing a class it is not in, adding one it is in: nothing changes, no event.
    again = await service.update_student(
        user_id=USER,
        correlation_id=CORRELATION,
        student_id=student.id,
        changes=StudentChanges(add_class_ids=(second.id,), remove_class_ids=(first.id,)),
        expected_version=2,
    )
    assert again == updated
    assert len([e for e in repository.outbox if e.data.aggregate_id == str(student.id)]) == 2


async def test_update_student_is_not_found_when_missing(service, repository) -> None:
    with pytest.raises(StudentNotFoundError):
        await service.update_student(
            user_id=USER,
            correlation_id=CORRELATION,
            student_id=uuid.uuid4(),
            changes=StudentChanges(first_name="X"),
            expected_version=None,
        )
    assert repository.outbox == []


async def test_delete_student_announces_deleted(service, repository) -> None:
    student = await _student(service)
    await service.delete_student(
        user_id=USER, correlation_id=CORRELATION, student_id=student.id, expected_version=None
    )
    assert repository.outbox[-1].data == StudentDeletedV1(
        student_id=student.id, user_id=USER, version=2
    )
    with pytest.raises(StudentNotFoundError):
        await service.get_student(user_id=USER, student_id=student.id)


async def test_list_students_of_a_foreign_class_is_not_found(service) -> None:
    foreign = await service.create_class(
        user_id=OTHER, correlation_id=CORRELATION, name="x", course_codes=["ENG6"]
    )
    with pytest.raises(ClassNotFoundError):
        await service.list_students(
            user_id=USER, class_id=foreign.id, limit=20, offset=0, filters=ListFilters()
        )


async def test_essay_association_is_idempotent_and_exclusive(service, repository) -> None:
    ada = await _student(service, email="ada@example.com")
    bob = await _student(service, email="bob@example.com")
    essay = uuid.uuid4()

    link = {"user_id": USER, "correlation_id": CORRELATION, "essay_id": essay}
    first = await service.associate_essay(student_id=ada.id, **link)
    again = await service.associate_essay(student_id=ada.id, **link)
    assert (first[1], again[1]) == (True, False)
    with pytest.raises(EssayAlreadyAssociatedError):
        await service.associate_essay(student_id=bob.id, **link)
    with pytest.raises(StudentNotFoundError):
        await service.list_student_essays(user_id=OTHER, student_id=ada.id, limit=20, offset=0)
    links = await service.list_student_essays(user_id=USER, student_id=ada.id, limit=20, offset=0)
    assert [link.essay_id for link in links.items] == [essay]
    # The first link only is announced (essay links change no class or student).
    assert repository.outbox[2:] == [repository.outbox[-1]]
    assert repository.outbox[-1].data == EssayLinkedV1(
        essay_id=essay, student_id=ada.id, user_id=USER, linked_at=first[0].created_at
    )


async def test_unlink_essay_announces_unlinked_and_then_is_not_found(
    service, repository, waker
) -> None:
    ada = await _student(service, email="ada@example.com")
    essay = uuid.uuid4()
    await service.associate_essay(
        user_id=USER, correlation_id=CORRELATION, student_id=ada.id, essay_id=essay
    )
    writer = await service.get_essay_writer(user_id=USER, essay_id=essay)
    assert (writer.student.id, writer.student.email) == (ada.id, "ada@example.com")
    wakes = waker.wakes

    with pytest.raises(EssayLinkNotFoundError):
        await service.unlink_essay(
            user_id=OTHER, correlation_id=uuid.uuid4(), student_id=ada.id, essay_id=essay
        )
    await service.unlink_essay(
        user_id=USER, correlation_id=uuid.uuid4(), student_id=ada.id, essay_id=essay
    )

    unlinked = repository.outbox[-1].data
    assert isinstance(unlinked, EssayUnlinkedV1)
    assert (unlinked.essay_id, unlinked.student_id, unlinked.user_id) == (essay, ada.id, USER)
    assert waker.wakes == wakes + 1
    with pytest.raises(EssayLinkNotFoundError):
        await service.get_essay_writer(user_id=USER, essay_id=essay)
    with pytest.raises(EssayLinkNotFoundError):
        await service.unlink_essay(
            user_id=USER, correlation_id=uuid.uuid4(), student_id=ada.id, essay_id=essay
        )


async def test_a_students_classes_are_not_found_for_another_user(service) -> None:
    ada = await _student(service)

    with pytest.raises(StudentNotFoundError):
        await service.list_student_classes(
            user_id=OTHER, student_id=ada.id, limit=20, offset=0, sort="name"
        )
    page = await service.list_student_classes(
        user_id=USER, student_id=ada.id, limit=20, offset=0, sort="name"
    )
    assert (page.items, page.total) == ([], 0)
