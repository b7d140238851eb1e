"""The statements of classes (and their rosters), built once at import."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Insert, Select, String, any_, bindparam, exists, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from common_core import CourseCode
from services.class_management_service.domain import SortKey
from services.class_management_service.exceptions import ClassNotFoundError, CourseNotFoundError
from services.class_management_service.implementations.postgres.outbox import (
    delete_with_event,
    event_after,
    with_version,
)
from services.class_management_service.implementations.postgres.tables import (
    CLASS_COLUMNS,
    CLASS_OWNER,
    CLASS_SEARCH_TEXT,
    ROSTER_ENTRY_COLUMNS,
    UUID_TYPE,
    classes,
    courses,
    guarded,
    membership,
    narrowed,
    ordered,
    paged,
    students,
)

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
# The version of the user's class, or no row: why a guarded change matched nothing.
CLASS_VERSION = select(classes.c.version).where(CLASS_OWNER)
# Every seeded course's id by code; read once per process (courses never change at run time).
COURSE_IDS = select(courses.c.course_code, courses.c.id)
# The classes named by id, looked up by primary key alone, then kept if they are the user's.
# With the owner in the same WHERE clause, PostgreSQL's generic plan (prepared statements
# switch to it after five runs) may estimate "this user has a few classes" from stale
# statistics, scan the owner index instead and filter every class the user has: a student
# creation then cost O(the user's classes). MATERIALIZED keeps the lookup on the key.
_CLASSES_BY_ID = (
    select(classes.c.id, classes.c.created_by_user_id)
    .where(classes.c.id == any_(bindparam("class_ids", type_=ARRAY(UUID_TYPE))))
    .cte("classes_by_id")
    .prefix_with("MATERIALIZED")
)
# Those of ``class_ids`` that are the user's classes (test_query_plans: key lookups only).
OWNED_CLASS_IDS = select(_CLASSES_BY_ID.c.id).where(
    _CLASSES_BY_ID.c.created_by_user_id == bindparam("user_id", type_=String)
)
# One page of a class's students by name with the total, or no row if it is not the user's.
ROSTER, _ = paged(
    select(*ROSTER_ENTRY_COLUMNS), students, (IN_CLASS, exists().where(CLASS_OWNER)), BY_NAME
)
# For a roster page that came back empty: is the class there at all, and how many students?
ROSTER_EMPTY_PAGE = select(
    exists().where(CLASS_OWNER).label("owned"),
    select(func.count())
    .select_from(membership)
    .where(membership.c.class_id == bindparam("class_id"))
    .scalar_subquery()
    .label("total"),
)


@cache
def class_list(
    by_course: bool,
    search: bool,
    by_ids: bool,
    since: bool,
    sort: SortKey = "-created_at",
    of_student: bool = False,
) -> tuple[Select[Any], Select[Any]]:
    """The user's classes for one set of filters and an order (of one student's classes when
    ``of_student``), a page with its total and the count alone. The owner-first index of the
    order serves it (of ``q``: the name's trigram index), with no sort of the user's classes."""
    conditions = narrowed(classes, CLASS_SEARCH_TEXT, search=search, by_ids=by_ids, since=since)
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


def _create_class_statement() -> Insert:
    new_class = (
        insert(classes)
        .values(
            id=bindparam("class_id", type_=UUID_TYPE),
            name=bindparam("name", type_=String),
            course_id=bindparam("course_id", type_=UUID_TYPE),
            created_by_user_id=bindparam("user_id", type_=String),
            created_at=bindparam("now"),
            updated_at=bindparam("now"),
            version=1,
        )
        .returning(classes.c.id)
        .cte("new_class")
    )
    return event_after(new_class).add_cte(new_class)


# A new class and its ``created`` event: one statement, both or neither.
CREATE_CLASS = _create_class_statement()


@cache
def update_class_statement(checks_version: bool) -> Select[Any]:
    """Rename and/or re-course an owned class (a NULL keeps the value) and write its event,
    in one statement; returns the class as changed, or no row when nothing matched.

    The event is bound already built (for the version the caller expects); the statement
    stores it with ``data.version`` set to the version the update produced.
    """
    updated = (
        classes.update()
        .where(guarded(classes, checks_version))
        .values(
            name=func.coalesce(bindparam("name", type_=String), classes.c.name),
            course_id=func.coalesce(bindparam("course_id", type_=UUID_TYPE), classes.c.course_id),
            version=classes.c.version + 1,
            updated_at=bindparam("now"),
        )
        .returning(*CLASS_COLUMNS)
        .cte("updated")
    )
    event = event_after(updated, with_version(updated.c.version)).cte("event")
    return select(updated).add_cte(event)


@cache
def delete_class_statement(checks_version: bool) -> Select[Any]:
    """Delete an owned class (its memberships go by cascade) and write its ``deleted`` event,
    in one statement; returns the version it had, or no row when nothing matched."""
    return delete_with_event(classes, checks_version)


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


async def require_owned_classes(
    user_id: str, class_ids: Sequence[uuid.UUID], session: AsyncSession
) -> None:
    """Raise ClassNotFoundError naming each of ``class_ids`` that is not the user's class."""
    wanted = set(class_ids)
    if not wanted:
        return
    rows = await session.execute(OWNED_CLASS_IDS, {"class_ids": list(wanted), "user_id": user_id})
    missing = sorted(str(class_id) for class_id in wanted - {row.id for row in rows})
    if missing:
        raise ClassNotFoundError(f"Class not found: {', '.join(missing)}.")
