"""The statements of classes (and their rosters), built once at import."""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

from sqlalchemy import (
    Integer,
    Label,
    Select,
    String,
    Table,
    Update,
    any_,
    bindparam,
    column,
    exists,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from common_core import CourseCode
from services.class_management_service.domain import SortKey
from services.class_management_service.exceptions import CourseNotFoundError
from services.class_management_service.implementations.postgres.outbox import (
    delete_with_entries,
    with_entries,
    with_entries_if,
)
from services.class_management_service.implementations.postgres.tables import (
    CLASS_COLUMNS,
    CLASS_OWNER,
    CLASS_SEARCH_TEXT,
    ROSTER_ENTRY_COLUMNS,
    STUDENT_COLUMNS,
    UUID_TYPE,
    classes,
    courses,
    membership,
    narrowed,
    ordered,
    paged,
    students,
)
from services.class_management_service.models_db import class_status_enum

# Students by name (Swedish order: the columns' collation), then id: a stable order for pages.
STUDENT_NAMES = (students.c.last_name, students.c.first_name)
BY_NAME = ordered(students, STUDENT_NAMES, "name")
# Students in the class named by ``class_id`` (served by the membership's primary key).
IN_CLASS = students.c.id.in_(
    select(membership.c.student_id).where(membership.c.class_id == bindparam("class_id"))
)
# Classes the student named by ``student_id`` is in (the membership's student index).
OF_STUDENT = classes.c.id.in_(
    select(membership.c.class_id).where(membership.c.student_id == bindparam("student_id"))
)

# The user's class by id (primary key), or no row.
GET_CLASS = select(*CLASS_COLUMNS).where(CLASS_OWNER)
# Every seeded course's id by code; read once per process (courses never change at run time).
COURSE_IDS = select(courses.c.course_code, courses.c.id)
# The number of students in the class named by ``class_id`` (the membership's primary key).
MEMBER_COUNT = (
    select(func.count())
    .select_from(membership)
    .where(membership.c.class_id == bindparam("class_id"))
)
# One page of a class's students by name with the total, or no row if it is not the user's.
ROSTER, _ = paged(
    select(*ROSTER_ENTRY_COLUMNS),
    students,
    (IN_CLASS, exists().where(CLASS_OWNER)),
    BY_NAME,
    total=MEMBER_COUNT,
)
# For a roster page that came back empty: is the class there at all, and how many students?
ROSTER_EMPTY_PAGE = select(
    exists().where(CLASS_OWNER).label("owned"), MEMBER_COUNT.scalar_subquery().label("total")
)


@cache
def class_list(
    by_course: bool,
    search: bool,
    by_ids: bool,
    since: bool,
    sort: SortKey = "-created_at",
    of_student: bool = False,
    by_status: bool = False,
) -> tuple[Select[Any], Select[Any]]:
    """The user's classes for one set of filters and an order (of one student's classes when
    ``of_student``), a page with its total and the count alone. The owner-first index of the
    order serves it (of ``q``: the name's trigram index), with no sort of the user's classes;
    ``status`` only filters the rows that index yields (a teacher has few classes)."""
    conditions = narrowed(classes, CLASS_SEARCH_TEXT, search=search, by_ids=by_ids, since=since)
    if by_status:
        conditions.append(classes.c.status == bindparam("status", type_=class_status_enum))
    if by_course:
        conditions.append(
            classes.c.course_id.in_(
                select(courses.c.id).where(courses.c.course_code == bindparam("course_code"))
            )
        )
    if of_student:
        conditions.append(OF_STUDENT)
    return paged(
        select(*CLASS_COLUMNS), classes, conditions, ordered(classes, (classes.c.name,), sort)
    )


def _create_class_statement() -> Select[Any]:
    new_class = (
        insert(classes)
        .values(
            id=bindparam("class_id", type_=UUID_TYPE),
            name=bindparam("name", type_=String),
            course_id=bindparam("course_id", type_=UUID_TYPE),
            created_by_user_id=bindparam("user_id", type_=String),
            created_at=bindparam("now"),
            updated_at=bindparam("now"),
            version=literal_column("1"),
        )
        .returning(classes.c.id)
        .cte("new_class")
    )
    return with_entries(select(new_class.c.id))


# A new class and its outbox rows: one statement, all or nothing.
CREATE_CLASS = _create_class_statement()

# Locks: classes are locked before students, each kind in id order, by every change: two
# changes then never wait for each other. A lock statement also reads the rows it locks,
# with ``snapshot_version``: a lock that waited for another change re-reads the row it
# locks but not its subqueries (``student_count``, ``class_ids``), which still see the
# snapshot from before the wait. Every change of those bumps the row's version, so a row
# whose version differs from the snapshot's is read again by the statement after (rare:
# only after a wait).


def snapshot_version(table: Table) -> Label[Any]:
    """The version of ``table``'s row that the statement's snapshot holds."""
    snapshot = table.alias("snapshot")
    return (
        select(snapshot.c.version)
        .where(snapshot.c.id == table.c.id)
        .correlate(table)
        .scalar_subquery()
        .label("snapshot_version")
    )


# The user's class, locked until the transaction ends, and read: every change of a class,
# of its name or of its members (so of its ``student_count``), locks it first.
LOCK_CLASS = (
    select(*CLASS_COLUMNS, snapshot_version(classes)).where(CLASS_OWNER).with_for_update(of=classes)
)
# The classes named by ``class_ids`` (any owner: the caller checks), locked in id order
# and read.
LOCK_CLASSES = (
    select(*CLASS_COLUMNS, snapshot_version(classes))
    .where(classes.c.id == any_(bindparam("class_ids", type_=ARRAY(UUID_TYPE))))
    .order_by(classes.c.id)
    .with_for_update(of=classes)
)
# The classes named by ``class_ids``, any owner (primary key).
CLASSES_BY_ID = select(*CLASS_COLUMNS).where(
    classes.c.id == any_(bindparam("class_ids", type_=ARRAY(UUID_TYPE)))
)
# The members of a class locked before, locked in id order: a class's deletion changes each
# one's ``class_ids`` (membership's primary key, then the students' primary key).
LOCK_MEMBERS = select(students.c.id).where(IN_CLASS).order_by(students.c.id).with_for_update()
# The members of a class, as records.
MEMBERS = select(*STUDENT_COLUMNS).where(IN_CLASS)


def bump_classes() -> Update:
    """A new version of the classes in ``bumped_class_ids`` (locked before): their members
    changed, so their ``student_count`` did."""
    return (
        update(classes)
        .where(classes.c.id == any_(bindparam("bumped_class_ids", type_=ARRAY(UUID_TYPE))))
        .values(version=classes.c.version + 1, updated_at=bindparam("now"))
    )


def bump_classes_at_versions() -> Update:
    """A new version of each class in ``bumped_class_ids`` that is still at its version in
    ``bumped_versions`` (as read, in the same order), read without a lock; a class changed
    since is left as it is, and the caller's statement refuses the whole change."""
    read = (
        func.unnest(
            bindparam("bumped_class_ids", type_=ARRAY(UUID_TYPE)),
            bindparam("bumped_versions", type_=ARRAY(Integer)),
        )
        .table_valued(column("id", UUID_TYPE), column("version", Integer))
        .render_derived(name="read")
    )
    return (
        update(classes)
        .where(classes.c.id == read.c.id, classes.c.version == read.c.version)
        .values(version=classes.c.version + 1, updated_at=bindparam("now"))
    )


def bump_students() -> Update:
    """A new version of the students in ``bumped_student_ids`` (locked before): their
    ``class_ids`` changed."""
    return (
        update(students)
        .where(students.c.id == any_(bindparam("bumped_student_ids", type_=ARRAY(UUID_TYPE))))
        .values(version=students.c.version + 1, updated_at=bindparam("now"))
    )


def _update_class_statement() -> Select[Any]:
    version = bindparam("version", type_=Integer)
    updated = (
        update(classes)
        .where(
            classes.c.id == bindparam("class_id", type_=UUID_TYPE),
            classes.c.version == version - 1,
        )
        .values(
            name=bindparam("name", type_=String),
            course_id=bindparam("course_id", type_=UUID_TYPE),
            status=bindparam("status", type_=class_status_enum),
            version=version,
            updated_at=bindparam("now"),
        )
        .returning(classes.c.id)
        .cte("updated")
    )
    return with_entries_if(updated)


# A class's new name, course, status and ``version``, and its outbox rows, if it is still
# at the version before (no row otherwise, and nothing written): read without a lock, a
# class is changed by this statement alone when no other change came in between.
UPDATE_CLASS = _update_class_statement()


# For a class locked by LOCK_CLASS, its members by LOCK_MEMBERS: delete it (memberships go by
# cascade), bump its members' versions, write every outbox row, in one statement.
DELETE_CLASS = delete_with_entries(classes, "class_id", bump_students().cte("bumped"))


class CourseIds:
    """Course ids by code. Courses are seeded by a migration and never change at run time:
    they are read once, on first use."""

    def __init__(self) -> None:
        self._ids: dict[CourseCode, uuid.UUID] = {}

    async def of(self, session: AsyncSession, code: CourseCode) -> uuid.UUID:
        """The course's id; raises CourseNotFoundError for a course that is not seeded."""
        if not self._ids:
            rows = await session.execute(COURSE_IDS)
            self._ids = {CourseCode(row.course_code): row.id for row in rows}
        course_id = self._ids.get(code)
        if course_id is None:
            raise CourseNotFoundError(f"Course {code} is not available.")
        return course_id


# One batch of every owner's classes after ``after`` (the nil UUID: from the first) in id
# order, for ``publish-state`` (primary key).
CLASS_STATE_BATCH = (
    select(*CLASS_COLUMNS)
    .where(classes.c.id > bindparam("after", type_=UUID_TYPE))
    .order_by(classes.c.id)
    .limit(bindparam("limit", type_=Integer))
)
