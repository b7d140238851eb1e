"""Ports of the service, as ``typing.Protocol``: repository, event publisher, outbox waker,
Idempotency-Key store, service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from common_core import ClassStatus, CourseCode, PersonNameV1
from services.class_management_service.domain import (
    NO_FILTERS,
    ClaimResult,
    ClassRecord,
    EssayLinkRecord,
    EssayWriterRecord,
    ImportReport,
    ImportRow,
    ListFilters,
    OutboxEntry,
    OutboxMessage,
    Page,
    RosterEntryRecord,
    SortKey,
    StoredResponse,
    StudentChanges,
    StudentRecord,
)


class AnnouncerProtocol(Protocol):
    """Builds the outbox rows of changes (the service's; the repository calls it with the
    states it locked and read)."""

    def class_changed(
        self, before: ClassRecord | None, after: ClassRecord | None
    ) -> list[OutboxEntry]:
        """The rows of a class created (``before`` None), changed, or deleted (``after``
        None)."""
        ...

    def student_changed(
        self, before: StudentRecord | None, after: StudentRecord | None
    ) -> list[OutboxEntry]:
        """The rows of a student created (``before`` None), changed, or deleted (``after``
        None)."""
        ...

    def essay_linked(self, link: EssayLinkRecord) -> OutboxEntry:
        """The row announcing a new essay link."""
        ...

    def essay_unlinked(
        self, essay_id: uuid.UUID, student_id: uuid.UUID, at: datetime
    ) -> OutboxEntry:
        """The row announcing that the essay's link to the student was removed at ``at``."""
        ...

    def state(self, record: ClassRecord | StudentRecord) -> OutboxEntry:
        """The state-topic record of an aggregate as it is."""
        ...


class ClassRepositoryProtocol(Protocol):
    """Classes, students, memberships and essay links of one owner at a time.

    Every method runs in its own transaction. Methods that change state take an
    ``announce``r and write the outbox rows it builds from each changed aggregate's states
    before and after, in that same transaction; a change that changes nothing writes none
    and returns the record as it was.
    Lookups of another owner's rows behave exactly like lookups of missing rows: None (or
    False) here, and the service decides that it is a 404. Each method has the name of the
    service's method that calls it.
    """

    async def create_class(
        self, *, user_id: str, name: str, course_code: CourseCode, announce: AnnouncerProtocol
    ) -> ClassRecord:
        """Store a new class. Raises CourseNotFoundError for a course that is not seeded."""
        ...

    async def get_class(self, *, user_id: str, class_id: uuid.UUID) -> ClassRecord | None:
        """The class, or None when it does not exist or belongs to someone else."""
        ...

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
        """The owner's classes as ``filters`` narrow and sort them (newest first unless
        ``filters.sort`` says otherwise), only those of ``status`` when given."""
        ...

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
        """Apply the non-None fields (``status``: archive or restore) and bump the version;
        None when not found. A change writes ``event(new version)``; a request that changes
        nothing writes no event.

        Raises VersionConflictError when ``expected_version`` is stale.
        """
        ...

    async def delete_class(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID,
        expected_version: int | None,
        announce: AnnouncerProtocol,
    ) -> bool:
        """Delete the class and its memberships (students stay) and write ``event(version
        after the delete)``; False when not found. Raises VersionConflictError."""
        ...

    async def get_roster(
        self, *, user_id: str, class_id: uuid.UUID, limit: int, offset: int
    ) -> Page[RosterEntryRecord] | None:
        """The class's students by name; None when the class is not found."""
        ...

    async def create_student(
        self,
        *,
        user_id: str,
        name: PersonNameV1,
        email: str | None,
        class_ids: Sequence[uuid.UUID],
        announce: AnnouncerProtocol,
    ) -> StudentRecord:
        """Store a student enrolled in ``class_ids``.

        Raises ClassNotFoundError for a class the owner does not have, ClassArchivedError
        for an archived one, and StudentAlreadyExistsError for an email the owner already
        uses.
        """
        ...

    async def get_student(self, *, user_id: str, student_id: uuid.UUID) -> StudentRecord | None:
        """The student, or None."""
        ...

    async def list_students(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID | None,
        limit: int,
        offset: int,
        filters: ListFilters = NO_FILTERS,
    ) -> Page[StudentRecord]:
        """The owner's students (optionally of one class) as ``filters`` narrow and sort
        them (by name unless ``filters.sort`` says otherwise)."""
        ...

    async def update_student(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        changes: StudentChanges,
        expected_version: int | None,
        announce: AnnouncerProtocol,
    ) -> StudentRecord | None:
        """Apply the given changes; None when not found. A change writes ``event(new
        version)``; a request that changes nothing writes no event.

        Raises ClassNotFoundError, StudentAlreadyExistsError, VersionConflictError.
        """
        ...

    async def delete_student(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        expected_version: int | None,
        announce: AnnouncerProtocol,
    ) -> bool:
        """Delete the student with memberships and essay links and write ``event(version
        after the delete)``; False when not found. Raises VersionConflictError."""
        ...

    async def import_students(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID,
        rows: Sequence[ImportRow],
        dry_run: bool,
        announce: AnnouncerProtocol,
    ) -> ImportReport | None:
        """Import ``rows`` (e-mails lower case, none twice) into the class, in one
        transaction: a row whose e-mail is one of the owner's students is that student
        (added unless a member), every other row a new student; each student created or
        added, and the class (once), write their events. A dry run writes nothing. None when
        the class is not found; raises ClassArchivedError, StudentAlreadyExistsError (a
        student with one of the e-mails was created meanwhile)."""
        ...

    async def associate_essay(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        essay_id: uuid.UUID,
        announce: AnnouncerProtocol,
    ) -> tuple[EssayLinkRecord, bool] | None:
        """Link an essay to a student (idempotent) and write its ``linked`` event the first
        time; (link, created) or None if no student.

        Raises EssayAlreadyAssociatedError when the essay belongs to another student.
        """
        ...

    async def list_student_essays(
        self, *, user_id: str, student_id: uuid.UUID, limit: int, offset: int
    ) -> Page[EssayLinkRecord] | None:
        """A page of the student's essay links, oldest first; None when the student is not
        found."""
        ...

    async def list_student_classes(
        self, *, user_id: str, student_id: uuid.UUID, limit: int, offset: int, sort: SortKey
    ) -> Page[ClassRecord] | None:
        """A page of the classes the student is in; None when the student is not found."""
        ...

    async def unlink_essay(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        essay_id: uuid.UUID,
        announce: AnnouncerProtocol,
    ) -> bool:
        """Remove the essay's link to the student and write its ``essay_unlinked`` row;
        False when the student (of the owner's) has no such link."""
        ...

    async def get_essay_writer(
        self, *, user_id: str, essay_id: uuid.UUID
    ) -> EssayWriterRecord | None:
        """The essay's link with its student, or None unless one of the owner's students
        wrote it."""
        ...

    async def publish_state(self, *, announce: AnnouncerProtocol, batch_size: int) -> int:
        """Write the state record of every class and student (every owner's) to the outbox,
        ``batch_size`` aggregates per transaction; returns how many it wrote."""
        ...


