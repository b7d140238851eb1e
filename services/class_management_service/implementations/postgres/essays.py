"""The statements of essay links (which student wrote which essay), built once at import."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, String, bindparam, exists, func, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.class_management_service.implementations.postgres.outbox import entry_after
from services.class_management_service.implementations.postgres.tables import (
    ESSAY_LINK_COLUMNS,
    ESSAY_WRITER_COLUMNS,
    STUDENT_OWNER,
    UUID_TYPE,
    essay_links,
    paged,
    students,
)

# One page of the essay links of the user's student, oldest first, with the total and the
# count alone (the links' student index); no row when there are none or the student is not
# the user's (STUDENT_VERSION then tells which).
STUDENT_ESSAYS = paged(
    select(*ESSAY_LINK_COLUMNS),
    essay_links,
    (essay_links.c.student_id == bindparam("student_id"), exists().where(STUDENT_OWNER)),
    (essay_links.c.created_at, essay_links.c.essay_id),
)
# The essay's link and its student, if the student is the user's (the unique essay_id).
ESSAY_WRITER = (
    select(*ESSAY_WRITER_COLUMNS)
    .join_from(essay_links, students, students.c.id == essay_links.c.student_id)
    .where(
        essay_links.c.essay_id == bindparam("essay_id", type_=UUID_TYPE),
        students.c.created_by_user_id == bindparam("user_id", type_=String),
    )
)


def _unlink_essay_statement() -> Select[Any]:
    removed = (
        essay_links.delete()
        .where(
            essay_links.c.essay_id == bindparam("essay_id", type_=UUID_TYPE),
            essay_links.c.student_id == bindparam("student_id", type_=UUID_TYPE),
            exists().where(STUDENT_OWNER),
        )
        .returning(essay_links.c.essay_id)
        .cte("removed")
    )
    return select(removed.c.essay_id).add_cte(entry_after(removed).cte("announced"))


# Remove the essay's link to the user's student and write its ``unlinked`` event (bound,
# already built), in one statement: both or neither; no row when there was no such link.
UNLINK_ESSAY = _unlink_essay_statement()


def _link_essay_statement() -> Select[Any]:
    link = essay_links.c
    owned = select(students.c.id).where(STUDENT_OWNER).cte("owned")
    made = (
        pg_insert(essay_links)
        .from_select(
            ("id", "essay_id", "student_id", "created_by_user_id", "created_at"),
            select(
                bindparam("link_id", type_=UUID_TYPE),
                bindparam("essay_id", type_=UUID_TYPE),
                owned.c.id,
                bindparam("user_id", type_=String),
                bindparam("now"),
            ),
        )
        .on_conflict_do_nothing(index_elements=[link.essay_id])
        .returning(link.essay_id, link.student_id, link.created_at)
        .cte("made")
    )
    had = select(link.student_id, link.created_at).where(
        link.essay_id == bindparam("essay_id", type_=UUID_TYPE)
    )
    base = select(func.count().label("owned")).select_from(owned).subquery("base")
    had_link = had.subquery("had")
    announced = entry_after(made).cte("announced")
    return (
        select(
            base.c.owned,
            made.c.essay_id,
            made.c.student_id,
            made.c.created_at,
            had_link.c.student_id,
            had_link.c.created_at,
        )
        .select_from(base.outerjoin(made, true()).outerjoin(had_link, true()))
        .add_cte(announced)
    )


# Link an essay to an owned student unless the essay is linked already, and write the bound
# ``linked`` event only if it did, in one statement (the unique essay_id decides between
# racing links); one row: whether the student is the
# user's, the link it made (or NULLs) and the link the essay had (or NULLs).
LINK_ESSAY = _link_essay_statement()
