"""Flat cost in the plans: a statement that names classes by id reads those rows alone, and
the lists' sorts, ``q`` and ``ids`` are served by their indexes.

PostgreSQL plans a prepared statement for its values five times, then may switch to one
generic plan for all values, estimated from the table's statistics, which lag behind the
data (autovacuum analyses a table only after it has grown by a tenth). The repository's
statements are prepared (asyncpg caches them per connection), so both plans must stay
cheap. Each test plans the repository's own compiled statement on a teacher who has many
classes, with fresh statistics and with none, forcing the generic and the custom plan, and
counts the rows of the table the executed plan touched (returned or filtered away). The
list tests read each sort from its owner-first index in order (no sort of the teacher's
rows in memory), find ``q`` through the trigram index and ``ids`` by primary key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Executable

from services.class_management_service.implementations.postgres import classes, students
from services.class_management_service.tests.support.query_plans import (
    PLAN_MODES,
    SEARCH_INDEXES,
    SORT_INDEXES,
    SORTS,
    compiled,
    list_statement,
    list_values,
    nodes,
    page_and_total,
    plan_of,
    rows_touched,
    scans_of,
)

MANY = 2_000


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    yield connection
    await connection.close()


async def _seed_classes(
    connection: asyncpg.Connection, user_id: str, count: int
) -> list[uuid.UUID]:
    course_id = await connection.fetchval("SELECT id FROM courses ORDER BY course_code LIMIT 1")
    ids = [uuid.uuid4() for _ in range(count)]
    now = datetime.now(UTC)
    await connection.executemany(
        "INSERT INTO classes (id, name, course_id, created_by_user_id, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $5)",
        [(class_id, f"Class {n}", course_id, user_id, now) for n, class_id in enumerate(ids)],
    )
    return ids


async def _rows_touched_in(
    connection: asyncpg.Connection,
    statement: Executable,
    values: dict[str, Any],
    mode: str,
    table: str = "classes",
) -> int:
    """Run ``statement`` under EXPLAIN ANALYZE with the given plan mode, rolled back."""
    return rows_touched(await plan_of(connection, statement, values, mode), table)


def _entries(count: int) -> dict[str, Any]:
    """Bound outbox rows (their content does not matter to the plan)."""
    return {
        "entry_event_ids": [uuid.uuid4() for _ in range(count)],
        "entry_event_types": ["huleedu.class.state.v1"] * count,
        "entry_topics": ["huleedu.class.state.v1"] * count,
        "entry_aggregate_ids": [str(uuid.uuid4()) for _ in range(count)],
        "entry_payloads": ["null"] * count,
    }


def _student_values(user_id: str, class_ids: list[uuid.UUID]) -> dict[str, Any]:
    return {
        "class_ids": class_ids,
        "bumped_class_ids": class_ids,
        "bumped_versions": [1] * len(class_ids),
        "user_id": user_id,
        "student_id": uuid.uuid4(),
        "first_name": "Ada",
        "last_name": "Lovelace",
        "legal_full_name": "Ada Lovelace",
        "email": f"{uuid.uuid4().hex}@example.com",
        "version": 2,
        "add_ids": class_ids,
        "remove_ids": [],
        "now": datetime.now(UTC),
        **_entries(1 + len(class_ids)),
    }


@pytest.mark.parametrize("analysed", [False, True], ids=["stale statistics", "analysed"])
@pytest.mark.parametrize("mode", PLAN_MODES)
async def test_statements_naming_classes_read_only_the_named_classes(
    connection: asyncpg.Connection, analysed: bool, mode: str
) -> None:
    teacher = f"teacher-{uuid.uuid4().hex[:8]}"
    class_ids = await _seed_classes(connection, teacher, MANY)
    await _seed_classes(connection, f"other-{uuid.uuid4().hex[:8]}", 50)
    if analysed:
        await connection.execute("ANALYZE classes")
    named = class_ids[:2]
    values = _student_values(teacher, named)

    touched = {
        "lock": await _rows_touched_in(connection, classes.LOCK_CLASSES, values, mode),
        "read": await _rows_touched_in(connection, classes.CLASSES_BY_ID, values, mode),
        "create": await _rows_touched_in(connection, students.CREATE_STUDENT, values, mode),
        "state batch": await _rows_touched_in(
            connection, classes.CLASS_STATE_BATCH, {"after": uuid.UUID(int=0), "limit": 2}, mode
        ),
    }

    # Two named classes: two rows by primary key (the lock twice: each row and its snapshot
    # version; a write at most twice: the foreign-key checks and the new versions), never
    # the teacher's other 1,998; a batch of two: two.
    assert touched["lock"] <= 2 * len(named), touched
    assert touched["read"] <= len(named), touched
    assert touched["create"] <= 2 * len(named), touched
    assert touched["state batch"] <= 2, touched


@pytest.mark.parametrize("mode", PLAN_MODES)
async def test_statements_of_one_student_or_class_read_only_its_rows(
    connection: asyncpg.Connection, mode: str
) -> None:
    """A student's update and deletion bump only the classes they name; a class's members
    are found by the membership key, not by reading every student."""
    teacher = f"teacher-{uuid.uuid4().hex[:8]}"
    class_ids = await _seed_classes(connection, teacher, MANY)
    named = class_ids[:2]
    values = _student_values(teacher, named)
    # The student in the named classes, 300 others each in one other class: memberships
    # spread over many classes, as a real teacher's are (with a handful of memberships in
    # all, a generic plan may merge-join the students' primary key, reading a random share
    # of the teacher's students).
    others = (_student_values(teacher, [class_id]) for class_id in class_ids[2:302])
    for student in (values, *others):
        sql, args = compiled(students.CREATE_STUDENT, student)
        await connection.execute(sql, *args)
    await connection.execute("ANALYZE classes, students, class_student_association")
    update = {**values, "add_ids": [], "remove_ids": named, **_entries(3)}
    members = {"class_id": named[0], "user_id": teacher}

    assert await _rows_touched_in(connection, students.UPDATE_STUDENT, update, mode) <= 2
    assert (
        await _rows_touched_in(connection, students.DELETE_STUDENT, {**values, **_entries(3)}, mode)
        <= 2
    )
    for statement in (classes.LOCK_MEMBERS, classes.MEMBERS):
        touched = await _rows_touched_in(connection, statement, members, mode, table="students")
        assert touched <= 1, touched


# -- the list queries: every sort, q and ids served by their indexes --------------------

FOUND = ("Öberg", "ÖBERGS", "Åsa Öberg")  # what q=oberg finds among MANY other names


async def _seed_students(
    connection: asyncpg.Connection, user_id: str, count: int
) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    now = datetime.now(UTC)
    names = [f"Last{n}" for n in range(count - len(FOUND))] + list(FOUND)
    await connection.executemany(
        "INSERT INTO students (id, first_name, last_name, legal_full_name, email,"
        " created_by_user_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        [
            (student_id, "Eva", name, f"Eva {name}", f"{student_id}@example.com", user_id, now)
            for student_id, name in zip(ids, names, strict=True)
        ],
    )
    return ids


@pytest.fixture
async def many_rows(connection: asyncpg.Connection) -> dict[str, Any]:
    """A teacher with MANY classes and MANY students (three of each found by q=oberg),
    another with a few, and fresh statistics (VACUUM also empties the GIN pending lists)."""
    teacher = f"teacher-{uuid.uuid4().hex[:8]}"
    class_ids = await _seed_classes(connection, teacher, MANY - len(FOUND))
    course_id = await connection.fetchval("SELECT id FROM courses ORDER BY course_code LIMIT 1")
    found = [uuid.uuid4() for _ in FOUND]
    await connection.executemany(
        "INSERT INTO classes (id, name, course_id, created_by_user_id) VALUES ($1, $2, $3, $4)",
        [(class_id, name, course_id, teacher) for class_id, name in zip(found, FOUND, strict=True)],
    )
    student_ids = await _seed_students(connection, teacher, MANY)
    other = f"other-{uuid.uuid4().hex[:8]}"
    await _seed_classes(connection, other, 50)
    await _seed_students(connection, other, 50)
    await connection.execute("VACUUM ANALYZE classes")
    await connection.execute("VACUUM ANALYZE students")
    return {"teacher": teacher, "classes": class_ids + found, "students": student_ids}


@pytest.mark.parametrize("mode", PLAN_MODES)
@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("table", ["classes", "students"])
async def test_each_sort_of_a_list_reads_its_index_in_order(
    connection: asyncpg.Connection, many_rows: dict[str, Any], table: str, sort: str, mode: str
) -> None:
    plan = await plan_of(
        connection,
        list_statement(table, False, False, sort),
        list_values(many_rows["teacher"]),
        mode,
    )

    page, total = page_and_total(plan)
    (scan,) = scans_of(page, table)
    assert scan.get("Index Name") == SORT_INDEXES[table][sort.removeprefix("-")], scan
    sorts = [node for node in nodes(plan) if "Sort" in node["Node Type"]]
    assert not sorts, f"{table} sorted by {sort} in memory: {sorts}"
    assert scan["Actual Rows"] <= 20, "the page read rows past its own"
    # The total is counted apart (test_query_plans_at_scale.py: from the owner's index
    # entries alone where the teacher is one of many).
    (count,) = scans_of(total, table)
    assert count["Actual Rows"] == MANY, count


@pytest.mark.parametrize("table", ["classes", "students"])
async def test_q_is_served_by_the_trigram_index(
    connection: asyncpg.Connection, many_rows: dict[str, Any], table: str
) -> None:
    # Custom plans only: PostgreSQL keeps planning ``q`` per value (plan_cache_mode = auto)
    # as long as the generic plan, blind to the pattern, is estimated dearer.
    values = list_values(many_rows["teacher"], q_pattern="%oberg%")
    statement = list_statement(table, True, False, "name")

    plan = await plan_of(connection, statement, values, "force_custom_plan")

    for part in page_and_total(plan):
        indexes = {node.get("Index Name") for node in nodes(part)}
        assert SEARCH_INDEXES[table] in indexes, part
        assert rows_touched(part, table) <= 2 * len(FOUND), part


@pytest.mark.parametrize("mode", PLAN_MODES)
@pytest.mark.parametrize("table", ["classes", "students"])
async def test_ids_read_only_the_named_rows(
    connection: asyncpg.Connection, many_rows: dict[str, Any], table: str, mode: str
) -> None:
    named = many_rows[table][:2]
    values = list_values(many_rows["teacher"], ids=named)

    plan = await plan_of(connection, list_statement(table, False, True, "name"), values, mode)

    for part in page_and_total(plan):
        assert rows_touched(part, table) <= len(named), part


@pytest.mark.parametrize("analysed", [False, True], ids=["stale statistics", "analysed"])
@pytest.mark.parametrize("mode", PLAN_MODES)
async def test_an_import_reads_only_the_students_its_emails_name(
    connection: asyncpg.Connection, analysed: bool, mode: str
) -> None:
    """An import finds the teacher's students by e-mail through the owner's unique e-mail
    index, reads and bumps them by primary key, and touches no other student or class."""
    teacher = f"teacher-{uuid.uuid4().hex[:8]}"
    class_id, *_ = await _seed_classes(connection, teacher, MANY)
    student_ids = await _seed_students(connection, teacher, MANY)
    await _seed_students(connection, f"other-{uuid.uuid4().hex[:8]}", 50)
    if analysed:
        await connection.execute("ANALYZE classes, students")
    matched = student_ids[:3]
    emails = [f"{student_id}@example.com" for student_id in matched]
    new_ids = [uuid.uuid4() for _ in range(2)]
    values = {
        "user_id": teacher,
        "emails": emails,
        "student_ids": matched,
        "class_id": class_id,
        "now": datetime.now(UTC),
        "new_ids": new_ids,
        "new_first_names": ["Ny"] * 2,
        "new_last_names": ["Elev"] * 2,
        "new_legal_full_names": ["Ny Elev"] * 2,
        "new_emails": [None] * 2,
        "joining_ids": [*new_ids, *matched],
        "bumped_student_ids": matched,
        "bumped_class_ids": [class_id],
        **_entries(2 * 6),
    }

    touched = {
        "lock": await _rows_touched_in(
            connection, students.LOCK_STUDENTS_BY_EMAIL, values, mode, "students"
        ),
        "read": await _rows_touched_in(
            connection, students.STUDENTS_BY_ID, values, mode, "students"
        ),
        "write": await _rows_touched_in(
            connection, students.IMPORT_STUDENTS, values, mode, "students"
        ),
        "write, classes": await _rows_touched_in(
            connection, students.IMPORT_STUDENTS, values, mode
        ),
    }

    # Three matched students of 2,000: three rows (a write at most twice each: the
    # foreign-key checks of the memberships and the new versions; the new students too).
    # The e-mail lookup needs the table's statistics: on a table never analysed, PostgreSQL
    # estimates one row per owner, and any owner-first index (the e-mail left as a filter)
    # looks as cheap as the unique (owner, e-mail) one; a join on the e-mails, a subquery
    # per e-mail or IN (unnest) were planned alike. Autovacuum analyses a table that has
    # grown by a tenth, so a live table has them.
    if analysed:
        assert touched["lock"] <= len(matched), touched
    assert touched["read"] <= len(matched), touched
    # A whole year group's list (the three and 997 new addresses): the e-mails are joined
    # (a hash or an index probe each), never a filter comparing each of the teacher's
    # students with every e-mail, as `email = ANY(array)` does once the plan is generic.
    year_group = {**values, "emails": [*emails, *(f"new-{n}@example.com" for n in range(997))]}
    plan = await plan_of(connection, students.LOCK_STUDENTS_BY_EMAIL, year_group, mode)
    assert "ANY" not in json.dumps(plan), plan
    assert plan["Actual Rows"] == len(matched), plan
    assert touched["write"] <= 2 * (len(matched) + len(new_ids)), touched
    assert touched["write, classes"] <= 2, touched
