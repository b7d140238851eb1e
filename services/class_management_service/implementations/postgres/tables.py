"""The tables, the columns each record is selected by, and the records built from them.

A record is built from the very tuple that selects it: ``CLASS_COLUMNS`` feeds both the
SELECTs and RETURNINGs of a class and ``class_record``. The tuples' labels are their
records' field names, in order (checked here at import and by
tests/unit/test_postgres_records.py), so adding a column is one edit here plus the
migration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, cast

from sqlalchemy import (
    ColumnClause,
    Integer,
    Row,
    Select,
    String,
    Table,
    and_,
    any_,
    bindparam,
    func,
    literal_column,
)
from sqlalchemy import select as sql_select
from sqlalchemy.dialects.postgresql import ARRAY, UUID, array_agg

from common_core import ClassStatus, CourseCode
from services.class_management_service.domain import (
    ClassRecord,
    EssayLinkRecord,
    EssayWriterRecord,
    ListFilters,
    RecordT,
    RosterEntryRecord,
    SortKey,
    StudentIdentityRecord,
    StudentRecord,
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

UUID_TYPE = UUID(as_uuid=True)
# An empty uuid[] where a student is in no class (array_agg of no rows is NULL).
NO_CLASS_IDS: ColumnClause[Any] = literal_column("'{}'::uuid[]")

# The user's class / student by id: another owner's row is as absent as a missing one.
CLASS_OWNER = and_(
    classes.c.id == bindparam("class_id", type_=UUID_TYPE),
    classes.c.created_by_user_id == bindparam("user_id", type_=String),
)
STUDENT_OWNER = and_(
    students.c.id == bindparam("student_id", type_=UUID_TYPE),
    students.c.created_by_user_id == bindparam("user_id", type_=String),
)


def paged(
    rows: Select[Any],
    table: Table,
    conditions: Sequence[Any],
    order_by: Sequence[Any],
    total: Select[Any] | None = None,
) -> tuple[Select[Any], Select[Any]]:
    """One page of ``rows`` with the total of all matches, and that total alone (``total``
    where the matches are cheaper counted another way).

    The total is an uncorrelated subquery, counted once beside the page (an InitPlan), not
    ``count(*) OVER ()``: a window over the matches would read every match's row, and
    compute every column of it, before the page's first. The count alone reads what its
    conditions need (an owner's index entries), and the page only its own rows. The count
    alone is only needed for a page that comes back empty past the end.
    """
    if total is None:
        total = sql_select(func.count()).select_from(table).where(*conditions)
    page = (
        rows.add_columns(total.correlate(None).scalar_subquery().label("total"))
        .where(*conditions)
        .order_by(*order_by)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )
    return page, total


# -- the filters and orders of the class and student lists --------------------------------

# What ``q`` is looked for in (migration 0004's immutable functions, each served by a pg_trgm
# GIN index over the very same expression): lower case, accents removed.
CLASS_SEARCH_TEXT = func.search_folded(classes.c.name)
STUDENT_SEARCH_TEXT = func.student_search_text(
    students.c.first_name, students.c.last_name, students.c.legal_full_name, students.c.email
)


def narrowed(
    table: Table,
    search_text: Any,
    *,
    search: bool,
    by_ids: bool,
    since: bool,
    owner_by_index: bool = True,
) -> list[Any]:
    """The user's rows of ``table`` with the list filters that are set: ``q_pattern``
    (``filter_params``), ``ids`` and ``updated_since``. Without ``owner_by_index`` the owner
    is checked on the rows another condition's index finds (``IS true``: a condition no
    index serves; see ``students.student_list``)."""
    owned = table.c.created_by_user_id == bindparam("user_id", type_=String)
    conditions = [owned if owner_by_index else owned.is_(True)]
    if search:
        # Folded in SQL as the indexed text is, so that both drop the same accents.
        pattern = func.search_folded(bindparam("q_pattern", type_=String))
        conditions.append(search_text.like(pattern))
    if by_ids:
        conditions.append(table.c.id == any_(bindparam("ids", type_=ARRAY(UUID_TYPE))))
    if since:
        conditions.append(table.c.updated_at >= bindparam("updated_since"))
    return conditions


def ordered(table: Table, names: Sequence[Any], sort: SortKey) -> tuple[Any, ...]:
    """ORDER BY of ``sort``: ``names`` (in their columns' Swedish collation) or a time, then
    id, all ascending or all descending, as the owner-first indexes hold them."""
    field = sort.removeprefix("-")
    columns = [*(names if field == "name" else (table.c[field],)), table.c.id]
    return tuple(column.desc() if sort.startswith("-") else column.asc() for column in columns)


def filter_shape(filters: ListFilters) -> tuple[bool, bool, bool]:
    """Which of ``narrowed``'s filters are set (search, ids, since): part of a list
    statement's cache key."""
    return filters.q is not None, filters.ids is not None, filters.updated_since is not None


def filter_params(filters: ListFilters) -> dict[str, Any]:
    """The bound values of ``narrowed``'s conditions (and ``q`` itself, for the students'
    search keys); ``q`` matches as a substring, its LIKE wildcards (and the escape
    character) literally."""
    q = filters.q
    if q is not None:
        q = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return {
        "q": filters.q,
        "q_pattern": q,
        "ids": list(filters.ids) if filters.ids is not None else None,
        "updated_since": filters.updated_since,
    }


# -- the columns of each record -----------------------------------------------------------

# A class as the API shows it; correlated to ``classes``, so it serves RETURNING too.
CLASS_COLUMNS: tuple[Any, ...] = (
    classes.c.id,
    classes.c.name,
    sql_select(courses.c.course_code)
    .where(courses.c.id == classes.c.course_id)
    .correlate(classes)
    .scalar_subquery()
    .label("course_code"),
    sql_select(func.count())
    .select_from(membership)
    .where(membership.c.class_id == classes.c.id)
    .correlate(classes)
    .scalar_subquery()
    .label("student_count"),
    classes.c.created_by_user_id,
    classes.c.created_at,
    classes.c.updated_at,
    classes.c.version,
    classes.c.status,
)
# A student with the ids of its classes; correlated to ``students`` like CLASS_COLUMNS.
STUDENT_COLUMNS: tuple[Any, ...] = (
    students.c.id,
    students.c.first_name,
    students.c.last_name,
    students.c.legal_full_name,
    students.c.email,
    sql_select(
        func.coalesce(
            array_agg(membership.c.class_id),  # type: ignore[no-untyped-call]
            NO_CLASS_IDS,
        )
    )
    .where(membership.c.student_id == students.c.id)
    .correlate(students)
    .scalar_subquery()
    .label("class_ids"),
    students.c.created_by_user_id,
    students.c.created_at,
    students.c.updated_at,
    students.c.version,
)
# A roster shows who is in the class, not each student's other classes: no memberships.
ROSTER_ENTRY_COLUMNS: tuple[Any, ...] = (
    students.c.id.label("student_id"),
    students.c.first_name,
    students.c.last_name,
    students.c.legal_full_name,
    students.c.email,
)
ESSAY_LINK_COLUMNS: tuple[Any, ...] = (
    essay_links.c.essay_id,
    essay_links.c.student_id,
    essay_links.c.created_at,
)
# An essay's link and who its student is (StudentIdentityRecord, after its id).
ESSAY_WRITER_COLUMNS: tuple[Any, ...] = (
    *ESSAY_LINK_COLUMNS,
    students.c.first_name,
    students.c.last_name,
    students.c.legal_full_name,
    students.c.email,
)


def column_names(columns: Sequence[Any]) -> tuple[str, ...]:
    """The names a row of ``columns`` has (a label's, or the column's own)."""
    return tuple(column.name for column in columns)


def record_from(
    columns: Sequence[Any], record: type[RecordT], **convert: Callable[[Any], Any]
) -> Callable[[Row[Any]], RecordT]:
    """How a row that starts with ``columns`` becomes a ``record``: each field from the column
    of its name, through ``convert[field]`` where given (a page's total may follow).

    The names are matched once, here; a row is then read by position, as a Row's lookups by
    name cost more than building the record.
    """
    names = column_names(columns)
    wanted = tuple(field.name for field in fields(record))  # type: ignore[arg-type]
    if names != wanted:
        raise TypeError(f"{record.__name__} has fields {wanted}, its columns are {names}")
    width = len(names)
    conversions = tuple((names.index(name), function) for name, function in convert.items())

    def build(row: Row[Any]) -> RecordT:
        values = list(row[:width])
        for index, function in conversions:
            values[index] = function(values[index])
        return record(*values)

    return build


def _sorted_ids(class_ids: Sequence[Any] | None) -> tuple[Any, ...]:
    # UUIDs order by value as their text orders (fixed-width lowercase hex), 5x cheaper.
    return tuple(sorted(class_ids)) if class_ids else ()


class_record = record_from(CLASS_COLUMNS, ClassRecord, course_code=CourseCode, status=ClassStatus)
student_record = record_from(STUDENT_COLUMNS, StudentRecord, class_ids=_sorted_ids)
roster_entry_record = record_from(ROSTER_ENTRY_COLUMNS, RosterEntryRecord)
essay_link_record = record_from(ESSAY_LINK_COLUMNS, EssayLinkRecord)


def essay_writer_record(row: Row[Any]) -> EssayWriterRecord:
    """A row of ``ESSAY_WRITER_COLUMNS`` as the essay's link with its student."""
    essay_id, student_id, created_at, *identity = row[: len(ESSAY_WRITER_COLUMNS)]
    return EssayWriterRecord(
        essay_id, student_id, created_at, StudentIdentityRecord(student_id, *identity)
    )
