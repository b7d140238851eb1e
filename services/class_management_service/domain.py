"""Plain records the ports return: detached from any session or connection by construction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, auto
from typing import Any, Generic, Literal, TypeVar

from common_core.events import EventEnvelope

from common_core import ClassStatus, CourseCode, PersonNameV1

RecordT = TypeVar("RecordT")


class Keep(Enum):
    """A field a change leaves as it is (where ``None`` is a value: "no e-mail")."""

    KEEP = auto()


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One row a change writes to the outbox in its own transaction: an event of a change
    topic, or a record of a state topic (``payload`` ``None``: a tombstone)."""

    event_id: uuid.UUID
    event_type: str
    topic: str
    aggregate_id: str
    payload: EventEnvelope[Any] | None

    @classmethod
    def of(cls, envelope: EventEnvelope[Any]) -> OutboxEntry:
        data = envelope.data
        return cls(
            envelope.event_id, envelope.event_type, envelope.event_type, data.aggregate_id, envelope
        )


@dataclass(frozen=True, slots=True)
class ClassRecord:
    id: uuid.UUID
    name: str
    course_code: CourseCode
    student_count: int
    created_by_user_id: str
    created_at: datetime
    updated_at: datetime
    version: int
    status: ClassStatus = ClassStatus.ACTIVE

    @property
    def archived(self) -> bool:
        return self.status is ClassStatus.ARCHIVED


@dataclass(frozen=True, slots=True)
class StudentRecord:
    id: uuid.UUID
    first_name: str
    last_name: str
    legal_full_name: str
    email: str | None
    class_ids: tuple[uuid.UUID, ...]
    created_by_user_id: str
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(frozen=True, slots=True)
class RosterEntryRecord:
    """A student as a class roster shows it: who, not which other classes."""

    student_id: uuid.UUID
    first_name: str
    last_name: str
    legal_full_name: str
    email: str | None


@dataclass(frozen=True, slots=True)
class EssayLinkRecord:
    essay_id: uuid.UUID
    student_id: uuid.UUID
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StudentIdentityRecord:
    """Who a student is, as the essay's writer shows it."""

    id: uuid.UUID
    first_name: str
    last_name: str
    legal_full_name: str
    email: str | None


@dataclass(frozen=True, slots=True)
class EssayWriterRecord:
    """Which student wrote an essay: the link, and the student."""

    essay_id: uuid.UUID
    student_id: uuid.UUID
    created_at: datetime
    student: StudentIdentityRecord


# The orders of a class or student list: a field, descending with a leading "-". Names
# sort in Swedish order (students by last name, then first name); ties by id.
SortKey = Literal["name", "-name", "created_at", "-created_at", "updated_at", "-updated_at"]


@dataclass(frozen=True, slots=True)
class ListFilters:
    """What a class or student list is narrowed to, and its order; None: not narrowed."""

    q: str | None = None  # a case- and accent-insensitive substring of the names (or e-mail)
    ids: tuple[uuid.UUID, ...] | None = None  # only these (others' or missing ids are absent)
    updated_since: datetime | None = None
    sort: SortKey | None = None  # None: the list's default order


NO_FILTERS = ListFilters()


@dataclass(frozen=True, slots=True)
class Page(Generic[RecordT]):
    items: list[RecordT]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class StudentChanges:
    """A student update (merge-patch): ``None`` (or ``KEEP`` for the e-mail, where ``None``
    removes it) leaves a field as it is."""

    first_name: str | None = None
    last_name: str | None = None
    legal_full_name: str | None = None
    email: str | Keep | None = KEEP
    add_class_ids: tuple[uuid.UUID, ...] = field(default_factory=tuple)
    remove_class_ids: tuple[uuid.UUID, ...] = field(default_factory=tuple)


# -- importing a class list -------------------------------------------------------------

MAX_IMPORT_ROWS = 1000

# What an import did with a row: a new student, one of the owner's students (matched by
# e-mail) added to the class, or one already in it.
ImportOutcome = Literal["created", "added", "unchanged"]


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One valid row of an import (``row`` counts data rows from 1); ``email`` lower case."""

    row: int
    name: PersonNameV1
    email: str | None


@dataclass(frozen=True, slots=True)
class ImportedStudent:
    """What an import did with one row; ``student_id`` None: a dry run's new student."""

    row: int
    student_id: uuid.UUID | None
    outcome: ImportOutcome


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did (or, a dry run, would do), row by row in row order."""

    class_id: uuid.UUID
    dry_run: bool
    students: tuple[ImportedStudent, ...]

    def _count(self, outcome: ImportOutcome) -> int:
        return sum(1 for student in self.students if student.outcome == outcome)

    @property
    def created(self) -> int:
        return self._count("created")

    @property
    def added(self) -> int:
        return self._count("added")

    @property
    def unchanged(self) -> int:
        return self._count("unchanged")


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One pending outbox row, as the relay sends it."""

    id: int
    event_id: uuid.UUID
    topic: str
    key: bytes
    value: bytes | None  # None: a tombstone
    headers: list[tuple[str, bytes]]
    attempts: int


# -- Idempotency-Key records (IdempotencyStoreProtocol) ----------------------------------


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The first response to an Idempotency-Key, as it is replayed."""

    fingerprint: str  # of the request that produced it (method, path, body)
    status: int
    headers: dict[str, str]
    body: str


@dataclass(frozen=True, slots=True)
class Claimed:
    """This request now owns the key: run it, then save or release the key."""


@dataclass(frozen=True, slots=True)
class Replay:
    """The key was answered before: ``response`` is what to replay."""

    response: StoredResponse

    @property
    def fingerprint(self) -> str:
        return self.response.fingerprint


@dataclass(frozen=True, slots=True)
class InUse:
    """Another request with this key is still running; ``fingerprint`` is that request's."""

    fingerprint: str


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The store cannot be reached: serve the request without the guarantee."""

    reason: str


# What claiming an Idempotency-Key found.
ClaimResult = Claimed | Replay | InUse | Unavailable
