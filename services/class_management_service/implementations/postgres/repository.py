"""``ClassRepositoryProtocol`` on PostgreSQL: binds values to the statements of
``classes.py``, ``students.py`` and ``essays.py`` and turns their rows into records.

Each operation is as few round trips as its guarantees allow (the service README's
"Database sessions" lists them): a read or a write is one statement, a student update that
changes memberships one transaction. No row of the user's is None (or False) here: the
service decides that it is a 404. Rows become frozen records before the session closes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncEngine

from common_core import CourseCode, PersonNameV1
from services.class_management_service.domain import (
    NO_FILTERS,
    ClassRecord,
    EssayLinkRecord,
    EventFactory,
    ListFilters,
    Page,
    RosterEntryRecord,
    StudentChanges,
    StudentRecord,
    VersionedEventFactory,
)
from services.class_management_service.exceptions import (
    ClassNotFoundError,
    DependencyUnavailableError,
    EssayAlreadyAssociatedError,
)
from services.class_management_service.implementations.postgres import classes as class_sql
from services.class_management_service.implementations.postgres import essays as essay_sql
from services.class_management_service.implementations.postgres import students as student_sql
from services.class_management_service.implementations.postgres.outbox import (
    event_before,
    event_params,
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


class PostgreSQLClassRepositoryImpl(StudentRelations):
    """The ``ClassRepositoryProtocol`` on PostgreSQL, sharing one engine (and its pool); a
    student's classes and essays, and an essay's writer, are ``StudentRelations``'."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._db = Sessions(engine)
        self._course_ids = class_sql.CourseIds()

    # -- classes --------------------------------------------------------------------

    async def create_class(
        self, *, user_id: str, name: str, course_code: CourseCode, event: EventFactory[ClassRecord]
    ) -> ClassRecord:
        async with self._db.session("create_class", transaction=False) as session:
            now = datetime.now(UTC)
            record = ClassRecord(
                id=uuid.uuid4(),
                name=name,
                course_code=course_code,
                student_count=0,
                created_by_user_id=user_id,
                created_at=now,
                updated_at=now,
                version=1,
            )
            await session.execute(
                class_sql.CREATE_CLASS,
                {
                    "class_id": record.id,
                    "name": name,
                    "course_id": await self._course_ids.of(session, course_code),
                    "user_id": user_id,
                    "now": now,
                    **event_params(event(record)),
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
    ) -> Page[ClassRecord]:
        return await self._db.page(
            "list_classes",
            class_sql.class_list(
                course_code is not None, *filter_shape(filters), filters.sort or "-created_at"
            ),
            {"user_id": user_id, "course_code": course_code, **filter_params(filters)},
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
        event: VersionedEventFactory,
    ) -> ClassRecord | None:
        key = {"user_id": user_id, "class_id": class_id}
        if name is None and course_code is None:
            current = await self.get_class(user_id=user_id, class_id=class_id)
            if current is not None:
                require_version(current.version, expected_version)
            return current
        # One statement (atomic on its own): the change and its event, or neither.
        async with self._db.session("update_class", transaction=False) as session:
            row = await self._db.change(
                "update_class",
                class_sql.update_class_statement(expected_version is not None),
                key,
                {
                    "name": name,
                    "course_id": (
                        await self._course_ids.of(session, course_code)
                        if course_code is not None
                        else None
                    ),
                    "now": datetime.now(UTC),
                    **event_before(event, expected_version),
                },
                class_sql.CLASS_VERSION,
                expected_version,
                session=session,
            )
            return class_record(row) if row is not None else None

    async def delete_class(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID,
        expected_version: int | None,
        event: VersionedEventFactory,
    ) -> bool:
        key = {"user_id": user_id, "class_id": class_id}
        statement = class_sql.delete_class_statement(expected_version is not None)
        values = event_before(event, expected_version)
        deleted = await self._db.change(
            "delete_class", statement, key, values, class_sql.CLASS_VERSION, expected_version
        )
        return deleted is not None

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
        event: EventFactory[StudentRecord],
    ) -> StudentRecord:
        unique_class_ids = tuple(dict.fromkeys(class_ids))
        now = datetime.now(UTC)
        record = StudentRecord(
            id=uuid.uuid4(),
            first_name=name.first_name,
            last_name=name.last_name,
            legal_full_name=name.legal_full_name,
            email=email,
            class_ids=tuple(sorted(unique_class_ids)),
            created_by_user_id=user_id,
            created_at=now,
            updated_at=now,
            version=1,
        )
        async with self._db.session("create_student", transaction=False) as session:
            try:
                created = (
                    await session.execute(
                        student_sql.CREATE_STUDENT,
                        {
                            "student_id": record.id,
                            "first_name": record.first_name,
                            "last_name": record.last_name,
                            "legal_full_name": record.legal_full_name,
                            "email": email,
                            "user_id": user_id,
                            "now": now,
                            "class_ids": list(unique_class_ids),
                            "class_count": len(unique_class_ids),
                            **event_params(event(record)),
                        },
                    )
                ).scalar_one()
            except exc.IntegrityError as error:
                raise student_integrity_error(error, email) from error
            if not created:
                # Nothing was written: name the classes that are not the user's.
                await class_sql.require_owned_classes(user_id, unique_class_ids, session)
                raise ClassNotFoundError("A class was deleted while the student was saved.")
            return record

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
                class_id is not None, *filter_shape(filters), filters.sort or "name"
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
        event: VersionedEventFactory,
    ) -> StudentRecord | None:
        key = {"user_id": user_id, "student_id": student_id}
        fields = {field: getattr(changes, field) for field in student_sql.STUDENT_FIELDS_CHANGED}
        if not changes.add_class_ids and not changes.remove_class_ids:
            if all(value is None for value in fields.values()):
                current = await self.get_student(user_id=user_id, student_id=student_id)
                if current is not None:
                    require_version(current.version, expected_version)
                return current
            # Names and e-mail only: one statement, the change and its event or neither.
            async with self._db.session("update_student", transaction=False) as session:
                try:
                    row = await self._db.change(
                        "update_student",
                        student_sql.update_student_statement(expected_version is not None),
                        key,
                        {
                            **fields,
                            "now": datetime.now(UTC),
                            **event_before(event, expected_version),
                        },
                        student_sql.STUDENT_VERSION,
                        expected_version,
                        session=session,
                    )
                except exc.IntegrityError as error:
                    raise student_integrity_error(error, changes.email) from error
                return student_record(row) if row is not None else None
        async with self._db.session("update_student", transaction=True) as session:
            # Lock the student first: the change then reads the memberships as they are.
            version = (
                await session.execute(student_sql.STUDENT_VERSION.with_for_update(), key)
            ).scalar_one_or_none()
            if version is None:
                not_found("update_student")
                return None
            require_version(version, expected_version)
            await class_sql.require_owned_classes(
                user_id, (*changes.add_class_ids, *changes.remove_class_ids), session
            )
            remove_ids = list(dict.fromkeys(changes.remove_class_ids))
            add_ids = [c for c in dict.fromkeys(changes.add_class_ids) if c not in remove_ids]
            try:
                row = (
                    await session.execute(
                        student_sql.CHANGE_MEMBERSHIPS,
                        {
                            "student_id": student_id,
                            **fields,
                            "now": datetime.now(UTC),
                            "add_ids": add_ids,
                            "remove_ids": remove_ids,
                            # The version is known: the student is locked at ``version``.
                            **event_params(event(version + 1)),
                        },
                    )
                ).one()
            except exc.IntegrityError as error:
                raise student_integrity_error(error, changes.email) from error
            return student_record(row)

    async def delete_student(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        expected_version: int | None,
        event: VersionedEventFactory,
    ) -> bool:
        key = {"user_id": user_id, "student_id": student_id}
        statement = student_sql.delete_student_statement(expected_version is not None)
        values = event_before(event, expected_version)
        deleted = await self._db.change(
            "delete_student", statement, key, values, student_sql.STUDENT_VERSION, expected_version
        )
        return deleted is not None

    # -- essays ---------------------------------------------------------------------

    async def associate_essay(
        self, *, user_id: str, student_id: uuid.UUID, essay_id: uuid.UUID
    ) -> tuple[EssayLinkRecord, bool] | None:
        params = {
            "user_id": user_id,
            "student_id": student_id,
            "essay_id": essay_id,
            "link_id": uuid.uuid4(),
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
