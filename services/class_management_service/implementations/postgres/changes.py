"""Locking and reading the aggregates a change changes, and their states after it.

A change locks every aggregate whose ``GET`` it changes (classes first, then students, each
in id order; see classes.py on locks), reads them after the locks, and computes their new
states here: so it knows whether anything changes at all (if not: no version, no event),
each new version, and the ``previous`` values of its events.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncSession

from services.class_management_service.domain import (
    KEEP,
    ClassRecord,
    ImportedStudent,
    ImportReport,
    ImportRow,
    StudentChanges,
    StudentRecord,
)
from services.class_management_service.exceptions import ClassArchivedError, ClassNotFoundError
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
    return await _locked(
        session, class_sql.LOCK_CLASS, class_sql.GET_CLASS, class_record, key, expected_version
    )


async def locked_student(
    session: AsyncSession, key: Mapping[str, Any], expected_version: int | None
) -> StudentRecord | None:
    """The user's student, locked and read; None when not there. Raises
    VersionConflictError."""
    return await _locked(
        session,
        student_sql.LOCK_STUDENT,
        student_sql.GET_STUDENT,
        student_record,
        key,
        expected_version,
    )


async def _locked(
    session: AsyncSession,
    lock: Executable,
    read: Executable,
    record_of: Callable[[Any], VersionedT],
    key: Mapping[str, Any],
    expected_version: int | None,
) -> VersionedT | None:
    """The row ``lock`` locks and reads, read again by ``read`` when the lock waited (its
    subqueries saw the snapshot from before the wait), as a record at ``expected_version``."""
    row: Any = (await session.execute(lock, key)).first()
    if row is None:
        return None
    if row.version != row.snapshot_version:  # the lock waited: read after it
        row = (await session.execute(read, key)).one()
    record = record_of(row)
    require_version(record.version, expected_version)
    return record


async def locked_classes(
    session: AsyncSession,
    user_id: str,
    class_ids: Sequence[uuid.UUID],
    joining: Collection[uuid.UUID] = (),
) -> dict[uuid.UUID, ClassRecord]:
    """The user's classes ``class_ids``, locked in id order and read, by id; raises
    ClassNotFoundError naming each that is not the user's, then ClassArchivedError naming
    each of ``joining`` (the classes the change would add a member to) that is archived."""
    return await _owned_classes(session, user_id, class_ids, joining, locked=True)


async def read_classes(
    session: AsyncSession,
    user_id: str,
    class_ids: Sequence[uuid.UUID],
    joining: Collection[uuid.UUID] = (),
) -> dict[uuid.UUID, ClassRecord]:
    """The user's classes ``class_ids`` as they are now, without a lock (a write then bumps
    them only at the versions read), by id; raises as ``locked_classes`` does."""
    return await _owned_classes(session, user_id, class_ids, joining, locked=False)


async def _owned_classes(
    session: AsyncSession,
    user_id: str,
    class_ids: Sequence[uuid.UUID],
    joining: Collection[uuid.UUID],
    *,
    locked: bool,
) -> dict[uuid.UUID, ClassRecord]:
    if not class_ids:
        return {}
    params = {"class_ids": sorted(set(class_ids))}
    rows: Sequence[Any] = []
    if locked:
        rows = (await session.execute(class_sql.LOCK_CLASSES, params)).all()
    if not locked or any(row.version != row.snapshot_version for row in rows):  # a lock waited
        rows = (await session.execute(class_sql.CLASSES_BY_ID, params)).all()
    owned = {
        record.id: record
        for record in map(class_record, rows)
        if record.created_by_user_id == user_id
    }
    missing = sorted(str(class_id) for class_id in set(class_ids) - owned.keys())
    if missing:
        raise ClassNotFoundError(f"Class not found: {', '.join(missing)}.")
    archived = sorted(str(class_id) for class_id in joining if owned[class_id].archived)
    if archived:
        raise ClassArchivedError(f"An archived class gains no students: {', '.join(archived)}.")
    return dict(sorted(owned.items()))


@dataclass(frozen=True, slots=True)
class ImportChanges:
    """What an import changes: its report, the students it creates, the students it adds
    (each before and after), and the class before and after (None: nothing changes)."""

    report: ImportReport
    created: tuple[StudentRecord, ...]
    joined: tuple[tuple[StudentRecord, StudentRecord], ...]
    target: tuple[ClassRecord, ClassRecord] | None


def imported(
    target: ClassRecord,
    rows: Sequence[ImportRow],
    existing: Mapping[str, StudentRecord],
    *,
    dry_run: bool,
) -> ImportChanges:
    """The import of ``rows`` into ``target``: a row whose e-mail is one of ``existing``'s
    (the owner's students by e-mail) is that student, added unless it is a member already;
    every other row is a new student in the class. A dry run's new students have no id."""
    now = datetime.now(UTC)
    report: list[ImportedStudent] = []
    created: list[StudentRecord] = []
    joined: list[tuple[StudentRecord, StudentRecord]] = []
    for row in rows:
        match = existing.get(row.email) if row.email is not None else None
        if match is None:
            student = StudentRecord(
                id=uuid.uuid4(),
                first_name=row.name.first_name,
                last_name=row.name.last_name,
                legal_full_name=row.name.legal_full_name,
                email=row.email,
                class_ids=(target.id,),
                created_by_user_id=target.created_by_user_id,
                created_at=now,
                updated_at=now,
                version=1,
            )
            created.append(student)
            report.append(ImportedStudent(row.row, None if dry_run else student.id, "created"))
        elif target.id in match.class_ids:
            report.append(ImportedStudent(row.row, match.id, "unchanged"))
        else:
            after = replace(match, class_ids=tuple(sorted((*match.class_ids, target.id))))
            joined.append((match, next_version(after)))
            report.append(ImportedStudent(row.row, match.id, "added"))
    joining = len(created) + len(joined)
    return ImportChanges(
        report=ImportReport(target.id, dry_run, tuple(report)),
        created=tuple(created),
        joined=tuple(joined),
        target=(target, members_changed(target, joining)) if joining else None,
    )
