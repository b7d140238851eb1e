"""``ClassRepositoryProtocol`` on PostgreSQL: binds values to the statements of
``classes.py``, ``students.py`` and ``essays.py`` and turns their rows into records.

Each operation is as few round trips as its guarantees allow (the service README's
"Database sessions" lists them): a read or a write is one statement, a student update that
changes memberships one transaction. No row of the user's is None (or False) here: the
service decides that it is a 404. Rows become frozen records before the session closes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from common_core import ClassStatus, CourseCode, PersonNameV1
from services.class_management_service.domain import (
    NO_FILTERS,
    ClassRecord,
    EssayLinkRecord,
    ImportReport,
    ImportRow,
    ListFilters,
    OutboxEntry,
    Page,
    RosterEntryRecord,
    StudentChanges,
    StudentRecord,
)
from services.class_management_service.exceptions import (
    ClassArchivedError,
    ClassNotFoundError,
    DependencyUnavailableError,
    EssayAlreadyAssociatedError,
)
from services.class_management_service.implementations.postgres import classes as class_sql
from services.class_management_service.implementations.postgres import essays as essay_sql
from services.class_management_service.implementations.postgres import students as student_sql
from services.class_management_service.implementations.postgres.changes import (
    imported,
    locked_class,
    locked_classes,
    locked_student,
    members_changed,
    merged,
    next_version,
    read_classes,
)
from services.class_management_service.implementations.postgres.outbox import (
    WRITE_ENTRIES,
    entries_params,
)
from services.class_management_service.implementations.postgres.sessions import (
    Sessions,
    constraint_name,
    not_found,
    require_version,
    student_integrity_error,
)
from services.class_management_service.implementations.postgres.student_relations import (
    StudentRelations,
)
from services.class_management_service.implementations.postgres.tables import (
    class_record,
    filter_params,
    filter_shape,
    roster_entry_record,
    student_record,
)
from services.class_management_service.protocols import AnnouncerProtocol


class PostgreSQLClassRepositoryImpl(StudentRelations):
    """The ``ClassRepositoryProtocol`` on PostgreSQL, sharing one engine (and its pool); a
    student's classes and essays, and an essay's writer, are ``StudentRelations``'."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._db = Sessions(engine)
        self._course_ids = class_sql.CourseIds()

    # -- classes --------------------------------------------------------------------

    async def create_class(
        self, *, user_id: str, name: str, course_code: CourseCode, announce: AnnouncerProtocol
    ) -> ClassRecord:
        async with self._db.session("create_class", transaction=False) as session:
            now = datetime.now(UTC)
            record = ClassRecord(uuid.uuid4(), name, course_code, 0, user_id, now, now, 1)
            await session.execute(
                class_sql.CREATE_CLASS,
                {
                    "class_id": record.id,
                    "name": name,
                    "course_id": await self._course_ids.of(session, course_code),
                    "user_id": user_id,
                    "now": now,
                    **entries_params(announce.class_changed(None, record)),
                },
            )
            return record

    async def get_class(self, *, user_id: str, class_id: uuid.UUID) -> ClassRecord | None:
        key = {"user_id": user_id, "class_id": class_id}
        rows = await self._db.read("get_class", class_sql.GET_CLASS, key)
        if not rows:
            not_found("get_class")
            return None
        return class_record(rows[0])

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
        return await self._db.page(
            "list_classes",
            class_sql.class_list(
                course_code is not None,
                *filter_shape(filters),
                filters.sort or "-created_at",
                by_status=status is not None,
            ),
            {
                "user_id": user_id,
                "course_code": course_code,
                "status": status,
                **filter_params(filters),
            },
            class_record,
            limit,
            offset,
        )

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
        key = {"user_id": user_id, "class_id": class_id}
        # Read, then written only if still at the version read: two statements and no lock.
        # When another change came in between, again under the class's lock.
        async with self._db.session("update_class", transaction=False) as session:
            rows = (await session.execute(class_sql.GET_CLASS, key)).all()
            if not rows:
                not_found("update_class")
                return None
            before = class_record(rows[0])
            require_version(before.version, expected_version)
            written = await self._write_class(session, before, name, course_code, status, announce)
            if written is not None:
                return written
        async with self._db.session("update_class", transaction=True) as session:
            locked = await locked_class(session, key, expected_version)
            if locked is None:
                not_found("update_class")
                return None
            written = await self._write_class(session, locked, name, course_code, status, announce)
            assert written is not None, "a locked class is at the version read"
            return written

    async def _write_class(
        self,
        session: AsyncSession,
        before: ClassRecord,
        name: str | None,
        course_code: CourseCode | None,
        status: ClassStatus | None,
        announce: AnnouncerProtocol,
    ) -> ClassRecord | None:
        """The class after the change, written if it is still at ``before``'s version (None
        when it is not: nothing was written)."""
        after = replace(
            before,
            name=name or before.name,
            course_code=course_code or before.course_code,
            status=status or before.status,
        )
        if after == before:
            return before  # nothing changes: no new version, no event
        after = next_version(after)
        result = await session.execute(
            class_sql.UPDATE_CLASS,
            {
                "class_id": before.id,
                "name": after.name,
                "course_id": await self._course_ids.of(session, after.course_code),
                "status": after.status,
                "version": after.version,
                "now": after.updated_at,
                **entries_params(announce.class_changed(before, after)),
            },
        )
        return after if result.first() is not None else None

    async def delete_class(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID,
        expected_version: int | None,
        announce: AnnouncerProtocol,
    ) -> bool:
        key = {"user_id": user_id, "class_id": class_id}
        async with self._db.session("delete_class", transaction=True) as session:
            before = await locked_class(session, key, expected_version)
            if before is None:
                not_found("delete_class")
                return False
            # Each member's class_ids change: a new version and an event of each.
            await session.execute(class_sql.LOCK_MEMBERS, key)
            members = [student_record(row) for row in await session.execute(class_sql.MEMBERS, key)]
            entries = announce.class_changed(before, None)
            for member in members:
                left = replace(
                    member, class_ids=tuple(c for c in member.class_ids if c != class_id)
                )
                entries += announce.student_changed(member, next_version(left))
            await session.execute(
                class_sql.DELETE_CLASS,
                {
                    "class_id": class_id,
                    "bumped_student_ids": [member.id for member in members],
                    "now": datetime.now(UTC),
                    **entries_params(entries),
                },
            )
            return True

    async def get_roster(
        self, *, user_id: str, class_id: uuid.UUID, limit: int, offset: int
    ) -> Page[RosterEntryRecord] | None:
        params = {"user_id": user_id, "class_id": class_id, "limit": limit, "offset": offset}
        rows = await self._db.read("get_roster", class_sql.ROSTER, params)
        if rows:
            total = rows[0].total
        else:
            summary = (await self._db.read("get_roster", class_sql.ROSTER_EMPTY_PAGE, params))[0]
            total = summary.total
            if not summary.owned:
                not_found("get_roster")
                return None
        return Page([roster_entry_record(row) for row in rows], total, limit, offset)

    # -- students -------------------------------------------------------------------

    async def create_student(
        self,
        *,
        user_id: str,
        name: PersonNameV1,
        email: str | None,
        class_ids: Sequence[uuid.UUID],
        announce: AnnouncerProtocol,
    ) -> StudentRecord:
        unique_class_ids = tuple(sorted(set(class_ids)))
        now = datetime.now(UTC)
        record = StudentRecord(
            id=uuid.uuid4(),
            first_name=name.first_name,
            last_name=name.last_name,
            legal_full_name=name.legal_full_name,
            email=email,
            class_ids=unique_class_ids,
            created_by_user_id=user_id,
            created_at=now,
            updated_at=now,
            version=1,
        )
        entries = announce.student_changed(None, record)
        # One statement after reading the classes it joins (none: no read); when one of them
        # changed in between, again with the classes locked.
        async with self._db.session("create_student", transaction=False) as session:
            joined = await read_classes(
                session, user_id, unique_class_ids, joining=unique_class_ids
            )
            if await self._insert_student(session, record, joined, entries, announce):
                return record
        async with self._db.session("create_student", transaction=True) as session:
            joined = await locked_classes(
                session, user_id, unique_class_ids, joining=unique_class_ids
            )
            written = await self._insert_student(session, record, joined, entries, announce)
            assert written, "locked classes are at the versions read"
            return record

    async def _insert_student(
        self,
        session: AsyncSession,
        record: StudentRecord,
        joined: Mapping[uuid.UUID, ClassRecord],
        entries: list[OutboxEntry],
        announce: AnnouncerProtocol,
    ) -> bool:
        """Write the new student into the classes ``joined`` (as read) with its rows
        ``entries`` and theirs; False when a class had changed since it was read (nothing
        was written)."""
        for joined_class in joined.values():
            entries = entries + announce.class_changed(
                joined_class, members_changed(joined_class, 1)
            )
        try:
            await session.execute(
                student_sql.CREATE_STUDENT,
                {
                    "student_id": record.id,
                    "first_name": record.first_name,
                    "last_name": record.last_name,
                    "legal_full_name": record.legal_full_name,
                    "email": record.email,
                    "user_id": record.created_by_user_id,
                    "now": record.created_at,
                    "class_ids": list(joined),
                    "bumped_class_ids": list(joined),
                    "bumped_versions": [joined_class.version for joined_class in joined.values()],
                    **entries_params(entries),
                },
            )
        except exc.IntegrityError as error:
            if student_sql.refused(error):
                return False
            raise student_integrity_error(error, record.email) from error
        return True

    async def get_student(self, *, user_id: str, student_id: uuid.UUID) -> StudentRecord | None:
        key = {"user_id": user_id, "student_id": student_id}
        rows = await self._db.read("get_student", student_sql.GET_STUDENT, key)
        if not rows:
            not_found("get_student")
            return None
        return student_record(rows[0])

    async def list_students(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID | None,
        limit: int,
        offset: int,
        filters: ListFilters = NO_FILTERS,
    ) -> Page[StudentRecord]:
        return await self._db.page(
            "list_students",
            student_sql.student_list(
                class_id is not None,
                *filter_shape(filters),
                filters.sort or "name",
                student_sql.searched_by_keys(filters.q),
            ),
            {"user_id": user_id, "class_id": class_id, **filter_params(filters)},
            student_record,
            limit,
            offset,
        )

    async def update_student(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        changes: StudentChanges,
        expected_version: int | None,
        announce: AnnouncerProtocol,
    ) -> StudentRecord | None:
        key = {"user_id": user_id, "student_id": student_id}
        touched = tuple(sorted({*changes.add_class_ids, *changes.remove_class_ids}))
        if not touched:
            # Names or e-mail alone: read, then written only if still at the version read
            # (two statements, no lock); another change in between: again, under locks.
            async with self._db.session("update_student", transaction=False) as session:
                rows = (await session.execute(student_sql.GET_STUDENT, key)).all()
                if not rows:
                    not_found("update_student")
                    return None
                before = student_record(rows[0])
                require_version(before.version, expected_version)
                written = await self._write_student(session, before, changes, {}, announce)
                if written is not None:
                    return written
        async with self._db.session("update_student", transaction=True) as session:
            try:
                classes = await locked_classes(
                    session, user_id, touched, joining=changes.add_class_ids
                )
            except (ClassNotFoundError, ClassArchivedError):
                if not await self._db.read("update_student", student_sql.GET_STUDENT, key):
                    not_found("update_student")
                    return None  # a missing student is the first thing to say
                raise
            locked = await locked_student(session, key, expected_version)
            if locked is None:
                not_found("update_student")
                return None
            written = await self._write_student(session, locked, changes, classes, announce)
            assert written is not None, "a locked student is at the version read"
            return written

    async def _write_student(
        self,
        session: AsyncSession,
        before: StudentRecord,
        changes: StudentChanges,
        classes: Mapping[uuid.UUID, ClassRecord],
        announce: AnnouncerProtocol,
    ) -> StudentRecord | None:
        """The student after ``changes`` (the classes it joins or leaves locked and read as
        ``classes``), written with those classes' new versions if it is still at
        ``before``'s version (None when it is not: nothing was written)."""
        removed = set(changes.remove_class_ids)
        left = sorted(removed & set(before.class_ids))
        joined = sorted(set(changes.add_class_ids) - removed - set(before.class_ids))
        after = merged(before, changes, set(before.class_ids) - set(left) | set(joined))
        if after == before:
            return before  # nothing changes: no new version, no event
        after = next_version(after)
        entries = announce.student_changed(before, after)
        for class_id in sorted((*left, *joined)):
            entries += announce.class_changed(
                classes[class_id],
                members_changed(classes[class_id], 1 if class_id in joined else -1),
            )
        try:
            result = await session.execute(
                student_sql.UPDATE_STUDENT,
                {
                    "student_id": before.id,
                    **{field: getattr(after, field) for field in student_sql.STUDENT_FIELDS},
                    "version": after.version,
                    "now": after.updated_at,
                    "add_ids": joined,
                    "remove_ids": left,
                    "bumped_class_ids": [*left, *joined],
                    **entries_params(entries),
                },
            )
        except exc.IntegrityError as error:
            raise student_integrity_error(error, after.email) from error
        return after if result.first() is not None else None

    async def delete_student(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        expected_version: int | None,
        announce: AnnouncerProtocol,
    ) -> bool:
        key = {"user_id": user_id, "student_id": student_id}
        # Its classes are locked before it, so they are read first and checked after: a
        # membership change in between (rare) means trying again.
        for _attempt in range(5):
            async with self._db.session("delete_student", transaction=True) as session:
                seen = (await session.execute(student_sql.GET_STUDENT, key)).first()
                if seen is None:
                    not_found("delete_student")
                    return False
                classes = await locked_classes(session, user_id, tuple(seen.class_ids))
                before = await locked_student(session, key, expected_version)
                if before is None:
                    not_found("delete_student")
                    return False
                if set(before.class_ids) != set(classes):
                    continue
                entries = announce.student_changed(before, None)
                for left in classes.values():
                    entries += announce.class_changed(left, members_changed(left, -1))
                await session.execute(
                    student_sql.DELETE_STUDENT,
                    {
                        "student_id": student_id,
                        "bumped_class_ids": list(classes),
                        "now": datetime.now(UTC),
                        **entries_params(entries),
                    },
                )
                return True
        raise DependencyUnavailableError("The student's classes kept changing; try again.")

    async def import_students(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID,
        rows: Sequence[ImportRow],
        dry_run: bool,
        announce: AnnouncerProtocol,
    ) -> ImportReport | None:
        key = {"user_id": user_id, "class_id": class_id}
        emails = sorted({row.email for row in rows if row.email is not None})
        # The same statements whatever the number of rows: the class locked, then the
        # students its e-mails name, then (unless a dry run) one write.
        async with self._db.session("import_students", transaction=True) as session:
            target = await locked_class(session, key, None)
            if target is None:
                not_found("import_students")
                return None
            if target.archived:
                raise ClassArchivedError(f"Class {class_id} is archived: it gains no students.")
            existing: dict[str, StudentRecord] = {}
            if emails:
                params = {"user_id": user_id, "emails": emails}
                locked = [
                    row.id
                    for row in await session.execute(student_sql.LOCK_STUDENTS_BY_EMAIL, params)
                ]
                if locked:
                    found = await session.execute(
                        student_sql.STUDENTS_BY_ID, {"student_ids": locked}
                    )
                    existing = {
                        record.email: record
                        for record in map(student_record, found)
                        if record.email is not None
                    }
            changes = imported(target, rows, existing, dry_run=dry_run)
            if dry_run or changes.target is None:
                return changes.report  # a dry run, or every row a member already: no event
            entries = []
            for record in changes.created:
                entries += announce.student_changed(None, record)
            for before, after in changes.joined:
                entries += announce.student_changed(before, after)
            entries += announce.class_changed(*changes.target)
            added_ids = [after.id for _, after in changes.joined]
            try:
                await session.execute(
                    student_sql.IMPORT_STUDENTS,
                    {
                        "class_id": class_id,
                        "user_id": user_id,
                        "now": changes.target[1].updated_at,
                        "new_ids": [record.id for record in changes.created],
                        **{
                            f"new_{field}s": [getattr(record, field) for record in changes.created]
                            for field in student_sql.STUDENT_FIELDS
                        },
                        "joining_ids": [*(record.id for record in changes.created), *added_ids],
                        "bumped_student_ids": added_ids,
                        "bumped_class_ids": [class_id],
                        **entries_params(entries),
                    },
                )
            except exc.IntegrityError as error:
                raise student_integrity_error(error, None) from error
            return changes.report

    # -- essays ---------------------------------------------------------------------

    async def associate_essay(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        essay_id: uuid.UUID,
        announce: AnnouncerProtocol,
    ) -> tuple[EssayLinkRecord, bool] | None:
        now = datetime.now(UTC)
        params = {
            "user_id": user_id,
            "student_id": student_id,
            "essay_id": essay_id,
            "link_id": uuid.uuid4(),
            "now": now,
            # Written only if this statement makes the link.
            **entries_params([announce.essay_linked(EssayLinkRecord(essay_id, student_id, now))]),
        }
        # One statement. Only when another request linked the essay after this statement's
        # snapshot was taken does neither link show: then the next statement sees it.
        for _attempt in (1, 2):
            async with self._db.session("associate_essay", transaction=False) as session:
                try:
                    row = (await session.execute(essay_sql.LINK_ESSAY, params)).one()
                except exc.IntegrityError as error:
                    if "student_id" in constraint_name(error):
                        not_found("associate_essay")  # the student was deleted meanwhile
                        return None
                    raise
            owned, made_essay, made_student, made_at, had_student, had_at = row
            if not owned:
                not_found("associate_essay")
                return None
            if made_essay is not None:
                return EssayLinkRecord(made_essay, made_student, made_at), True
            if had_student is not None:
                if had_student != student_id:
                    raise EssayAlreadyAssociatedError(
                        f"Essay {essay_id} already belongs to another student."
                    )
                return EssayLinkRecord(essay_id, had_student, had_at), False
        raise DependencyUnavailableError("The essay's link changed while it was being read.")

    async def publish_state(self, *, announce: AnnouncerProtocol, batch_size: int) -> int:
        written = 0
        for batch, record in (
            (class_sql.CLASS_STATE_BATCH, class_record),
            (student_sql.STUDENT_STATE_BATCH, student_record),
        ):
            after = uuid.UUID(int=0)
            while True:
                async with self._db.session("publish_state", transaction=True) as session:
                    rows = list(await session.execute(batch, {"after": after, "limit": batch_size}))
                    if not rows:
                        break
                    entries = [announce.state(record(row)) for row in rows]
                    await session.execute(WRITE_ENTRIES, entries_params(entries))
                written += len(rows)
                after = rows[-1].id
        return written