class ClassEventPublisherProtocol(Protocol):
    """Sends outbox messages to the broker."""

    async def start(self) -> None:
        """Connect; raises when the broker is unreachable."""
        ...

    async def stop(self) -> None: ...

    async def publish(self, messages: Sequence[OutboxMessage]) -> list[BaseException | None]:
        """Send in order; per message, None once the broker acknowledged it, else the error."""
        ...


class OutboxWakerProtocol(Protocol):
    """Tells the relays (this process's and other replicas') that rows were committed."""

    async def wake(self) -> None: ...


class EventDeliveryHealthProtocol(Protocol):
    """What health and metrics read about event delivery: the broker and the outbox relay."""

    async def check_broker(self) -> None:
        """Return once the broker answers; raise when it does not (callers bound the wait)."""
        ...

    def relay_problem(self) -> str | None:
        """Why the relay is not delivering (not running, or its last pass failed); None when
        it is."""
        ...

    async def outbox_backlog(self) -> tuple[int, float]:
        """Pending outbox rows and the age in seconds of the oldest; raises when the database
        cannot be reached."""
        ...


class IdempotencyStoreProtocol(Protocol):
    """The first response to each (user, Idempotency-Key), shared by every replica.

    No method raises when the store is unreachable: ``claim`` says so (``Unavailable``),
    ``save`` and ``release`` count the failure and return (the request is served anyway).
    """

    async def claim(self, user_id: str, key: str, fingerprint: str) -> ClaimResult:
        """Take the key for the request with ``fingerprint``: ``Claimed`` when it is now this
        request's, ``Replay`` with the stored response, ``InUse`` while another request with
        the key runs, ``Unavailable`` when the store cannot be reached."""
        ...

    async def save(self, user_id: str, key: str, response: StoredResponse) -> None:
        """Keep ``response`` as the key's answer (for the store's time to live)."""
        ...

    async def release(self, user_id: str, key: str) -> None:
        """Free a claimed key without an answer (the request failed): a retry may run."""
        ...


