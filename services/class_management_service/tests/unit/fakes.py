"""Hand-written in-memory fakes of the service's ports, for unit tests of the service layer."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from common_core.events import STATE_TOPICS, EventEnvelope

from common_core import ClassStatus, CourseCode, PersonNameV1
from services.class_management_service.domain import (
    NO_FILTERS,
    ClassRecord,
    EssayLinkRecord,
    EssayWriterRecord,
    ImportReport,
    ImportRow,
    ListFilters,
    OutboxEntry,
    Page,
    RosterEntryRecord,
    SortKey,
    StudentChanges,
    StudentIdentityRecord,
    StudentRecord,
)
from services.class_management_service.exceptions import (
    ClassArchivedError,
    ClassNotFoundError,
    EssayAlreadyAssociatedError,
    StudentAlreadyExistsError,
    VersionConflictError,
)
from services.class_management_service.implementations.postgres.changes import (
    imported,
    members_changed,
    merged,
    next_version,
)
from services.class_management_service.protocols import (
    AnnouncerProtocol,
    ClassRepositoryProtocol,
    OutboxWakerProtocol,
)

RowT = TypeVar("RowT", ClassRecord, StudentRecord)


class FakeClassRepository:
    """Keeps rows in dicts; ``outbox`` records the events a real repository would commit."""

    def __init__(self) -> None:
        self.classes: dict[uuid.UUID, ClassRecord] = {}
        self.students: dict[uuid.UUID, StudentRecord] = {}
        self.essays: dict[uuid.UUID, EssayLinkRecord] = {}
        self.outbox: list[EventEnvelope[Any]] = []  # the change topics' events
        self.states: list[OutboxEntry] = []  # the state topics' records

    def _owned_class(self, user_id: str, class_id: uuid.UUID) -> ClassRecord | None:
        record = self.classes.get(class_id)
        return record if record and record.created_by_user_id == user_id else None

    def _owned_student(self, user_id: str, student_id: uuid.UUID) -> StudentRecord | None:
        record = self.students.get(student_id)
        return record if record and record.created_by_user_id == user_id else None

    @staticmethod
    def _check(version: int, expected: int | None) -> None:
        if expected is not None and expected != version:
            raise VersionConflictError(f"at {version}, not {expected}")

    def _require_classes(
        self, user_id: str, class_ids: Sequence[uuid.UUID], joining: Sequence[uuid.UUID] = ()
    ) -> None:
        for class_id in class_ids:
            if self._owned_class(user_id, class_id) is None:
                raise ClassNotFoundError(f"Class not found: {class_id}.")
        for class_id in joining:
            if self.classes[class_id].archived:
                raise ClassArchivedError(f"Class archived: {class_id}.")

    def _write(self, entries: Sequence[OutboxEntry]) -> None:
        for entry in entries:
            if entry.topic in STATE_TOPICS:
                self.states.append(entry)
            else:
                assert entry.payload is not None
                self.outbox.append(entry.payload)

    def _members_changed(
        self, announce: AnnouncerProtocol, class_ids: Sequence[uuid.UUID], delta: int
    ) -> None:
        for class_id in class_ids:
            before = self.classes[class_id]
            self.classes[class_id] = members_changed(before, delta)
            self._write(announce.class_changed(before, self.classes[class_id]))

    async def create_class(
        self, *, user_id: str, name: str, course_code: CourseCode, announce: AnnouncerProtocol
    ) -> ClassRecord:
        now = datetime.now(UTC)
        record = ClassRecord(uuid.uuid4(), name, course_code, 0, user_id, now, now, 1)
        self.classes[record.id] = record
        self._write(announce.class_changed(None, record))
        return record

    async def get_class(self, *, user_id: str, class_id: uuid.UUID) -> ClassRecord | None:
        return self._owned_class(user_id, class_id)

    async def list_classes(
        self,
        *,
        user_id: str,
        limit: int,
        offset: int,
        course_code: CourseCode | None = None,
        filters: ListFilters = NO_FILTERS,
        status: ClassStatus | None = None,
    ) -> Page[ClassRecord]:
        rows = [
            r
            for r in self.classes.values()
            if r.created_by_user_id == user_id
            and (course_code is None or r.course_code == course_code)
            and (status is None or r.status == status)
            and _matches(filters, r.id, r.updated_at, r.name)
        ]
        rows = _sorted(rows, filters.sort or "-created_at", lambda r: (_folded(r.name),))
        return Page(rows[offset : offset + limit], len(rows), limit, offset)

    async def update_class(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID,
        name: str | None,
        course_code: CourseCode | None,
        expected_version: int | None,
        announce: AnnouncerProtocol,
        status: ClassStatus | None = None,
    ) -> ClassRecord | None:
        current = self._owned_class(user_id, class_id)
        if current is None:
            return None
        self._check(current.version, expected_version)
        updated = replace(
            current,
            name=name or current.name,
            course_code=course_code or current.course_code,
            status=status or current.status,
        )
        if updated == current:
            return current
        updated = next_version(updated)
        self.classes[class_id] = updated
        self._write(announce.class_changed(current, updated))
        return updated

    async def delete_class(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID,
        expected_version: int | None,
        announce: AnnouncerProtocol,
    ) -> bool:
        current = self._owned_class(user_id, class_id)
        if current is None:
            return False
        self._check(current.version, expected_version)
        del self.classes[class_id]
        self._write(announce.class_changed(current, None))
        for member in [s for s in self.students.values() if class_id in s.class_ids]:
            kept = tuple(c for c in member.class_ids if c != class_id)
            self.students[member.id] = next_version(replace(member, class_ids=kept))
            self._write(announce.student_changed(member, self.students[member.id]))
        return True

    async def get_roster(
        self, *, user_id: str, class_id: uuid.UUID, limit: int, offset: int
    ) -> Page[RosterEntryRecord] | None:
        if self._owned_class(user_id, class_id) is None:
            return None
        rows = [
            RosterEntryRecord(s.id, s.first_name, s.last_name, s.legal_full_name, s.email)
            for s in self.students.values()
            if class_id in s.class_ids
        ]
        return Page(rows[offset : offset + limit], len(rows), limit, offset)

    async def create_student(
        self,
        *,
        user_id: str,
        name: PersonNameV1,
        email: str | None,
        class_ids: Sequence[uuid.UUID],
        announce: AnnouncerProtocol,
    ) -> StudentRecord:
        self._require_classes(user_id, class_ids, joining=class_ids)
        if email and any(
            s.email == email and s.created_by_user_id == user_id for s in self.students.values()
        ):
            raise StudentAlreadyExistsError(email)
        now = datetime.now(UTC)
        unique = tuple(sorted(set(class_ids)))
        record = StudentRecord(
            uuid.uuid4(),
            name.first_name,
            name.last_name,
            name.legal_full_name,
            email,
            unique,
            user_id,
            now,
            now,
            1,
        )
        self.students[record.id] = record
        self._write(announce.student_changed(None, record))
        self._members_changed(announce, unique, 1)
        return record

    async def get_student(self, *, user_id: str, student_id: uuid.UUID) -> StudentRecord | None:
        return self._owned_student(user_id, student_id)

    async def list_students(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID | None,
        limit: int,
        offset: int,
        filters: ListFilters = NO_FILTERS,
    ) -> Page[StudentRecord]:
        rows = [
            s
            for s in self.students.values()
            if s.created_by_user_id == user_id
            and (class_id is None or class_id in s.class_ids)
            and _matches(
                filters, s.id, s.updated_at, s.first_name, s.last_name, s.legal_full_name, s.email
            )
        ]
        rows = _sorted(
            rows, filters.sort or "name", lambda s: (_folded(s.last_name), _folded(s.first_name))
        )
        return Page(rows[offset : offset + limit], len(rows), limit, offset)

    async def update_student(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        changes: StudentChanges,
        expected_version: int | None,
        announce: AnnouncerProtocol,
    ) -> StudentRecord | None:
        current = self._owned_student(user_id, student_id)
        if current is None:
            return None
        self._check(current.version, expected_version)
        self._require_classes(
            user_id,
            (*changes.add_class_ids, *changes.remove_class_ids),
            joining=changes.add_class_ids,
        )
        left = sorted(set(changes.remove_class_ids) & set(current.class_ids))
        joined = sorted(
            set(changes.add_class_ids) - set(changes.remove_class_ids) - set(current.class_ids)
        )
        updated = merged(current, changes, set(current.class_ids) - set(left) | set(joined))
        if updated == current:
            return current
        updated = next_version(updated)
        self.students[student_id] = updated
        self._write(announce.student_changed(current, updated))
        self._members_changed(announce, left, -1)
        self._members_changed(announce, joined, 1)
        return updated

    async def delete_student(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        expected_version: int | None,
        announce: AnnouncerProtocol,
    ) -> bool:
        current = self._owned_student(user_id, student_id)
        if current is None:
            return False
        self._check(current.version, expected_version)
        del self.students[student_id]
        self._write(announce.student_changed(current, None))
        self._members_changed(announce, current.class_ids, -1)
        return True

    async def import_students(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID,
        rows: Sequence[ImportRow],
        dry_run: bool,
        announce: AnnouncerProtocol,
    ) -> ImportReport | None:
        target = self._owned_class(user_id, class_id)
        if target is None:
            return None
        if target.archived:
            raise ClassArchivedError(f"Class archived: {class_id}.")
        existing = {
            s.email: s
            for s in self.students.values()
            if s.created_by_user_id == user_id and s.email is not None
        }
        changes = imported(target, rows, existing, dry_run=dry_run)
        if dry_run or changes.target is None:
            return changes.report
        for record in changes.created:
            self.students[record.id] = record
            self._write(announce.student_changed(None, record))
        for before, after in changes.joined:
            self.students[after.id] = after
            self._write(announce.student_changed(before, after))
        self.classes[class_id] = changes.target[1]
        self._write(announce.class_changed(*changes.target))
        return changes.report

    async def associate_essay(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        essay_id: uuid.UUID,
        announce: AnnouncerProtocol,
    ) -> tuple[EssayLinkRecord, bool] | None:
        if self._owned_student(user_id, student_id) is None:
            return None
        existing = self.essays.get(essay_id)
        if existing is not None:
            if existing.student_id != student_id:
                raise EssayAlreadyAssociatedError(str(essay_id))
            return existing, False
        link = EssayLinkRecord(essay_id, student_id, datetime.now(UTC))
        self.essays[essay_id] = link
        self._write([announce.essay_linked(link)])
        return link, True

    async def list_student_essays(
        self, *, user_id: str, student_id: uuid.UUID, limit: int, offset: int
    ) -> Page[EssayLinkRecord] | None:
        if self._owned_student(user_id, student_id) is None:
            return None
        rows = [link for link in self.essays.values() if link.student_id == student_id]
        return Page(rows[offset : offset + limit], len(rows), limit, offset)

    async def list_student_classes(
        self, *, user_id: str, student_id: uuid.UUID, limit: int, offset: int, sort: SortKey
    ) -> Page[ClassRecord] | None:
        student = self._owned_student(user_id, student_id)
        if student is None:
            return None
        rows = [self.classes[class_id] for class_id in student.class_ids]
        rows = _sorted(rows, sort, lambda r: (_folded(r.name),))
        return Page(rows[offset : offset + limit], len(rows), limit, offset)

    async def unlink_essay(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        essay_id: uuid.UUID,
        announce: AnnouncerProtocol,
    ) -> bool:
        link = self.essays.get(essay_id)
        if link is None or link.student_id != student_id:
            return False
        if self._owned_student(user_id, student_id) is None:
            return False
        del self.essays[essay_id]
        self._write([announce.essay_unlinked(essay_id, student_id, datetime.now(UTC))])
        return True

    async def publish_state(self, *, announce: AnnouncerProtocol, batch_size: int) -> int:
        records: list[ClassRecord | StudentRecord] = [*self.classes.values()]
        records += self.students.values()
        self._write([announce.state(record) for record in records])
        return len(records)

    async def get_essay_writer(
        self, *, user_id: str, essay_id: uuid.UUID
    ) -> EssayWriterRecord | None:
        link = self.essays.get(essay_id)
        student = self._owned_student(user_id, link.student_id) if link else None
        if link is None or student is None:
            return None
        identity = StudentIdentityRecord(
            student.id,
            student.first_name,
            student.last_name,
            student.legal_full_name,
            student.email,
        )
        return EssayWriterRecord(link.essay_id, link.student_id, link.created_at, identity)


def _folded(text: str | None) -> str:
    # As the database's search_folded: accents removed, lower case (close enough for fakes).
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _matches(
    filters: ListFilters, record_id: uuid.UUID, updated_at: datetime, *texts: str | None
) -> bool:
    return (
        (filters.q is None or any(_folded(filters.q) in _folded(text) for text in texts))
        and (filters.ids is None or record_id in filters.ids)
        and (filters.updated_since is None or updated_at >= filters.updated_since)
    )


def _sorted(rows: list[RowT], sort: SortKey, name: Callable[[RowT], tuple[str, ...]]) -> list[RowT]:
    field = sort.removeprefix("-")
    return sorted(
        rows,
        key=lambda r: (*name(r), str(r.id)) if field == "name" else (getattr(r, field), str(r.id)),
        reverse=sort.startswith("-"),
    )

    async def publish_state(self, *, announce: AnnouncerProtocol, batch_size: int) -> int:
        records: list[ClassRecord | StudentRecord] = [*self.classes.values()]
        records += self.students.values()
        self._write([announce.state(record) for record in records])
        return len(records)


class RecordingWaker:
    """Counts relay wake-ups (the service's only direct contact with publishing)."""

    def __init__(self) -> None:
        self.wakes = 0

    async def wake(self) -> None:
        self.wakes += 1


if TYPE_CHECKING:
    # Each fake against the port it stands in for: `make lint` (strict mypy, which checks
    # this file) fails as soon as a fake drifts from its protocol.
    _repository: ClassRepositoryProtocol = FakeClassRepository()
    _waker: OutboxWakerProtocol = RecordingWaker()
