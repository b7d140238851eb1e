"""The statements of students and their memberships, built once at import."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    String,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from services.class_management_service.domain import SortKey
from services.class_management_service.implementations.postgres.classes import (
    IN_CLASS,
    STUDENT_NAMES,
    bump_classes,
)
from services.class_management_service.implementations.postgres.outbox import (
    delete_with_entries,
    with_entries,
)
from services.class_management_service.implementations.postgres.tables import (
    STUDENT_COLUMNS,
    STUDENT_OWNER,
    STUDENT_SEARCH_TEXT,
    UUID_TYPE,
    membership,
    narrowed,
    ordered,
    paged,
    students,
)

# The fields of a student that an update sets.
STUDENT_FIELDS = ("first_name", "last_name", "legal_full_name", "email")

# The user's student by id (primary key), or no row.
GET_STUDENT = select(*STUDENT_COLUMNS).where(STUDENT_OWNER)
# The version of the user's student, or no row (with FOR UPDATE: the lock of an update).
STUDENT_VERSION = select(students.c.version).where(STUDENT_OWNER)


@cache
def student_list(
    in_class: bool, search: bool, by_ids: bool, since: bool, sort: SortKey = "name"
) -> tuple[Select[Any], Select[Any]]:
    """The user's students (optionally of one class) for one set of filters and an order, a
    page with its total and the count alone; served as class_list is."""
    conditions = narrowed(students, STUDENT_SEARCH_TEXT, search=search, by_ids=by_ids, since=since)
    if in_class:
        conditions.append(IN_CLASS)
    return paged(
        select(*STUDENT_COLUMNS), students, conditions, ordered(students, STUDENT_NAMES, sort)
    )


def _memberships_of_new_student(student_id: Any) -> Any:
    return insert(membership).from_select(
        ("class_id", "student_id"),
        select(func.unnest(bindparam("class_ids", type_=ARRAY(UUID_TYPE))), student_id),
    )


def _create_student_statement() -> Select[Any]:
    new_student = (
        insert(students)
        .values(
            id=bindparam("student_id", type_=UUID_TYPE),
            first_name=bindparam("first_name", type_=String),
            last_name=bindparam("last_name", type_=String),
            legal_full_name=bindparam("legal_full_name", type_=String),
            email=bindparam("email", type_=String),
            created_by_user_id=bindparam("user_id", type_=String),
            created_at=bindparam("now"),
            updated_at=bindparam("now"),
            version=literal_column("1"),
        )
        .returning(students.c.id)
        .cte("new_student")
    )
    links = _memberships_of_new_student(select(new_student.c.id).scalar_subquery()).cte("links")
    return with_entries(select(new_student.c.id)).add_cte(links, bump_classes().cte("bumped"))


# For classes ``class_ids`` locked (LOCK_CLASSES) and checked as the user's: the student,
# its memberships, its classes' new versions and every outbox row, in one statement.
CREATE_STUDENT = _create_student_statement()
# The user's student, locked until the transaction ends (after the classes whose members
# the change changes; see classes.py on locks). Read by GET_STUDENT after it.
LOCK_STUDENT = select(students.c.id).where(STUDENT_OWNER).with_for_update()


def _update_student_statement() -> Select[Any]:
    student_id = bindparam("student_id", type_=UUID_TYPE)
    updated = (
        update(students)
        .where(students.c.id == student_id)
        .values(
            {field: bindparam(field, type_=String) for field in STUDENT_FIELDS}
            | {"version": bindparam("version", type_=Integer), "updated_at": bindparam("now")}
        )
        .returning(students.c.id)
        .cte("updated")
    )
    removed = (
        delete(membership)
        .where(
            membership.c.student_id == student_id,
            membership.c.class_id == any_(bindparam("remove_ids", type_=ARRAY(UUID_TYPE))),
        )
        .cte("removed")
    )
    added = (
        insert(membership)
        .from_select(
            ("class_id", "student_id"),
            select(func.unnest(bindparam("add_ids", type_=ARRAY(UUID_TYPE))), student_id),
        )
        .cte("added")
    )
    return with_entries(select(updated.c.id)).add_cte(removed, added, bump_classes().cte("bumped"))


# For a student locked by LOCK_STUDENT (and the classes it joins or leaves by LOCK_CLASSES):
# its whole new state (names, e-mail, version), the memberships it leaves (``remove_ids``,
# all current) and joins (``add_ids``, none current), those classes' new versions and every
# outbox row, in one statement.
UPDATE_STUDENT = _update_student_statement()


# For a student locked by LOCK_STUDENT (its classes by LOCK_CLASSES): delete it (memberships
# and essay links go by cascade), bump its classes' versions, write every outbox row.
DELETE_STUDENT = delete_with_entries(students, "student_id", bump_classes().cte("bumped"))


# One batch of every owner's students after ``after`` (the nil UUID: from the first) in id order,
# for ``publish-state`` (primary key).
STUDENT_STATE_BATCH = (
    select(*STUDENT_COLUMNS)
    .where(students.c.id > bindparam("after", type_=UUID_TYPE))
    .order_by(students.c.id)
    .limit(bindparam("limit", type_=Integer))
)