class ClassManagementServiceProtocol(Protocol):
    """Business rules of classes and students. Raises domain errors from exceptions.py.

    One verb per operation, from the route's handler through this protocol to the
    repository's method (``create_class``, ``get_roster``, ``associate_essay``...). The
    service decides "not found" for every operation (ClassNotFoundError,
    StudentNotFoundError); routes only translate domain errors into problems.
    """

    async def create_class(
        self, *, user_id: str, correlation_id: uuid.UUID, name: str, course_codes: Sequence[str]
    ) -> ClassRecord:
        """Create a class of exactly one known course (COURSE_NOT_FOUND/MULTIPLE_COURSE_ERROR)."""
        ...

    async def get_class(self, *, user_id: str, class_id: uuid.UUID) -> ClassRecord:
        """The class; raises ClassNotFoundError."""
        ...

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
        """The caller's classes as ``filters`` narrow and sort them (newest first by
        default), only those of ``status`` when given (else active and archived)."""
        ...

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
        """Apply the given fields (``status``: archive or restore); the class as it is after
        the change.

        Raises ClassNotFoundError, VersionConflictError, COURSE_NOT_FOUND/MULTIPLE_COURSE_ERROR.
        """
        ...

    async def delete_class(
        self,
        *,
        user_id: str,
        correlation_id: uuid.UUID,
        class_id: uuid.UUID,
        expected_version: int | None,
    ) -> None:
        """Delete; raises ClassNotFoundError, VersionConflictError."""
        ...

    async def get_roster(
        self, *, user_id: str, class_id: uuid.UUID, limit: int, offset: int
    ) -> Page[RosterEntryRecord]:
        """The class's students; raises ClassNotFoundError."""
        ...

    async def create_student(
        self,
        *,
        user_id: str,
        correlation_id: uuid.UUID,
        name: PersonNameV1,
        email: str | None,
        class_ids: Sequence[uuid.UUID],
    ) -> StudentRecord:
        """Create a student; raises ClassNotFoundError, ClassArchivedError,
        StudentAlreadyExistsError."""
        ...

    async def get_student(self, *, user_id: str, student_id: uuid.UUID) -> StudentRecord:
        """The student; raises StudentNotFoundError."""
        ...

    async def list_students(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID | None,
        limit: int,
        offset: int,
        filters: ListFilters,
    ) -> Page[StudentRecord]:
        """The caller's students, optionally of one class (ClassNotFoundError if not
        theirs), as ``filters`` narrow and sort them (by name by default)."""
        ...

    async def update_student(
        self,
        *,
        user_id: str,
        correlation_id: uuid.UUID,
        student_id: uuid.UUID,
        changes: StudentChanges,
        expected_version: int | None,
    ) -> StudentRecord:
        """Apply the given changes; the student as it is after the change.

        Raises StudentNotFoundError, ClassNotFoundError, ClassArchivedError (a class in
        ``add_class_ids`` is archived), StudentAlreadyExistsError, VersionConflictError.
        """
        ...

    async def delete_student(
        self,
        *,
        user_id: str,
        correlation_id: uuid.UUID,
        student_id: uuid.UUID,
        expected_version: int | None,
    ) -> None:
        """Delete; raises StudentNotFoundError, VersionConflictError."""
        ...

    async def import_students(
        self,
        *,
        user_id: str,
        correlation_id: uuid.UUID,
        class_id: uuid.UUID,
        rows: Sequence[ImportRow],
        dry_run: bool,
    ) -> ImportReport:
        """Import a class list (see the repository's ``import_students``); the report, row
        by row. Raises ValidationFailedError (no rows), TooManyRowsError (over
        MAX_IMPORT_ROWS), ClassNotFoundError, ClassArchivedError, StudentAlreadyExistsError.
        """
        ...

    async def associate_essay(
        self,
        *,
        user_id: str,
        correlation_id: uuid.UUID,
        student_id: uuid.UUID,
        essay_id: uuid.UUID,
    ) -> tuple[EssayLinkRecord, bool]:
        """Link an essay to the student; (link, created).

        Raises StudentNotFoundError, EssayAlreadyAssociatedError.
        """
        ...

    async def list_student_essays(
        self, *, user_id: str, student_id: uuid.UUID, limit: int, offset: int
    ) -> Page[EssayLinkRecord]:
        """A page of the student's essays, oldest first; raises StudentNotFoundError."""
        ...

    async def list_student_classes(
        self, *, user_id: str, student_id: uuid.UUID, limit: int, offset: int, sort: SortKey
    ) -> Page[ClassRecord]:
        """A page of the student's classes; raises StudentNotFoundError."""
        ...

    async def unlink_essay(
        self, *, user_id: str, correlation_id: uuid.UUID, student_id: uuid.UUID, essay_id: uuid.UUID
    ) -> None:
        """Unlink the essay from the student (an EssayUnlinkedV1 event); raises
        EssayLinkNotFoundError when the caller's student has no such link."""
        ...

    async def get_essay_writer(self, *, user_id: str, essay_id: uuid.UUID) -> EssayWriterRecord:
        """Which of the caller's students wrote the essay; raises EssayLinkNotFoundError."""
        ...


class TokenVerifierProtocol(Protocol):
    """Checks a bearer token the gateway issued and says whom it names."""

    def verify(self, token: str) -> str:
        """The token's ``sub`` claim, as it is (the caller checks it as a user id).

        Raises TokenExpiredError for an expired token and InvalidTokenError for any other
        token that is not well-formed, validly signed with an allowed algorithm, meant for
        this audience and issuer, and current.
        """
        ...
