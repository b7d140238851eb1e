"""PostgreSQL repository. It owns its sessions: one ``AsyncSession`` per operation, opened on
the one engine (and its pool) and closed here; never one shared or injected.

Every statement is built once, at import, with named parameters, so a call only binds
values (SQLAlchemy's compiled cache and asyncpg's prepared statements do the rest). An
operation costs as few round trips as its guarantees allow:

* a read is one statement on an AUTOCOMMIT session (no BEGIN/COMMIT): a single
  statement is atomic on its own; pages carry their total as ``count(*) OVER ()``;
* creating a class or a student is one statement too: PostgreSQL's data-modifying CTEs
  insert the row, its memberships and its outbox event together, all or nothing;
* so are an update of a class and any delete: the UPDATE or DELETE and its event's INSERT
  in one statement, the event built beforehand and given the version the change produced
  (``data.version``);
* so are an update of a student's names or e-mail and linking an essay; an update that
  changes memberships is a transaction: it locks the student (so that it reads the
  memberships as they are), checks the classes are the user's, then changes the row and
  its memberships and writes its event in one statement.

A version check (If-Match) is part of the change's WHERE clause.

Rows become frozen records before the session is returned: nothing lazy leaves here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import cache
from time import perf_counter
from typing import Any, cast

from common_core.events import EventEnvelope, topic_for
from sqlalchemy import (
    CTE,
    Executable,
    Insert,
    Integer,
    Row,
    Select,
    String,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    delete,
    exc,
    exists,
    func,
    insert,
    literal_column,
    select,
    true,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID, array_agg
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from common_core import CourseCode, PersonNameV1
from services.class_management_service import metrics
from services.class_management_service.domain import (
    ClassRecord,
    EssayLinkRecord,
    EventFactory,
    Page,
    RecordT,
    RosterEntryRecord,
    StudentChanges,
    StudentRecord,
    VersionedEventFactory,
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

classes = cast(Table, UserClass.__table__)
courses = cast(Table, Course.__table__)
students = cast(Table, Student.__table__)
outbox = cast(Table, EventOutbox.__table__)
essay_links = cast(Table, EssayStudentAssociation.__table__)
membership = class_student_association

_UUID = UUID(as_uuid=True)

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


# -- statements -------------------------------------------------------------------------

_CLASS_OWNER = and_(
    classes.c.id == bindparam("class_id", type_=_UUID),
    classes.c.created_by_user_id == bindparam("user_id", type_=String),
)
_STUDENT_OWNER = and_(
    students.c.id == bindparam("student_id", type_=_UUID),
    students.c.created_by_user_id == bindparam("user_id", type_=String),
)
_IN_CLASS = students.c.id.in_(
    select(membership.c.student_id).where(membership.c.class_id == bindparam("class_id"))
)
_TOTAL = func.count().over().label("total")


def _class_columns() -> tuple[Any, ...]:
    """A class as the API shows it; correlated to ``classes`` (also in RETURNING)."""
    course_code = (
        select(courses.c.course_code)
        .where(courses.c.id == classes.c.course_id)
        .correlate(classes)
        .scalar_subquery()
    )
    student_count = (
        select(func.count())
        .select_from(membership)
        .where(membership.c.class_id == classes.c.id)
        .correlate(classes)
        .scalar_subquery()
    )
    return (
        classes.c.id,
        classes.c.name,
        course_code.label("course_code"),
        student_count.label("student_count"),
        classes.c.created_by_user_id,
        classes.c.created_at,
        classes.c.updated_at,
        classes.c.version,
    )


def _student_columns() -> tuple[Any, ...]:
    class_ids = (
        select(
            func.coalesce(
                array_agg(membership.c.class_id),  # type: ignore[no-untyped-call]
                literal_column("'{}'::uuid[]"),
            )
        )
        .where(membership.c.student_id == students.c.id)
        .correlate(students)
        .scalar_subquery()
    )
    return (
        students.c.id,
        students.c.first_name,
        students.c.last_name,
        students.c.legal_full_name,
        students.c.email,
        class_ids.label("class_ids"),
        students.c.created_by_user_id,
        students.c.created_at,
        students.c.updated_at,
        students.c.version,
    )


_CLASSES = select(*_class_columns())
_STUDENTS = select(*_student_columns())
_BY_NAME = (students.c.last_name.asc(), students.c.first_name.asc(), students.c.id.asc())


def _paged(
    rows: Select[Any], table: Table, conditions: Sequence[Any], order_by: Sequence[Any]
) -> tuple[Select[Any], Select[Any]]:
    """One page of ``rows`` with the total of all matches, and that total alone.

    The count alone is only needed for a page that comes back empty past the end.
    """
    page = (
        rows.add_columns(_TOTAL)
        .where(*conditions)
        .order_by(*order_by)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )
    return page, select(func.count()).select_from(table).where(*conditions)


GET_CLASS = _CLASSES.where(_CLASS_OWNER)
GET_STUDENT = _STUDENTS.where(_STUDENT_OWNER)
CLASS_VERSION = select(classes.c.version).where(_CLASS_OWNER)
STUDENT_VERSION = select(students.c.version).where(_STUDENT_OWNER)
COURSE_IDS = select(courses.c.course_code, courses.c.id)
# The classes named by id, looked up by primary key alone, then kept if they are the user's.
# With the owner in the same WHERE clause, PostgreSQL's generic plan (prepared statements
# switch to it after five runs) may estimate "this user has a few classes" from stale
# statistics, scan the owner index instead and filter every class the user has: a student
# creation then cost O(the user's classes). MATERIALIZED keeps the lookup on the key.
_CLASSES_BY_ID = (
    select(classes.c.id, classes.c.created_by_user_id)
    .where(classes.c.id == any_(bindparam("class_ids", type_=ARRAY(_UUID))))
    .cte("classes_by_id")
    .prefix_with("MATERIALIZED")
)
OWNED_CLASS_IDS = select(_CLASSES_BY_ID.c.id).where(
    _CLASSES_BY_ID.c.created_by_user_id == bindparam("user_id", type_=String)
)
# A roster shows who is in the class, not each student's other classes: no memberships.
_ROSTER_ENTRIES = select(
    students.c.id,
    students.c.first_name,
    students.c.last_name,
    students.c.legal_full_name,
    students.c.email,
)
ROSTER, _ = _paged(_ROSTER_ENTRIES, students, (_IN_CLASS, exists().where(_CLASS_OWNER)), _BY_NAME)
# For a roster page that came back empty: is the class there at all, and how many students?
ROSTER_EMPTY_PAGE = select(
    exists().where(_CLASS_OWNER).label("owned"),
    select(func.count())
    .select_from(membership)
    .where(membership.c.class_id == bindparam("class_id"))
    .scalar_subquery()
    .label("total"),
)
STUDENT_ESSAYS = (
    select(essay_links.c.essay_id, essay_links.c.student_id, essay_links.c.created_at)
    .where(essay_links.c.student_id == bindparam("student_id"), exists().where(_STUDENT_OWNER))
    .order_by(essay_links.c.created_at, essay_links.c.essay_id)
)


@cache
def _class_list(by_course: bool, since: bool) -> tuple[Select[Any], Select[Any]]:
    """The page statement (with its total) and the count alone, for one set of filters."""
    conditions = [classes.c.created_by_user_id == bindparam("user_id")]
    if by_course:
        conditions.append(
            classes.c.course_id.in_(
                select(courses.c.id).where(courses.c.course_code == bindparam("course_code"))
            )
        )
    if since:
        conditions.append(classes.c.updated_at >= bindparam("updated_since"))
    return _paged(_CLASSES, classes, conditions, (classes.c.created_at.desc(), classes.c.id.desc()))


@cache
def _student_list(in_class: bool) -> tuple[Select[Any], Select[Any]]:
    conditions = [students.c.created_by_user_id == bindparam("user_id")]
    if in_class:
        conditions.append(_IN_CLASS)
    return _paged(_STUDENTS, students, conditions, _BY_NAME)


# The outbox row of an event; its payload is bound as JSON text, serialised by pydantic.
_EVENT_COLUMNS = ("event_id", "event_type", "topic", "aggregate_id", "payload")
_EVENT_VALUES = (
    bindparam("event_id", type_=_UUID),
    bindparam("event_type", type_=String),
    bindparam("topic", type_=String),
    bindparam("aggregate_id", type_=String),
    sql_cast(bindparam("payload", type_=Text), JSONB),
)


def _event_after(cte: CTE, payload: Any = _EVENT_VALUES[-1]) -> Insert:
    """INSERT of the event, one row per row of ``cte`` (so none when the change did nothing);
    ``payload`` replaces the bound payload (an expression over ``cte``'s columns)."""
    values = (*_EVENT_VALUES[:-1], payload)
    return insert(outbox).from_select(_EVENT_COLUMNS, select(*values).select_from(cte))


def _create_class_statement() -> Insert:
    new_class = (
        insert(classes)
        .values(
            id=bindparam("class_id", type_=_UUID),
            name=bindparam("name", type_=String),
            course_id=bindparam("course_id", type_=_UUID),
            created_by_user_id=bindparam("user_id", type_=String),
            created_at=bindparam("now"),
            updated_at=bindparam("now"),
            version=1,
        )
        .returning(classes.c.id)
        .cte("new_class")
    )
    return _event_after(new_class).add_cte(new_class)


def _create_student_statement() -> Select[Any]:
    """The student, its memberships and its event, only if every class is the user's.

    Returns one row, ``created``: 0 when a class is missing (nothing was written).
    """
    owned = OWNED_CLASS_IDS.cte("owned")
    new_student = (
        insert(students)
        .from_select(
            (
                "id",
                "first_name",
                "last_name",
                "legal_full_name",
                "email",
                "created_by_user_id",
                "created_at",
                "updated_at",
                "version",
            ),
            select(
                bindparam("student_id", type_=_UUID),
                bindparam("first_name", type_=String),
                bindparam("last_name", type_=String),
                bindparam("legal_full_name", type_=String),
                bindparam("email", type_=String),
                bindparam("user_id", type_=String),
                bindparam("now"),
                bindparam("now"),
                literal_column("1"),
            ).where(
                select(func.count()).select_from(owned).scalar_subquery()
                == bindparam("class_count", type_=Integer)
            ),
        )
        .returning(students.c.id)
        .cte("new_student")
    )
    links = (
        insert(membership)
        .from_select(
            ("class_id", "student_id"),
            select(owned.c.id, new_student.c.id).select_from(owned.join(new_student, true())),
        )
        .cte("links")
    )
    event = _event_after(new_student).cte("event")
    return select(func.count().label("created")).select_from(new_student).add_cte(links, event)


CREATE_CLASS = _create_class_statement()
CREATE_STUDENT = _create_student_statement()


def _guarded(table: Table, checks_version: bool) -> Any:
    """The user's row of ``table`` by id; at ``expected_version`` too when If-Match named it."""
    condition = _CLASS_OWNER if table is classes else _STUDENT_OWNER
    if checks_version:
        condition = and_(condition, table.c.version == bindparam("expected_version"))
    return condition


@cache
def _update_class_statement(checks_version: bool) -> Select[Any]:
    """Rename and/or re-course an owned class (a NULL keeps the value) and write its event,
    in one statement; returns the class as changed, or no row when nothing matched.

    The event is bound already built (for the version the caller expects); the statement
    stores it with ``data.version`` set to the version the update produced.
    """
    updated = (
        classes.update()
        .where(_guarded(classes, checks_version))
        .values(
            name=func.coalesce(bindparam("name", type_=String), classes.c.name),
            course_id=func.coalesce(bindparam("course_id", type_=_UUID), classes.c.course_id),
            version=classes.c.version + 1,
            updated_at=bindparam("now"),
        )
        .returning(*_class_columns())
        .cte("updated")
    )
    event = _event_after(updated, _with_version(updated.c.version)).cte("event")
    return select(updated).add_cte(event)


def _with_version(version: Any) -> Any:
    """The bound event payload with ``data.version`` set to ``version`` (a SQL expression)."""
    return func.jsonb_set(
        _EVENT_VALUES[-1], literal_column("'{data,version}'::text[]"), func.to_jsonb(version)
    )


_STUDENT_FIELDS_CHANGED = ("first_name", "last_name", "legal_full_name", "email")


def _student_changes() -> dict[str, Any]:
    """SET of a student update: the named fields (a NULL keeps the value), a new version."""
    return {
        field: func.coalesce(bindparam(field, type_=String), students.c[field])
        for field in _STUDENT_FIELDS_CHANGED
    } | {"version": students.c.version + 1, "updated_at": bindparam("now")}


@cache
def _update_student_statement(checks_version: bool) -> Select[Any]:
    """Change an owned student's names and e-mail (a NULL keeps the value) and write its
    event, in one statement; returns the student as changed, or no row when nothing matched.
    Memberships are not changed here (see ``update_student``). The event is bound already
    built, as for classes, and stored with the version the update produced.
    """
    updated = (
        students.update()
        .where(_guarded(students, checks_version))
        .values(_student_changes())
        .returning(*_student_columns())
        .cte("updated")
    )
    event = _event_after(updated, _with_version(updated.c.version)).cte("event")
    return select(updated).add_cte(event)


def _change_memberships_statement() -> Select[Any]:
    """For a student already locked and checked (``update_student``): change its names and
    e-mail (a NULL keeps the value), remove and add memberships, write its event; returns
    the student as changed, with its class ids.

    All parts read the statement's one snapshot, taken after the lock, so they see every
    change committed before it; ``add_ids`` must exclude ``remove_ids`` (removal wins), so
    that no two parts touch the same membership.
    """
    student_id = bindparam("student_id", type_=_UUID)
    add_ids = bindparam("add_ids", type_=ARRAY(_UUID))
    remove_ids = bindparam("remove_ids", type_=ARRAY(_UUID))
    updated = (
        students.update()
        .where(students.c.id == student_id)
        .values(_student_changes())
        .returning(
            *(students.c[name] for name in ("id", *_STUDENT_FIELDS_CHANGED)),
            students.c.created_by_user_id,
            students.c.created_at,
            students.c.updated_at,
            students.c.version,
        )
        .cte("updated")
    )
    removed = (
        delete(membership)
        .where(membership.c.student_id == student_id, membership.c.class_id == any_(remove_ids))
        .cte("removed")
    )
    added = (
        pg_insert(membership)
        .from_select(("class_id", "student_id"), select(func.unnest(add_ids), student_id))
        .on_conflict_do_nothing()
        .cte("added")
    )
    kept = select(membership.c.class_id).where(
        membership.c.student_id == student_id, ~(membership.c.class_id == any_(remove_ids))
    )
    now_in = kept.union(select(func.unnest(add_ids).label("class_id"))).subquery("now_in")
    class_ids = select(
        func.coalesce(
            array_agg(now_in.c.class_id),  # type: ignore[no-untyped-call]
            literal_column("'{}'::uuid[]"),
        )
    ).scalar_subquery()
    u = updated.c
    return select(
        u.id,
        u.first_name,
        u.last_name,
        u.legal_full_name,
        u.email,
        class_ids.label("class_ids"),
        u.created_by_user_id,
        u.created_at,
        u.updated_at,
        u.version,
    ).add_cte(removed, added, _event_after(updated).cte("event"))


CHANGE_MEMBERSHIPS = _change_memberships_statement()


def _link_essay_statement() -> Select[Any]:
    """Link an essay to an owned student unless the essay is linked already, in one
    statement; one row: whether the student is the user's, the link it made (or NULLs) and
    the link the essay had (or NULLs)."""
    link = essay_links.c
    owned = select(students.c.id).where(_STUDENT_OWNER).cte("owned")
    made = (
        pg_insert(essay_links)
        .from_select(
            ("id", "essay_id", "student_id", "created_by_user_id"),
            select(
                bindparam("link_id", type_=_UUID),
                bindparam("essay_id", type_=_UUID),
                owned.c.id,
                bindparam("user_id", type_=String),
            ),
        )
        .on_conflict_do_nothing(index_elements=[link.essay_id])
        .returning(link.essay_id, link.student_id, link.created_at)
        .cte("made")
    )
    had = select(link.student_id, link.created_at).where(
        link.essay_id == bindparam("essay_id", type_=_UUID)
    )
    base = select(func.count().label("owned")).select_from(owned).subquery("base")
    had_link = had.subquery("had")
    return select(
        base.c.owned,
        made.c.essay_id,
        made.c.student_id,
        made.c.created_at,
        had_link.c.student_id,
        had_link.c.created_at,
    ).select_from(base.outerjoin(made, true()).outerjoin(had_link, true()))


LINK_ESSAY = _link_essay_statement()


@cache
def _delete_statement(table: Table, checks_version: bool) -> Select[Any]:
    """Delete an owned row (at the expected version) and write the event of its end, in one
    statement; returns the version the row had, or no row when nothing matched.

    As for updates, the event is bound already built; the statement stores it with
    ``data.version`` one past the version of the row it deleted.
    """
    deleted = (
        table.delete().where(_guarded(table, checks_version)).returning(table.c.version)
    ).cte("deleted")
    event = _event_after(deleted, _with_version(deleted.c.version + 1)).cte("event")
    return select(deleted.c.version).add_cte(event)


def _event_before(event: VersionedEventFactory, expected_version: int | None) -> dict[str, Any]:
    """The event of a guarded change (update or delete), built before its statement runs:
    right already when If-Match named the version; else the statement's ``_with_version``
    sets the version the change produced."""
    return _event_params(event((expected_version or 0) + 1))


def _event_params(envelope: EventEnvelope[Any]) -> dict[str, Any]:
    return {
        "event_id": envelope.event_id,
        "event_type": envelope.event_type,
        "topic": topic_for(envelope.data),
        "aggregate_id": envelope.data.aggregate_id,
        "payload": envelope.model_dump_json(),
    }


# Rows are read by position, in the order of _class_columns(), _student_columns() and
# _ROSTER_ENTRIES (a page adds its total after them): a Row's attribute lookups cost more
# than the record.
_CLASS_FIELDS = len(_class_columns())
_STUDENT_FIELDS = len(_student_columns())
_ROSTER_FIELDS = len(_ROSTER_ENTRIES.selected_columns)


def _class_record(row: Row[Any]) -> ClassRecord:
    (
        class_id,
        name,
        course_code,
        student_count,
        created_by_user_id,
        created_at,
        updated_at,
        version,
    ) = row[:_CLASS_FIELDS]
    return ClassRecord(
        class_id,
        name,
        CourseCode(course_code),
        student_count,
        created_by_user_id,
        created_at,
        updated_at,
        version,
    )


def _student_record(row: Row[Any]) -> StudentRecord:
    (
        student_id,
        first_name,
        last_name,
        legal_full_name,
        email,
        class_ids,
        created_by_user_id,
        created_at,
        updated_at,
        version,
    ) = row[:_STUDENT_FIELDS]
    return StudentRecord(
        student_id,
        first_name,
        last_name,
        legal_full_name,
        email,
        # UUIDs order by value as their text orders (fixed-width lowercase hex), 5x cheaper.
        tuple(sorted(class_ids)) if class_ids else (),
        created_by_user_id,
        created_at,
        updated_at,
        version,
    )


def _require_version(version: int, expected_version: int | None) -> None:
    """Raise VersionConflictError unless the row is at the version If-Match demands."""
    if expected_version is not None and version != expected_version:
        raise VersionConflictError(f"The resource is at version {version}, not {expected_version}.")


class PostgreSQLClassRepositoryImpl:
    """The ``ClassRepositoryProtocol`` on PostgreSQL, sharing one engine (and its pool)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
        # Same pool; statements run without BEGIN/COMMIT (one statement is atomic alone).
        self._autocommit_sessions = async_sessionmaker(
            engine.execution_options(isolation_level="AUTOCOMMIT"),
            expire_on_commit=False,
            autoflush=False,
        )
        self._course_ids: dict[CourseCode, uuid.UUID] = {}

    @asynccontextmanager
    async def _session(self, operation: str, *, transaction: bool) -> AsyncIterator[AsyncSession]:
        """A session of its own for one operation: in a transaction, or AUTOCOMMIT.

        The transaction commits when the block succeeds and rolls back on any exception;
        database outages become DependencyUnavailableError (a 503), and every operation is
        timed and its errors counted.
        """
        started = perf_counter()
        try:
            if transaction:
                async with self._sessions() as session, session.begin():
                    yield session
            else:
                async with self._autocommit_sessions() as session:
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

    async def _read(
        self, operation: str, statement: Executable, params: Mapping[str, Any]
    ) -> list[Row[Any]]:
        """One read-only statement. A pooled session that the database dropped (a
        PostgreSQL restart) is detected by the statement failing; such a read is tried once
        more on a new session, as reads are safe to repeat."""
        for attempt in (1, 2):
            try:
                async with self._session(operation, transaction=False) as session:
                    return list(await session.execute(statement, params))
            except DependencyUnavailableError as error:
                cause = error.__cause__
                stale = isinstance(cause, exc.DBAPIError) and cause.connection_invalidated
                if attempt == 2 or not stale:
                    raise
        raise AssertionError("unreachable")

    async def _page(
        self,
        operation: str,
        statements: tuple[Select[Any], Select[Any]],
        params: dict[str, Any],
        record: Callable[[Row[Any]], RecordT],
        limit: int,
        offset: int,
    ) -> Page[RecordT]:
        """A page from ``_paged`` statements: the total comes with the rows, or is counted
        apart only when a page past the end is empty."""
        page, count = statements
        rows = await self._read(operation, page, {**params, "limit": limit, "offset": offset})
        if rows:
            total = rows[0].total
        elif offset:
            total = (await self._read(operation, count, params))[0][0]
        else:
            total = 0
        return Page([record(row) for row in rows], total, limit, offset)

    # -- helpers --------------------------------------------------------------------

    async def _course_id(self, session: AsyncSession, code: CourseCode) -> uuid.UUID:
        # Courses are seeded by a migration and never change at run time: read them once.
        if not self._course_ids:
            rows = await session.execute(COURSE_IDS)
            self._course_ids = {CourseCode(row.course_code): row.id for row in rows}
        course_id = self._course_ids.get(code)
        if course_id is None:
            raise CourseNotFoundError(f"Course {code} is not available.")
        return course_id

    @staticmethod
    async def _why_unchanged(
        session: AsyncSession,
        versions: Select[Any],
        params: Mapping[str, Any],
        expected_version: int | None,
    ) -> None:
        """After a guarded change matched no row: raise if the row is there but stale."""
        version = (await session.execute(versions, params)).scalar_one_or_none()
        if version is not None and expected_version is not None:
            raise VersionConflictError(
                f"The resource is at version {version}, not {expected_version}."
            )

    async def _require_owned_classes(
        self, user_id: str, class_ids: Sequence[uuid.UUID], session: AsyncSession
    ) -> None:
        wanted = set(class_ids)
        if not wanted:
            return
        rows = await session.execute(
            OWNED_CLASS_IDS, {"class_ids": list(wanted), "user_id": user_id}
        )
        missing = sorted(str(class_id) for class_id in wanted - {row.id for row in rows})
        if missing:
            raise ClassNotFoundError(f"Class not found: {', '.join(missing)}.")

    # -- classes --------------------------------------------------------------------

    async def create_class(
        self, *, user_id: str, name: str, course_code: CourseCode, event: EventFactory[ClassRecord]
    ) -> ClassRecord:
        async with self._session("create_class", transaction=False) as session:
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
                CREATE_CLASS,
                {
                    "class_id": record.id,
                    "name": name,
                    "course_id": await self._course_id(session, course_code),
                    "user_id": user_id,
                    "now": now,
                    **_event_params(event(record)),
                },
            )
            return record

    async def get_class(self, *, user_id: str, class_id: uuid.UUID) -> ClassRecord | None:
        rows = await self._read("get_class", GET_CLASS, {"user_id": user_id, "class_id": class_id})
        return _class_record(rows[0]) if rows else None

    async def list_classes(
        self,
        *,
        user_id: str,
        limit: int,
        offset: int,
        course_code: CourseCode | None = None,
        updated_since: datetime | None = None,
    ) -> Page[ClassRecord]:
        return await self._page(
            "list_classes",
            _class_list(course_code is not None, updated_since is not None),
            {"user_id": user_id, "course_code": course_code, "updated_since": updated_since},
            _class_record,
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
                _require_version(current.version, expected_version)
            return current
        # One statement (atomic on its own): the change and its event, or neither.
        async with self._session("update_class", transaction=False) as session:
            row = (
                await session.execute(
                    _update_class_statement(expected_version is not None),
                    {
                        **key,
                        "expected_version": expected_version,
                        "name": name,
                        "course_id": (
                            await self._course_id(session, course_code)
                            if course_code is not None
                            else None
                        ),
                        "now": datetime.now(UTC),
                        **_event_before(event, expected_version),
                    },
                )
            ).one_or_none()
            if row is None:
                await self._why_unchanged(session, CLASS_VERSION, key, expected_version)
                return None
            return _class_record(row)

    async def delete_class(
        self,
        *,
        user_id: str,
        class_id: uuid.UUID,
        expected_version: int | None,
        event: VersionedEventFactory,
    ) -> bool:
        key = {"user_id": user_id, "class_id": class_id}
        return await self._delete("delete_class", classes, key, expected_version, event)

    async def _delete(
        self,
        operation: str,
        table: Table,
        key: dict[str, Any],
        expected_version: int | None,
        event: VersionedEventFactory,
    ) -> bool:
        """Delete an owned row (if at the expected version) and write the event of its end:
        one statement, atomic on its own."""
        async with self._session(operation, transaction=False) as session:
            deleted = (
                await session.execute(
                    _delete_statement(table, expected_version is not None),
                    {
                        **key,
                        "expected_version": expected_version,
                        **_event_before(event, expected_version),
                    },
                )
            ).first()
            if deleted is None:
                versions = CLASS_VERSION if table is classes else STUDENT_VERSION
                await self._why_unchanged(session, versions, key, expected_version)
                return False
            return True

    async def get_roster(
        self, *, user_id: str, class_id: uuid.UUID, limit: int, offset: int
    ) -> Page[RosterEntryRecord] | None:
        params = {"user_id": user_id, "class_id": class_id, "limit": limit, "offset": offset}
        rows = await self._read("get_roster", ROSTER, params)
        if rows:
            total = rows[0].total
        else:
            summary = (await self._read("get_roster", ROSTER_EMPTY_PAGE, params))[0]
            total = summary.total
            if not summary.owned:
                return None
        return Page(
            [RosterEntryRecord(*row[:_ROSTER_FIELDS]) for row in rows], total, limit, offset
        )

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
        async with self._session("create_student", transaction=False) as session:
            try:
                created = (
                    await session.execute(
                        CREATE_STUDENT,
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
                            **_event_params(event(record)),
                        },
                    )
                ).scalar_one()
            except exc.IntegrityError as error:
                raise self._integrity_error(error, email) from error
            if not created:
                # Nothing was written: name the classes that are not the user's.
                await self._require_owned_classes(user_id, unique_class_ids, session)
                raise ClassNotFoundError("A class was deleted while the student was saved.")
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
        rows = await self._read(
            "get_student", GET_STUDENT, {"user_id": user_id, "student_id": student_id}
        )
        return _student_record(rows[0]) if rows else None

    async def list_students(
        self, *, user_id: str, class_id: uuid.UUID | None, limit: int, offset: int
    ) -> Page[StudentRecord]:
        return await self._page(
            "list_students",
            _student_list(class_id is not None),
            {"user_id": user_id, "class_id": class_id},
            _student_record,
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
        fields = {field: getattr(changes, field) for field in _STUDENT_FIELDS_CHANGED}
        if not changes.add_class_ids and not changes.remove_class_ids:
            if all(value is None for value in fields.values()):
                current = await self.get_student(user_id=user_id, student_id=student_id)
                if current is not None:
                    _require_version(current.version, expected_version)
                return current
            # Names and e-mail only: one statement, the change and its event or neither.
            async with self._session("update_student", transaction=False) as session:
                try:
                    row = (
                        await session.execute(
                            _update_student_statement(expected_version is not None),
                            {
                                **key,
                                **fields,
                                "expected_version": expected_version,
                                "now": datetime.now(UTC),
                                **_event_before(event, expected_version),
                            },
                        )
                    ).one_or_none()
                except exc.IntegrityError as error:
                    raise self._integrity_error(error, changes.email) from error
                if row is None:
                    await self._why_unchanged(session, STUDENT_VERSION, key, expected_version)
                    return None
                return _student_record(row)
        async with self._session("update_student", transaction=True) as session:
            # Lock the student first: the change then reads the memberships as they are.
            version = (
                await session.execute(STUDENT_VERSION.with_for_update(), key)
            ).scalar_one_or_none()
            if version is None:
                return None
            _require_version(version, expected_version)
            await self._require_owned_classes(
                user_id, (*changes.add_class_ids, *changes.remove_class_ids), session
            )
            remove_ids = list(dict.fromkeys(changes.remove_class_ids))
            add_ids = [c for c in dict.fromkeys(changes.add_class_ids) if c not in remove_ids]
            try:
                row = (
                    await session.execute(
                        CHANGE_MEMBERSHIPS,
                        {
                            "student_id": student_id,
                            **fields,
                            "now": datetime.now(UTC),
                            "add_ids": add_ids,
                            "remove_ids": remove_ids,
                            # The version is known: the student is locked at ``version``.
                            **_event_params(event(version + 1)),
                        },
                    )
                ).one()
            except exc.IntegrityError as error:
                raise self._integrity_error(error, changes.email) from error
            return _student_record(row)

    async def delete_student(
        self,
        *,
        user_id: str,
        student_id: uuid.UUID,
        expected_version: int | None,
        event: VersionedEventFactory,
    ) -> bool:
        key = {"user_id": user_id, "student_id": student_id}
        return await self._delete("delete_student", students, key, expected_version, event)

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
            async with self._session("associate_essay", transaction=False) as session:
                try:
                    row = (await session.execute(LINK_ESSAY, params)).one()
                except exc.IntegrityError as error:
                    if "student_id" in _constraint_name(error):
                        return None  # the student was deleted meanwhile
                    raise
            owned, made_essay, made_student, made_at, had_student, had_at = row
            if not owned:
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

    async def list_student_essays(
        self, *, user_id: str, student_id: uuid.UUID
    ) -> list[EssayLinkRecord] | None:
        rows = await self._read(
            "list_student_essays", STUDENT_ESSAYS, {"user_id": user_id, "student_id": student_id}
        )
        if not rows:
            owned = await self._read(
                "list_student_essays",
                STUDENT_VERSION,
                {"user_id": user_id, "student_id": student_id},
            )
            return [] if owned else None
        return [EssayLinkRecord(row.essay_id, row.student_id, row.created_at) for row in rows]
