"""Locking and reading the aggregates a change changes, and their states after it.

A change locks every aggregate whose ``GET`` it changes (classes first, then students, each
in id order; see classes.py on locks), reads them after the locks, and computes their new
states here: so it knows whether anything changes at all (if not: no version, no event),
each new version, and the ``previous`` values of its events.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from services.class_management_service.domain import (
    KEEP,
    ClassRecord,
    StudentChanges,
    StudentRecord,
)
from services.class_management_service.exceptions import ClassNotFoundError
from services.class_management_service.implementations.postgres import classes as class_sql
from services.class_management_service.implementations.postgres import students as student_sql
from services.class_management_service.implementations.postgres.sessions import require_version
from services.class_management_service.implementations.postgres.tables import (
    class_record,
    student_record,
)

VersionedT = TypeVar("VersionedT", ClassRecord, StudentRecord)


def next_version(record: VersionedT) -> VersionedT:
    """``record`` at its next version, changed now."""
    return replace(record, version=record.version + 1, updated_at=datetime.now(UTC))


def members_changed(record: ClassRecord, delta: int) -> ClassRecord:
    """The class after ``delta`` students joined (or left, when negative) it."""
    return next_version(replace(record, student_count=record.student_count + delta))


def merged(
    before: StudentRecord, changes: StudentChanges, class_ids: Iterable[uuid.UUID]
) -> StudentRecord:
    """The student with ``changes`` merged in (merge-patch: what is not given stays)."""
    return replace(
        before,
        first_name=changes.first_name or before.first_name,
        last_name=changes.last_name or before.last_name,
        legal_full_name=changes.legal_full_name or before.legal_full_name,
        email=before.email if changes.email is KEEP else changes.email,
        class_ids=tuple(sorted(class_ids)),
    )


async def locked_class(
    session: AsyncSession, key: Mapping[str, Any], expected_version: int | None
) -> ClassRecord | None:
    """The user's class, locked and read; None when not there. Raises VersionConflictError."""
    row: Any = (await session.execute(class_sql.LOCK_CLASS, key)).first()
    if row is None:
        return None
    if row.version != row.snapshot_version:  # the lock waited: read after it
        row = (await session.execute(class_sql.GET_CLASS, key)).one()
    record = class_record(row)
    require_version(record.version, expected_version)
    return record


async def locked_student(
    session: AsyncSession, key: Mapping[str, Any], expected_version: int | None
) -> StudentRecord | None:
    """The user's student, locked and read; None when not there. Raises
    VersionConflictError."""
    row: Any = (await session.execute(student_sql.LOCK_STUDENT, key)).first()
    if row is None:
        return None
    if row.version != row.snapshot_version:  # the lock waited: read after it
        row = (await session.execute(student_sql.GET_STUDENT, key)).one()
    record = student_record(row)
    require_version(record.version, expected_version)
    return record


async def locked_classes(
    session: AsyncSession, user_id: str, class_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, ClassRecord]:
    """The user's classes ``class_ids``, locked in id order and read, by id; raises
    ClassNotFoundError naming each that is not the user's."""
    if not class_ids:
        return {}
    params = {"class_ids": sorted(set(class_ids))}
    rows: Sequence[Any] = (await session.execute(class_sql.LOCK_CLASSES, params)).all()
    if any(row.version != row.snapshot_version for row in rows):  # a lock waited
        rows = (await session.execute(class_sql.CLASSES_BY_ID, params)).all()
    owned = {
        record.id: record
        for record in map(class_record, rows)
        if record.created_by_user_id == user_id
    }
    missing = sorted(str(class_id) for class_id in set(class_ids) - owned.keys())
    if missing:
        raise ClassNotFoundError(f"Class not found: {', '.join(missing)}.")
    return dict(sorted(owned.items()))
