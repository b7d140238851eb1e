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
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, array_agg
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.class_management_service.domain import SortKey
from services.class_management_service.implementations.postgres.classes import (
    IN_CLASS,
    OWNED_CLASS_IDS,
    STUDENT_NAMES,
)
from services.class_management_service.implementations.postgres.outbox import (
    delete_with_event,
    event_after,
    with_version,
)
from services.class_management_service.implementations.postgres.tables import (
    NO_CLASS_IDS,
    STUDENT_COLUMNS,
    STUDENT_OWNER,
    STUDENT_SEARCH_TEXT,
    UUID_TYPE,
    column_names,
    guarded,
    membership,
    narrowed,
    ordered,
    paged,
    students,
)

# The fields a student update may change (a NULL keeps the value).
STUDENT_FIELDS_CHANGED = ("first_name", "last_name", "legal_full_name", "email")

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


def _create_student_statement() -> Select[Any]:
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
                bindparam("student_id", type_=UUID_TYPE),
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
    event = event_after(new_student).cte("event")
    return select(func.count().label("created")).select_from(new_student).add_cte(links, event)


# The student, its memberships and its ``created`` event, only if every class in
# ``class_ids`` is the user's: one statement, returning one row, ``created`` (0 when a
# class is missing and nothing was written).
CREATE_STUDENT = _create_student_statement()


def _student_changes() -> dict[str, Any]:
    """SET of a student update: the named fields (a NULL keeps the value), a new version."""
    return {
        field: func.coalesce(bindparam(field, type_=String), students.c[field])
        for field in STUDENT_FIELDS_CHANGED
    } | {"version": students.c.version + 1, "updated_at": bindparam("now")}


@cache
def update_student_statement(checks_version: bool) -> Select[Any]:
    """Change an owned student's names and e-mail (a NULL keeps the value) and write its
    event, in one statement; returns the student as changed, or no row when nothing matched.
    Memberships are not changed here (see ``CHANGE_MEMBERSHIPS``). The event is bound already
    built, as for classes, and stored with the version the update produced.
    """
    updated = (
        students.update()
        .where(guarded(students, checks_version))
        .values(_student_changes())
        .returning(*STUDENT_COLUMNS)
        .cte("updated")
    )
    event = event_after(updated, with_version(updated.c.version)).cte("event")
    return select(updated).add_cte(event)


def _change_memberships_statement() -> Select[Any]:
    student_id = bindparam("student_id", type_=UUID_TYPE)
    add_ids = bindparam("add_ids", type_=ARRAY(UUID_TYPE))
    remove_ids = bindparam("remove_ids", type_=ARRAY(UUID_TYPE))
    # The student's own columns come back from the UPDATE; its class ids are computed here.
    own_columns = [column for column in STUDENT_COLUMNS if column.name != "class_ids"]
    updated = (
        students.update()
        .where(students.c.id == student_id)
        .values(_student_changes())
        .returning(*own_columns)
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
            NO_CLASS_IDS,
        )
    ).scalar_subquery()
    return select(
        *(
            class_ids.label(name) if name == "class_ids" else updated.c[name]
            for name in column_names(STUDENT_COLUMNS)
        )
    ).add_cte(removed, added, event_after(updated).cte("event"))


# For a student already locked and checked (the repository's ``update_student``): change
# its names and e-mail (a NULL keeps the value), remove and add memberships, write its
# event; returns the student as changed (STUDENT_COLUMNS), with its class ids. All parts
# read the statement's one snapshot, taken after the lock, so they see every change
# committed before it; ``add_ids`` must exclude ``remove_ids`` (removal wins), so that no
# two parts touch the same membership.
CHANGE_MEMBERSHIPS = _change_memberships_statement()


@cache
def delete_student_statement(checks_version: bool) -> Select[Any]:
    """Delete an owned student (memberships and essay links go by cascade) and write its
    ``deleted`` event, in one statement; returns the version it had, or no row."""
    return delete_with_event(students, checks_version)
