"""PostgreSQL repository. It owns its sessions: one per operation, opened and closed here.

Each public method runs inside ``_transaction``: a fresh ``AsyncSession`` whose transaction
commits when the block succeeds and rolls back on any exception. Rows are turned into plain
records before the session closes, so nothing lazy-loads later (no ``MissingGreenlet``,
no ``DetachedInstanceError``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from common_core.events import EventEnvelope, topic_for
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    and_,
    delete,
    exc,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import array_agg
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from common_core import CourseCode, PersonNameV1
from services.class_management_service import metrics
from services.class_management_service.domain import (
    ClassRecord,
    EssayLinkRecord,
    EventFactory,
    Page,
    StudentChanges,
    StudentRecord,
)
from services.class_management_service.exceptions import (
    ClassManagementError,
    ClassNotFoundError,
    CourseNotFoundError,
    DependencyUnavailableError,
    EssayAlreadyAssociatedError,
    StudentAlreadyExistsError,
    VersionConflictError,
)
from services.class_management_service.models_db import (
    Course,
    EssayStudentAssociation,
    EventOutbox,
    Student,
    UserClass,
    class_student_association,
)

membership = class_student_association

# Errors that mean "the database cannot be reached or is restarting", not "bad request".
_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.TimeoutError,
    ConnectionError,
    OSError,
    TimeoutError,
)


def is_database_unavailable(error: BaseException) -> bool:
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, _UNAVAILABLE_ERRORS):
        return True
    # asyncpg reports a server that is shutting down or starting as these SQLSTATE classes.
    sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None) or ""
    return sqlstate.startswith(("08", "57P"))


def _constraint_name(error: exc.IntegrityError) -> str:
    cause = getattr(error.orig, "__cause__", None)
    name = getattr(cause, "constraint_name", None)
    return name if isinstance(name, str) else str(error.orig)


def _class_columns() -> tuple[Any, ...]:
    student_count = (
        select(func.count())
        .select_from(membership)
        .where(membership.c.class_id == UserClass.id)
        .scalar_subquery()
    )
    return (
        UserClass.id,
        UserClass.name,
        Course.course_code,
        student_count.label("student_count"),
        UserClass.created_by_user_id,
        UserClass.created_at,
        UserClass.updated_at,
        UserClass.version,
    )


def _class_query() -> Select[Any]:
    return select(*_class_columns()).join(Course, Course.id == UserClass.course_id)


def _student_query() -> Select[Any]:
    class_ids = (
        select(
            func.coalesce(
                array_agg(membership.c.class_id),  # type: ignore[no-untyped-call]
                literal_column("'{}'::uuid[]"),
            )
        )
        .where(membership.c.student_id == Student.id)
        .scalar_subquery()
    )
    return select(
        Student.id,
        Student.first_name,
        Student.last_name,
        Student.legal_full_name,
        Student.email,
        class_ids.label("class_ids"),
        Student.created_by_user_id,
        Student.created_at,
        Student.updated_at,
        Student.version,
    )


def _class_record(row: Row[Any]) -> ClassRecord:
    return ClassRecord(
        id=row.id,
        name=row.name,
        course_code=CourseCode(row.course_code),
        student_count=row.student_count,
        created_by_user_id=row.created_by_user_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


def _student_record(row: Row[Any]) -> StudentRecord:
    return StudentRecord(
        id=row.id,
        first_name=row.first_name,
        last_name=row.last_name,
        legal_full_name=row.legal_full_name,
        email=row.email,
        class_ids=tuple(sorted(row.class_ids or (), key=str)),
        created_by_user_id=row.created_by_user_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
    )


def _by_name() -> tuple[ColumnElement[Any], ...]:
    return (Student.last_name.asc(), Student.first_name.asc(), Student.id.asc())


class PostgreSQLClassRepositoryImpl:
    """The ``ClassRepositoryProtocol`` on PostgreSQL, sharing one engine (and its pool)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        self._course_ids: dict[CourseCode, uuid.UUID] = {}

    @asynccontextmanager
    async def _transaction(self, operation: str) -> AsyncIterator[AsyncSession]:
        started = perf_counter()
        try:
            async with self._sessions() as session, session.begin():
                yield session
        except ClassManagementError as error:
            metrics.DB_OPERATION_ERRORS.labels(operation, type(error).__name__).inc()
            raise
        except Exception as error:
            metrics.DB_OPERATION_ERRORS.labels(operation, type(error).__name__).inc()
            if is_database_unavailable(error):
                raise DependencyUnavailableError("The database is unavailable.") from error
            raise
        finally:
            metrics.DB_OPERATION_DURATION.labels(operation).observe(perf_counter() - started)

    # -- helpers inside a transaction -------------------------------------------------

    async def _course_id(self, session: AsyncSession, code: CourseCode) -> uuid.UUID:
        # Courses are seeded by a migration and never change at run time: read them once.
        if not self._course_ids:
            rows = await session.execute(select(Course.course_code, Course.id))
            self._course_ids = {CourseCode(row.course_code): row.id for row in rows}
        course_id = self._course_ids.get(code)
        if course_id is None:
            raise CourseNotFoundError(f"Course {code} is not available.")
        return course_id

    @staticmethod
    async def _write_event(session: AsyncSession, envelope: EventEnvelope[Any]) -> None:
        await session.execute(
            insert(EventOutbox).values(
                event_id=envelope.event_id,
                event_type=envelope.event_type,
                topic=topic_for(envelope.data),
                aggregate_id=envelope.data.aggregate_id,
                payload=envelope.model_dump(mode="json"),
            )
        )

    @staticmethod
    async def _load_class(
        session: AsyncSession, user_id: str, class_id: uuid.UUID
    ) -> ClassRecord | None:
        row = (
            await session.execute(
                _class_query().where(
                    UserClass.id == class_id, UserClass.created_by_user_id == user_id
                )
            )
        ).one_or_none()
        return _class_record(row) if row else None

    @staticmethod
    async def _load_student(
        session: AsyncSession, user_id: str, student_id: uuid.UUID
    ) -> StudentRecord | None:
        row = (
            await session.execute(
                _student_query().where(
                    Student.id == student_id, Student.created_by_user_id == user_id
                )
            )
        ).one_or_none()
        return _student_record(row) if row else None

    @staticmethod
    async def _require_owned_classes(
        session: AsyncSession, user_id: str, class_ids: Sequence[uuid.UUID]
    ) -> None:
        wanted = set(class_ids)
        if not wanted:
            return
        found = set(
            (
                await session.scalars(
                    select(UserClass.id).where(
                        UserClass.id.in_(wanted), UserClass.created_by_user_id == user_id
                    )
                )
            ).all()
        )
        missing = sorted(str(class_id) for class_id in wanted - found)
        if missing:
            raise ClassNotFoundError(f"Class not found: {', '.join(missing)}.")

    @staticmethod
    async def _check_version(
        session: AsyncSession,
        model: type[UserClass] | type[Student],
        row_id: uuid.UUID,
        user_id: str,
        expected_version: int | None,
    ) -> bool:
        """Lock the row; False when it does not exist, VersionConflictError when stale."""
        version = await session.scalar(
            select(model.version)
            .where(model.id == row_id, model.created_by_user_id == user_id)
            .with_for_update()
        )
        if version is None:
            return False
        if expected_version is not None and version != expected_version:
            raise VersionConflictError(
                f"The resource is at version {version}, not {expected_version}."
            )
        return True

    # -- classes --------------------------------------------------------------------

    async def create_class(
        self, *, user_id: str, name: str, course_code: CourseCode, event: EventFactory[ClassRecord]
    ) -> ClassRecord:
        async with self._transaction("create_class") as session:
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
                insert(UserClass).values(
                    id=record.id,
                    name=name,
                    course_id=await self._course_id(session, course_code),
                    created_by_user_id=user_id,
                    created_at=now,
                    updated_at=now,
                    version=1,
                )
            )
            await self._write_event(session, event(record))
            return record

    async def get_class(self, *, user_id: str, class_id: uuid.UUID) -> ClassRecord | None:
        async with self._transaction("get_class") as session:
            return await self._load_class(session, user_id, class_id)

    async def list_classes(
        self,
        *,
        user_id: str,
        limit: int,
        offset: int,
        course_code: CourseCode | None = None,
        updated_since: datetime | None = None,
    ) -> Page[ClassRecord]:
        conditions: list[ColumnElement[bool]] = [UserClass.created_by_user_id == user_id]
        if course_code is not None:
            conditions.append(Course.course_code == course_code)
        if updated_since is not None:
            conditions.append(UserClass.updated_at >= updated_since)
        async with self._transaction("list_classes") as session:
            rows = await session.execute(
                _class_query()
                .where(*conditions)
                .order_by(UserClass.created_at.desc(), UserClass.id.desc())
                .limit(limit)
                .offset(offset)
            )
            items = [_class_record(row) for row in rows]
            total = await session.scalar(
                select(func.count())
                .select_from(UserClass)
                .join(Course, Course.id == UserClass.course_id)
                .where(*conditions)
            )
            return Page(items=items, total=total or 0, limit=limit, offset=offset)

    async def update_class(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID,
        name: str | None,
        course_code: CourseCode | None,
        expected_version: int | None,
        event: EventFactory[ClassRecord],
    ) -> ClassRecord | None:
        async with self._transaction("update_class") as session:
            if not await self._check_version(
                session, UserClass, class_id, user_id, expected_version
            ):
                return None
            if name is None and course_code is None:
                return await self._load_class(session, user_id, class_id)
            values: dict[str, Any] = {
                "version": UserClass.version + 1,
                "updated_at": datetime.now(UTC),
            }
            if name is not None:
                values["name"] = name
            if course_code is not None:
                values["course_id"] = await self._course_id(session, course_code)
            await session.execute(
                update(UserClass).where(UserClass.id == class_id).values(**values)
            )
            record = await self._load_class(session, user_id, class_id)
            assert record is not None  # locked above
            await self._write_event(session, event(record))
            return record

    async def delete_class(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID,
        expected_version: int | None,
        event: EventFactory[ClassRecord],
    ) -> bool:
        async with self._transaction("delete_class") as session:
            if not await self._check_version(
                session, UserClass, class_id, user_id, expected_version
            ):
                return False
            record = await self._load_class(session, user_id, class_id)
            assert record is not None
            await session.execute(delete(UserClass).where(UserClass.id == class_id))
            gone = ClassRecord(
                id=record.id,
                name=record.name,
                course_code=record.course_code,
                student_count=0,
                created_by_user_id=user_id,
                created_at=record.created_at,
                updated_at=datetime.now(UTC),
                version=record.version + 1,
            )
            await self._write_event(session, event(gone))
            return True

    async def get_roster(
        self, *, user_id: str, class_id: uuid.UUID, limit: int, offset: int
    ) -> Page[StudentRecord] | None:
        async with self._transaction("get_roster") as session:
            owned = await session.scalar(
                select(UserClass.id).where(
                    UserClass.id == class_id, UserClass.created_by_user_id == user_id
                )
            )
            if owned is None:
                return None
            in_class = Student.id.in_(
                select(membership.c.student_id).where(membership.c.class_id == class_id)
            )
            rows = await session.execute(
                _student_query().where(in_class).order_by(*_by_name()).limit(limit).offset(offset)
            )
            items = [_student_record(row) for row in rows]
            total = await session.scalar(
                select(func.count())
                .select_from(membership)
                .where(membership.c.class_id == class_id)
            )
            return Page(items=items, total=total or 0, limit=limit, offset=offset)

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
        async with self._transaction("create_student") as session:
            unique_class_ids = tuple(dict.fromkeys(class_ids))
            await self._require_owned_classes(session, user_id, unique_class_ids)
            now = datetime.now(UTC)
            record = StudentRecord(
                id=uuid.uuid4(),
                first_name=name.first_name,
                last_name=name.last_name,
                legal_full_name=name.legal_full_name,
                email=email,
                class_ids=tuple(sorted(unique_class_ids, key=str)),
                created_by_user_id=user_id,
                created_at=now,
                updated_at=now,
                version=1,
            )
            try:
                await session.execute(
                    insert(Student).values(
                        id=record.id,
                        first_name=record.first_name,
                        last_name=record.last_name,
                        legal_full_name=record.legal_full_name,
                        email=email,
                        created_by_user_id=user_id,
                        created_at=now,
                        updated_at=now,
                        version=1,
                    )
                )
                if unique_class_ids:
                    await session.execute(
                        insert(membership),
                        [{"class_id": cid, "student_id": record.id} for cid in unique_class_ids],
                    )
            except exc.IntegrityError as error:
                raise self._integrity_error(error, email) from error
            await self._write_event(session, event(record))
            return record

    @staticmethod
    def _integrity_error(error: exc.IntegrityError, email: str | None) -> ClassManagementError:
        constraint = _constraint_name(error)
        if "uq_students_owner_email" in constraint:
            return StudentAlreadyExistsError(f"A student with email {email} already exists.")
        if "class_id" in constraint:
            return ClassNotFoundError("A class was deleted while the student was saved.")
        raise error

    async def get_student(self, *, user_id: str, student_id: uuid.UUID) -> StudentRecord | None:
        async with self._transaction("get_student") as session:
            return await self._load_student(session, user_id, student_id)

    async def list_students(
        self, *, user_id: str, class_id: uuid.UUID | None, limit: int, offset: int
    ) -> Page[StudentRecord]:
        conditions: list[ColumnElement[bool]] = [Student.created_by_user_id == user_id]
        if class_id is not None:
            conditions.append(
                Student.id.in_(
                    select(membership.c.student_id).where(membership.c.class_id == class_id)
                )
            )
        async with self._transaction("list_students") as session:
            rows = await session.execute(
                _student_query()
                .where(*conditions)
                .order_by(*_by_name())
                .limit(limit)
                .offset(offset)
            )
            items = [_student_record(row) for row in rows]
            total = await session.scalar(
                select(func.count()).select_from(Student).where(*conditions)
            )
            return Page(items=items, total=total or 0, limit=limit, offset=offset)

    async def update_student(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        changes: StudentChanges,
        expected_version: int | None,
        event: EventFactory[StudentRecord],
    ) -> StudentRecord | None:
        async with self._transaction("update_student") as session:
            if not await self._check_version(
                session, Student, student_id, user_id, expected_version
            ):
                return None
            await self._require_owned_classes(
                session, user_id, (*changes.add_class_ids, *changes.remove_class_ids)
            )
            values: dict[str, Any] = {
                field: getattr(changes, field)
                for field in ("first_name", "last_name", "legal_full_name", "email")
                if getattr(changes, field) is not None
            }
            if not values and not changes.add_class_ids and not changes.remove_class_ids:
                return await self._load_student(session, user_id, student_id)
            values |= {"version": Student.version + 1, "updated_at": datetime.now(UTC)}
            try:
                await session.execute(
                    update(Student).where(Student.id == student_id).values(**values)
                )
                if changes.add_class_ids:
                    await session.execute(
                        pg_insert(membership)
                        .values(
                            [
                                {"class_id": cid, "student_id": student_id}
                                for cid in dict.fromkeys(changes.add_class_ids)
                            ]
                        )
                        .on_conflict_do_nothing()
                    )
                if changes.remove_class_ids:
                    await session.execute(
                        delete(membership).where(
                            and_(
                                membership.c.student_id == student_id,
                                membership.c.class_id.in_(changes.remove_class_ids),
                            )
                        )
                    )
            except exc.IntegrityError as error:
                raise self._integrity_error(error, changes.email) from error
            record = await self._load_student(session, user_id, student_id)
            assert record is not None
            await self._write_event(session, event(record))
            return record

    async def delete_student(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        expected_version: int | None,
        event: EventFactory[StudentRecord],
    ) -> bool:
        async with self._transaction("delete_student") as session:
            if not await self._check_version(
                session, Student, student_id, user_id, expected_version
            ):
                return False
            record = await self._load_student(session, user_id, student_id)
            assert record is not None
            await session.execute(delete(Student).where(Student.id == student_id))
            gone = StudentRecord(
                id=record.id,
                first_name=record.first_name,
                last_name=record.last_name,
                legal_full_name=record.legal_full_name,
                email=record.email,
                class_ids=(),
                created_by_user_id=user_id,
                created_at=record.created_at,
                updated_at=datetime.now(UTC),
                version=record.version + 1,
            )
            await self._write_event(session, event(gone))
            return True

    # -- essays ---------------------------------------------------------------------

    async def associate_essay(
        self, *, user_id: str, student_id: uuid.UUID, essay_id: uuid.UUID
    ) -> tuple[EssayLinkRecord, bool] | None:
        async with self._transaction("associate_essay") as session:
            owned = await session.scalar(
                select(Student.id).where(
                    Student.id == student_id, Student.created_by_user_id == user_id
                )
            )
            if owned is None:
                return None
            link = EssayStudentAssociation
            created = (
                await session.execute(
                    pg_insert(link)
                    .values(
                        id=uuid.uuid4(),
                        essay_id=essay_id,
                        student_id=student_id,
                        created_by_user_id=user_id,
                    )
                    .on_conflict_do_nothing(index_elements=[link.essay_id])
                    .returning(link.essay_id, link.student_id, link.created_at)
                )
            ).one_or_none()
            if created is not None:
                return EssayLinkRecord(
                    created.essay_id, created.student_id, created.created_at
                ), True
            existing = (
                await session.execute(
                    select(link.essay_id, link.student_id, link.created_at).where(
                        link.essay_id == essay_id
                    )
                )
            ).one()
            if existing.student_id != student_id:
                raise EssayAlreadyAssociatedError(
                    f"Essay {essay_id} already belongs to another student."
                )
            return EssayLinkRecord(
                existing.essay_id, existing.student_id, existing.created_at
            ), False

    async def list_student_essays(
        self, *, user_id: str, student_id: uuid.UUID
    ) -> list[EssayLinkRecord] | None:
        async with self._transaction("list_student_essays") as session:
            owned = await session.scalar(
                select(Student.id).where(
                    Student.id == student_id, Student.created_by_user_id == user_id
                )
            )
            if owned is None:
                return None
            link = EssayStudentAssociation
            rows = await session.execute(
                select(link.essay_id, link.student_id, link.created_at)
                .where(link.student_id == student_id)
                .order_by(link.created_at, link.essay_id)
            )
            return [EssayLinkRecord(row.essay_id, row.student_id, row.created_at) for row in rows]
