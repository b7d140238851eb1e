"""Plain records the ports return: detached from any session or connection by construction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from common_core.events import EventEnvelope

from common_core import CourseCode

RecordT = TypeVar("RecordT")

# Builds the event of a change from the record as it is after the change; the repository
# writes it to the outbox in the change's own transaction.
EventFactory = Callable[[RecordT], EventEnvelope[Any]]
# Builds the event of an update from the version the update produces. The repository may
# build it before the change runs (so that change and event are one statement) and then
# stores the event with the version the database actually produced.
VersionedEventFactory = Callable[[int], EventEnvelope[Any]]


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
    """A student update; ``None`` means "leave as it is"."""

    first_name: str | None = None
    last_name: str | None = None
    legal_full_name: str | None = None
    email: str | None = None
    add_class_ids: tuple[uuid.UUID, ...] = field(default_factory=tuple)
    remove_class_ids: tuple[uuid.UUID, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One pending outbox row, as the relay sends it."""

    id: int
    event_id: uuid.UUID
    topic: str
    key: bytes
    value: bytes
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
