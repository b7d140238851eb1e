"""The statements of students and their memberships, built once at import."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    String,
    any_,
    bindparam,
    case,
    column,
    delete,
    exc,
    func,
    insert,
    literal_column,
    null,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from services.class_management_service.domain import SortKey
from services.class_management_service.implementations.postgres.classes import (
    IN_CLASS,
    STUDENT_NAMES,
    bump_classes,
    bump_classes_at_versions,
    bump_students,
    snapshot_version,
)
from services.class_management_service.implementations.postgres.outbox import (
    delete_with_entries,
    when_changed,
    with_entries,
    with_entries_if,
)
from services.class_management_service.implementations.postgres.tables import (
    STUDENT_COLUMNS,
    STUDENT_OWNER,
    STUDENT_SEARCH_TEXT,
    UUID_TYPE,
    classes,
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


# A student's search keys, one per (owner, trigram inside a word of the search text), and
# those of ``q`` for the user (migration 0006): a student whose search text holds ``q`` has
# every key of ``q``.
STUDENT_SEARCH_KEYS = func.owner_search_keys(
    students.c.created_by_user_id, STUDENT_SEARCH_TEXT, type_=ARRAY(Integer)
)
Q_SEARCH_KEYS = func.owner_search_keys(
    bindparam("user_id", type_=String),
    func.search_folded(bindparam("q", type_=String)),
    type_=ARRAY(Integer),
)
# Three letters or digits in a row: ``q`` has a trigram inside a word (pg_trgm's words are
# runs of letters and digits), so it has keys.
_INNER_TRIGRAM = re.compile(r"[^\W_]{3}")


def searched_by_keys(q: str | None) -> bool:
    """Whether the students matching ``q`` are found by their search keys (else ``q`` is
    matched against each of the user's students: a pattern shorter than a trigram)."""
    return q is not None and _INNER_TRIGRAM.search(q) is not None


@cache
def student_list(
    in_class: bool,
    search: bool,
    by_ids: bool,
    since: bool,
    sort: SortKey = "name",
    by_keys: bool = False,
) -> tuple[Select[Any], Select[Any]]:
    """The user's students (optionally of one class) for one set of filters and an order, a
    page with its total and the count alone; served as class_list is.

    With ``ids`` or search keys (``by_keys``, see ``searched_by_keys``) the rows are found
    by the primary key or the keys' index, and the owner is checked on them by no index: a
    prepared statement's generic plan, blind to the owner, estimates an owner's rows as an
    average owner's few, and would read the owner's index beside the other: all of a
    teacher's 10,000 students for a batch of 100 or a search."""
    conditions = narrowed(
        students,
        STUDENT_SEARCH_TEXT,
        search=search,
        by_ids=by_ids,
        since=since,
        owner_by_index=not (by_ids or by_keys),
    )
    if by_keys:
        conditions.append(STUDENT_SEARCH_KEYS.contains(Q_SEARCH_KEYS))
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
    bumped = bump_classes_at_versions().returning(classes.c.id).cte("bumped")
    # The student's id only when every class it joins was still at the version read: else
    # NULL, which its primary key refuses, and the whole statement with it (``refused``).
    bumped_count = select(func.count()).select_from(bumped).scalar_subquery()
    read_count = func.cardinality(bindparam("bumped_class_ids", type_=ARRAY(UUID_TYPE)))
    every_class_bumped = bumped_count == read_count
    new_student = (
        insert(students)
        .values(
            id=case((every_class_bumped, bindparam("student_id", type_=UUID_TYPE)), else_=null()),
            **{field: bindparam(field, type_=String) for field in STUDENT_FIELDS},
            created_by_user_id=bindparam("user_id", type_=String),
            created_at=bindparam("now"),
            updated_at=bindparam("now"),
            version=literal_column("1"),
        )
        .returning(students.c.id)
        .cte("new_student")
    )
    links = _memberships_of_new_student(select(new_student.c.id).scalar_subquery()).cte("links")
    return with_entries(select(new_student.c.id)).add_cte(links, bumped)


# The student, its memberships of ``class_ids`` (checked as the user's), those classes' new
# versions and every outbox row, in one statement, if each class is still at its version in
# ``bumped_versions``; otherwise nothing is written (``refused``): the classes are read
# without a lock, and a change of one in between means doing it again under the locks.
CREATE_STUDENT = _create_student_statement()


def refused(error: exc.IntegrityError) -> bool:
    """Whether CREATE_STUDENT was refused because a class it joins changed after it was
    read (the student's id left NULL), not by a rule the request broke."""
    cause = getattr(error.orig, "__cause__", None)
    return getattr(cause, "sqlstate", None) == "23502" and (
        getattr(cause, "table_name", None),
        getattr(cause, "column_name", None),
    ) == ("students", "id")


# The user's student, locked until the transaction ends (after the classes whose members
# the change changes), and read (see classes.py on locks).
LOCK_STUDENT = (
    select(*STUDENT_COLUMNS, snapshot_version(students))
    .where(STUDENT_OWNER)
    .with_for_update(of=students)
)


def _update_student_statement() -> Select[Any]:
    student_id = bindparam("student_id", type_=UUID_TYPE)
    version = bindparam("version", type_=Integer)
    updated = (
        update(students)
        .where(students.c.id == student_id, students.c.version == version - 1)
        .values(
            {field: bindparam(field, type_=String) for field in STUDENT_FIELDS}
            | {"version": version, "updated_at": bindparam("now")}
        )
        .returning(students.c.id)
        .cte("updated")
    )
    removed = (
        delete(membership)
        .where(
            membership.c.student_id == student_id,
            membership.c.class_id == any_(bindparam("remove_ids", type_=ARRAY(UUID_TYPE))),
            when_changed(updated),
        )
        .cte("removed")
    )
    added = (
        insert(membership)
        .from_select(
            ("class_id", "student_id"),
            select(func.unnest(bindparam("add_ids", type_=ARRAY(UUID_TYPE))), student_id).where(
                when_changed(updated)
            ),
        )
        .cte("added")
    )
    bumped = bump_classes().where(when_changed(updated)).cte("bumped")
    return with_entries_if(updated, removed, added, bumped)


# A student's whole new state (names, e-mail, ``version``), the memberships it leaves
# (``remove_ids``, all current) and joins (``add_ids``, none current), those classes' new
# versions (locked before: LOCK_CLASSES) and every outbox row, in one statement, if the
# student is still at the version before (no row otherwise, and nothing written): a change
# of names or e-mail alone is read without a lock and written by this statement alone when
# no other change came in between; a change of memberships locks the classes and the
# student first.
UPDATE_STUDENT = _update_student_statement()


# For a student locked by LOCK_STUDENT (its classes by LOCK_CLASSES): delete it (memberships
# and essay links go by cascade), bump its classes' versions, write every outbox row.
DELETE_STUDENT = delete_with_entries(students, "student_id", bump_classes().cte("bumped"))


# -- importing a class list ------------------------------------------------------------

# The e-mails of an import's rows, as a table to join (an ``= ANY(array)`` filter compares
# each of the teacher's students with every e-mail once the plan is generic: a 1,000-row
# import of a teacher with 13,000 students took 200 ms).
_WANTED_EMAILS = (
    func.unnest(bindparam("emails", type_=ARRAY(String)))
    .table_valued(column("email", String))
    .render_derived(name="wanted")
)
# The user's students with one of the e-mails ``emails`` (lower case, as stored), locked in
# id order after the class they join: one probe of the owner's unique e-mail index per
# e-mail (see test_query_plans.py on a table without statistics).
LOCK_STUDENTS_BY_EMAIL = (
    select(students.c.id)
    .join(_WANTED_EMAILS, students.c.email == _WANTED_EMAILS.c.email)
    .where(students.c.created_by_user_id == bindparam("user_id", type_=String))
    .order_by(students.c.id)
    .with_for_update(of=students)
)
# The students ``student_ids``, as records (primary key).
STUDENTS_BY_ID = select(*STUDENT_COLUMNS).where(
    students.c.id == any_(bindparam("student_ids", type_=ARRAY(UUID_TYPE)))
)
# The new students of an import, bound as one array per column and unnested in order.
_NEW_STUDENT_COLUMNS = ("id", *STUDENT_FIELDS)
_NEW_STUDENTS = (
    func.unnest(
        bindparam("new_ids", type_=ARRAY(UUID_TYPE)),
        *(bindparam(f"new_{field}s", type_=ARRAY(String)) for field in STUDENT_FIELDS),
    )
    .table_valued(column("id", UUID_TYPE), *(column(field, String) for field in STUDENT_FIELDS))
    .render_derived(name="new_students")
)


def _import_students_statement() -> Select[Any]:
    created = (
        insert(students)
        .from_select(
            (*_NEW_STUDENT_COLUMNS, "created_by_user_id", "created_at", "updated_at", "version"),
            select(
                *(_NEW_STUDENTS.c[name] for name in _NEW_STUDENT_COLUMNS),
                bindparam("user_id", type_=String),
                bindparam("now"),
                bindparam("now"),
                literal_column("1"),
            ),
        )
        .returning(students.c.id)
        .cte("created")
    )
    links = (
        insert(membership)
        .from_select(
            ("class_id", "student_id"),
            select(
                bindparam("class_id", type_=UUID_TYPE),
                func.unnest(bindparam("joining_ids", type_=ARRAY(UUID_TYPE))),
            ),
        )
        .cte("links")
    )
    return with_entries(select(func.count()).select_from(created)).add_cte(
        links, bump_students().cte("bumped_students"), bump_classes().cte("bumped_classes")
    )


# For a class locked by LOCK_CLASS and the students it gains that exist, locked by
# LOCK_STUDENTS_BY_EMAIL: the new students, every new membership (``joining_ids``: the new
# and the added students), the added students' and the class's new versions and every
# outbox row, in one statement whatever the number of rows.
IMPORT_STUDENTS = _import_students_statement()


# One batch of every owner's students after ``after`` (the nil UUID: from the first) in id order,
# for ``publish-state`` (primary key).
STUDENT_STATE_BATCH = (
    select(*STUDENT_COLUMNS)
    .where(students.c.id > bindparam("after", type_=UUID_TYPE))
    .order_by(students.c.id)
    .limit(bindparam("limit", type_=Integer))
)
