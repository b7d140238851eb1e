"""The statements of essay links (which student wrote which essay), built once at import."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, String, bindparam, exists, func, select, true
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.class_management_service.implementations.postgres.outbox import entry_after
from services.class_management_service.implementations.postgres.tables import (
    ESSAY_LINK_COLUMNS,
    STUDENT_OWNER,
    UUID_TYPE,
    essay_links,
    students,
)

# The essay links of the user's student, oldest first; no row when there are none or the
# student is not the user's (STUDENT_VERSION then tells which).
STUDENT_ESSAYS = (
    select(*ESSAY_LINK_COLUMNS)
    .where(essay_links.c.student_id == bindparam("student_id"), exists().where(STUDENT_OWNER))
    .order_by(essay_links.c.created_at, essay_links.c.essay_id)
)


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
