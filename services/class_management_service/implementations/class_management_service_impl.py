"""Business rules of classes and students, and the events their changes announce."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace

from common_core import ClassStatus, CourseCode, PersonNameV1
from services.class_management_service.domain import (
    KEEP,
    MAX_IMPORT_ROWS,
    ClassRecord,
    EssayLinkRecord,
    EssayWriterRecord,
    ImportReport,
    ImportRow,
    ListFilters,
    Page,
    RosterEntryRecord,
    SortKey,
    StudentChanges,
    StudentRecord,
)
from services.class_management_service.exceptions import (
    ClassNotFoundError,
    CourseNotFoundError,
    EssayLinkNotFoundError,
    MultipleCourseError,
    StudentNotFoundError,
    TooManyRowsError,
    ValidationFailedError,
)
from services.class_management_service.implementations.announcements import Announcements
from services.class_management_service.protocols import (
    ClassRepositoryProtocol,
    OutboxWakerProtocol,
)


def resolve_course_code(course_codes: Sequence[str]) -> CourseCode:
    """The one course of a class: exactly one known code, else a domain error."""
    if len(course_codes) != 1:
        raise MultipleCourseError(
            f"A class needs exactly one course code, got {len(course_codes)}."
        )
    (code,) = course_codes
    try:
        return CourseCode(code)
    except ValueError:
        known = ", ".join(member.value for member in CourseCode)
        shown = code if len(code) <= 32 else code[:32] + "..."
        raise CourseNotFoundError(f"Unknown course code {shown!r}; known: {known}.") from None


class ClassManagementServiceImpl:
    """``ClassManagementServiceProtocol`` over a repository and the outbox waker."""

    def __init__(self, repository: ClassRepositoryProtocol, waker: OutboxWakerProtocol) -> None:
        self._repository = repository
        self._waker = waker

    # -- classes --------------------------------------------------------------------

    async def create_class(
        self, *, user_id: str, correlation_id: uuid.UUID, name: str, course_codes: Sequence[str]
    ) -> ClassRecord:
        course_code = resolve_course_code(course_codes)
        record = await self._repository.create_class(
            user_id=user_id,
            name=name,
            course_code=course_code,
            announce=Announcements(user_id, correlation_id),
        )
        await self._waker.wake()
        return record

    async def get_class(self, *, user_id: str, class_id: uuid.UUID) -> ClassRecord:
        record = await self._repository.get_class(user_id=user_id, class_id=class_id)
        if record is None:
            raise ClassNotFoundError(f"Class {class_id} not found.")
        return record

    async def list_classes(
        self,
        *,
        user_id: str,
        limit: int,
        offset: int,
        course_code: CourseCode | None,
        filters: ListFilters,
        status: ClassStatus | None = None,
    ) -> Page[ClassRecord]:
        return await self._repository.list_classes(
            user_id=user_id,
            limit=limit,
            offset=offset,
            course_code=course_code,
            filters=filters,
            status=status,
        )

    async def update_class(
        self,
        *,
        user_id: str,
        correlation_id: uuid.UUID,
        class_id: uuid.UUID,
        name: str | None,
        course_codes: Sequence[str] | None,
        expected_version: int | None,
        status: ClassStatus | None = None,
    ) -> ClassRecord:
        course_code = resolve_course_code(course_codes) if course_codes is not None else None
        record = await self._repository.update_class(
            user_id=user_id,
            class_id=class_id,
            name=name,
            course_code=course_code,
            expected_version=expected_version,
            announce=Announcements(user_id, correlation_id),
            status=status,
        )
        if record is None:
            raise ClassNotFoundError(f"Class {class_id} not found.")
        await self._waker.wake()
        return record

    async def delete_class(
        self,
        *,
        user_id: str,
        correlation_id: uuid.UUID,
        class_id: uuid.UUID,
        expected_version: int | None,
    ) -> None:
        deleted = await self._repository.delete_class(
            user_id=user_id,
            class_id=class_id,
            expected_version=expected_version,
            announce=Announcements(user_id, correlation_id),
        )
        if not deleted:
            raise ClassNotFoundError(f"Class {class_id} not found.")
        await self._waker.wake()

    async def get_roster(
        self, *, user_id: str, class_id: uuid.UUID, limit: int, offset: int
    ) -> Page[RosterEntryRecord]:
        page = await self._repository.get_roster(
            user_id=user_id, class_id=class_id, limit=limit, offset=offset
        )
        if page is None:
            raise ClassNotFoundError(f"Class {class_id} not found.")
        return page

    # -- students -------------------------------------------------------------------

    async def create_student(
        self,
        *,
        user_id: str,
        correlation_id: uuid.UUID,
        name: PersonNameV1,
        email: str | None,
        class_ids: Sequence[uuid.UUID],
    ) -> StudentRecord:
        record = await self._repository.create_student(
            user_id=user_id,
            name=name,
            email=_normalise_email(email),
            class_ids=class_ids,
            announce=Announcements(user_id, correlation_id),
        )
        await self._waker.wake()
        return record

    async def get_student(self, *, user_id: str, student_id: uuid.UUID) -> StudentRecord:
        record = await self._repository.get_student(user_id=user_id, student_id=student_id)
        if record is None:
            raise StudentNotFoundError(f"Student {student_id} not found.")
        return record

    async def list_students(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID | None,
        limit: int,
        offset: int,
        filters: ListFilters,
    ) -> Page[StudentRecord]:
        if class_id is not None:
            await self.get_class(user_id=user_id, class_id=class_id)
        return await self._repository.list_students(
            user_id=user_id, class_id=class_id, limit=limit, offset=offset, filters=filters
        )

    async def update_student(
        self,
        *,
        user_id: str,
        correlation_id: uuid.UUID,
        student_id: uuid.UUID,
        changes: StudentChanges,
        expected_version: int | None,
    ) -> StudentRecord:
        changes = StudentChanges(
            first_name=changes.first_name,
            last_name=changes.last_name,
            legal_full_name=changes.legal_full_name,
            email=changes.email if changes.email is KEEP else _normalise_email(changes.email),
            add_class_ids=changes.add_class_ids,
            remove_class_ids=changes.remove_class_ids,
        )
        record = await self._repository.update_student(
            user_id=user_id,
            student_id=student_id,
            changes=changes,
            expected_version=expected_version,
            announce=Announcements(user_id, correlation_id),
        )
        if record is None:
            raise StudentNotFoundError(f"Student {student_id} not found.")
        await self._waker.wake()
        return record

    async def delete_student(
        self,
        *,
        user_id: str,
        correlation_id: uuid.UUID,
        student_id: uuid.UUID,
        expected_version: int | None,
    ) -> None:
        deleted = await self._repository.delete_student(
            user_id=user_id,
            student_id=student_id,
            expected_version=expected_version,
            announce=Announcements(user_id, correlation_id),
        )
        if not deleted:
            raise StudentNotFoundError(f"Student {student_id} not found.")
        await self._waker.wake()

    async def import_students(
        self,
        *,
        user_id: str,
        correlation_id: uuid.UUID,
        class_id: uuid.UUID,
        rows: Sequence[ImportRow],
        dry_run: bool,
    ) -> ImportReport:
        if not rows:
            raise ValidationFailedError("The import has no rows.")
        if len(rows) > MAX_IMPORT_ROWS:
            raise TooManyRowsError(f"An import has at most {MAX_IMPORT_ROWS} rows.")
        report = await self._repository.import_students(
            user_id=user_id,
            class_id=class_id,
            rows=[replace(row, email=_normalise_email(row.email)) for row in rows],
            dry_run=dry_run,
            announce=Announcements(user_id, correlation_id),
        )
        if report is None:
            raise ClassNotFoundError(f"Class {class_id} not found.")
        if not dry_run:
            await self._waker.wake()
        return report

    async def associate_essay(
        self,
        *,
        user_id: str,
        correlation_id: uuid.UUID,
        student_id: uuid.UUID,
        essay_id: uuid.UUID,
    ) -> tuple[EssayLinkRecord, bool]:
        result = await self._repository.associate_essay(
            user_id=user_id,
            student_id=student_id,
            essay_id=essay_id,
            announce=Announcements(user_id, correlation_id),
        )
        if result is None:
            raise StudentNotFoundError(f"Student {student_id} not found.")
        if result[1]:
            await self._waker.wake()
        return result

    async def list_student_essays(
        self, *, user_id: str, student_id: uuid.UUID, limit: int, offset: int
    ) -> Page[EssayLinkRecord]:
        page = await self._repository.list_student_essays(
            user_id=user_id, student_id=student_id, limit=limit, offset=offset
        )
        if page is None:
            raise StudentNotFoundError(f"Student {student_id} not found.")
        return page

    async def list_student_classes(
        self, *, user_id: str, student_id: uuid.UUID, limit: int, offset: int, sort: SortKey
    ) -> Page[ClassRecord]:
        page = await self._repository.list_student_classes(
            user_id=user_id, student_id=student_id, limit=limit, offset=offset, sort=sort
        )
        if page is None:
            raise StudentNotFoundError(f"Student {student_id} not found.")
        return page

    async def unlink_essay(
        self, *, user_id: str, correlation_id: uuid.UUID, student_id: uuid.UUID, essay_id: uuid.UUID
    ) -> None:
        unlinked = await self._repository.unlink_essay(
            user_id=user_id,
            student_id=student_id,
            essay_id=essay_id,
            announce=Announcements(user_id, correlation_id),
        )
        if not unlinked:
            raise EssayLinkNotFoundError(f"Student {student_id} has no essay {essay_id}.")
        await self._waker.wake()

    async def get_essay_writer(self, *, user_id: str, essay_id: uuid.UUID) -> EssayWriterRecord:
        writer = await self._repository.get_essay_writer(user_id=user_id, essay_id=essay_id)
        if writer is None:
            raise EssayLinkNotFoundError(f"None of your students wrote essay {essay_id}.")
        return writer


def _normalise_email(email: str | None) -> str | None:
    # Addresses are compared case-insensitively; store one spelling so the unique key holds.
    return email.strip().lower() if email is not None else None
