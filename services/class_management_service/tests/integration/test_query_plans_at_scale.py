"""The heavy teacher's lists, searches and batches on a platform's statistics.

``make bench ARGS=--scale`` runs the heavy teacher's requests on a platform-sized database
(scripts/bench/platform_data.py: 1,000,000 students and 100,000 classes over 20,000
teachers, plus a teacher with 60 classes and 10,000 students). This test loads the same
generator's data at a twentieth of that size (the heavy teacher holds the same 1 % of the
students, each teacher the same share, a class the same share of the memberships, the rows
of a teacher spread over the table as over years of writes), so that the planner's
statistics (the heavy teacher's frequency among the owners, the owners' number, the names'
and search texts' distributions, the physical order) are the big database's at a size a
test loads in seconds. On it, each list, search and batch statement of the heavy teacher
is planned as the service prepares it and executed:

- each sort of the class and student lists reads its owner-first index in order, with no
  Sort node (the teacher's rows are never sorted in memory);
- ``q`` among the students is found through the trigram index, among the classes without
  reading another teacher's;
- ``ids`` reads the named rows by primary key;
- and no plan reads ``students`` or ``classes`` sequentially.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from scripts.bench.platform_data import HEAVY_TEACHER, PlatformShape, load_platform
from services.class_management_service.implementations.postgres import classes, students
from services.class_management_service.tests.support.query_plans import (
    PLAN_MODES,
    SEARCH_INDEXES,
    SORT_INDEXES,
    SORTS,
    list_statement,
    list_values,
    nodes,
    page_and_total,
    plan_of,
    rows_touched,
    scans_of,
)

# The bench's platform (PlatformShape()) divided by SCALE in every count but the heavy
# teacher's classes: 60 classes of 500 students hold ~21 students each, a class's share of
# the memberships that a class of the big database has (so that, as there, no class is a
# most common value: a roster is estimated at an average class's size).
SCALE = 20
BIG = PlatformShape()
SHAPE = PlatformShape(
    students=BIG.students // SCALE,
    classes=BIG.classes // SCALE,
    teachers=BIG.teachers // SCALE,
    heavy_classes=BIG.heavy_classes,
    heavy_students=BIG.heavy_students // SCALE,
)
# Searches a teacher types: parts of last names, of first names, accents typed or not.
SEARCHES = ("%lindq%", "%oberg%", "%sjö%", "%emma%")
# A pattern in many of the platform's names and e-mails (Ali, Alice, Natalie, ...).
COMMON_SEARCH = "%ali%"
# Rows of other teachers a search may meet: (owner, trigram) pairs whose 32-bit hashes are
# the same as one of the teacher's keys (none in this data; a few would not matter).
COLLISIONS = 3
BATCH = 100  # ids per batch fetch (the API's most)


@pytest.fixture(scope="module")
async def platform_url(database_factory: Any, migrated_template: str) -> AsyncIterator[str]:
    """A migrated database holding SHAPE's rows (loaded once for the module: read only)."""
    name = database_factory.unique_name("cms_platform")
    url = database_factory.create(name, template=migrated_template)
    await load_platform(url, SHAPE)
    yield url
    database_factory.drop(name)


@pytest.fixture
async def connection(platform_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(platform_url)
    yield connection
    await connection.close()


@pytest.fixture
async def heavy_ids(connection: asyncpg.Connection) -> dict[str, list[uuid.UUID]]:
    """The heavy teacher's class and student ids."""
    return {
        table: [
            row[0]
            for row in await connection.fetch(
                f"SELECT id FROM {table} WHERE created_by_user_id = $1 ORDER BY id", HEAVY_TEACHER
            )
        ]
        for table in ("classes", "students")
    }


def _index_entries(plan: dict[str, Any], index: str) -> int:
    """Entries the plan's scans of ``index`` returned, over all their loops."""
    return sum(
        node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
        for node in nodes(plan)
        if node.get("Index Name") == index
    )


def _sequential_scans(plan: dict[str, Any]) -> list[str]:
    return [
        node["Relation Name"]
        for node in nodes(plan)
        if node["Node Type"] == "Seq Scan" and node["Relation Name"] in ("classes", "students")
    ]


async def test_the_data_has_the_big_databases_proportions(
    connection: asyncpg.Connection,
) -> None:
    counts = await connection.fetchrow(
        "SELECT (SELECT count(*) FROM students) AS students,"
        " (SELECT count(*) FROM students WHERE created_by_user_id = $1) AS heavy_students,"
        " (SELECT count(*) FROM classes) AS classes,"
        " (SELECT count(*) FROM classes WHERE created_by_user_id = $1) AS heavy_classes,"
        " (SELECT count(DISTINCT created_by_user_id) FROM students) AS teachers",
        HEAVY_TEACHER,
    )
    heavy_share = counts["heavy_students"] / counts["students"]
    big_share = BIG.heavy_students / (BIG.students + BIG.heavy_students)

    assert counts["heavy_students"] == SHAPE.heavy_students
    assert counts["heavy_classes"] == SHAPE.heavy_classes
    assert counts["teachers"] == SHAPE.teachers + 1
    assert abs(heavy_share - big_share) < 0.001 * big_share, (heavy_share, big_share)
    # The planner knows the heavy teacher as the big database's statistics do: a most
    # common owner, at its share of the rows (ANALYZE samples 30,000 rows either way).
    stats = await connection.fetchrow(
        "SELECT most_common_vals::text::text[] AS owners, most_common_freqs AS freqs"
        " FROM pg_stats WHERE tablename = 'students' AND attname = 'created_by_user_id'"
    )
    frequency = dict(zip(stats["owners"], stats["freqs"], strict=True))[HEAVY_TEACHER]
    assert abs(frequency - big_share) < 0.5 * big_share, (frequency, big_share)


@pytest.mark.parametrize("mode", PLAN_MODES)
@pytest.mark.parametrize("sort", SORTS)
@pytest.mark.parametrize("table", ["classes", "students"])
async def test_each_sort_of_the_heavy_teachers_list_reads_its_index_in_order(
    connection: asyncpg.Connection,
    heavy_ids: dict[str, list[uuid.UUID]],
    table: str,
    sort: str,
    mode: str,
) -> None:
    plan = await plan_of(
        connection, list_statement(table, False, False, sort), list_values(HEAVY_TEACHER), mode
    )

    page, total = page_and_total(plan)
    (scan,) = scans_of(page, table)
    assert scan.get("Index Name") == SORT_INDEXES[table][sort.removeprefix("-")], scan
    assert rows_touched(page, table) <= 20, "the page read rows past its own"
    sorts = [node for node in nodes(plan) if "Sort" in node["Node Type"]]
    assert not sorts, f"{table} sorted by {sort} in memory: {sorts}"
    assert not _sequential_scans(plan), plan
    # The total is counted apart from the page, through the owner's index (from its entries
    # alone, an index-only scan, where the visibility map says the pages are all visible,
    # as after the bench's load), and reads no row of another teacher.
    assert not _sequential_scans(total), total
    assert rows_touched(total, table) == len(heavy_ids[table]), total


@pytest.mark.parametrize("mode", PLAN_MODES)
@pytest.mark.parametrize("q_pattern", [*SEARCHES, COMMON_SEARCH])
async def test_the_heavy_teachers_student_search_reads_only_their_search_keys(
    connection: asyncpg.Connection, q_pattern: str, mode: str
) -> None:
    """The matches are found by the teacher's (owner, trigram) keys alone: neither another
    teacher's trigrams nor the teacher's 10,000 owner entries, whatever the plan."""
    values = list_values(HEAVY_TEACHER, q_pattern=q_pattern)
    # The teacher's students with every trigram of the pattern (in any order): the keys'
    # candidates, found here without the keys' index.
    candidates = await connection.fetchval(
        "SELECT count(*) FILTER (WHERE owner_search_keys(created_by_user_id, search_text)"
        " @> owner_search_keys(created_by_user_id, search_folded($2))) FROM"
        " (SELECT created_by_user_id,"
        " student_search_text(first_name, last_name, legal_full_name, email) AS search_text"
        " FROM students WHERE created_by_user_id = $1) AS teachers",
        HEAVY_TEACHER,
        values["q"],
    )

    plan = await plan_of(connection, list_statement("students", True, False, "name"), values, mode)

    for part in page_and_total(plan):
        indexes = {node.get("Index Name") or "" for node in nodes(part)}
        of_students = {name for name in indexes if name.startswith(("ix_students_", "pk_students"))}
        assert of_students == {SEARCH_INDEXES["students"]}, part
        # Beyond the candidates, only a rare key whose hash another owner's trigram shares.
        assert _index_entries(part, SEARCH_INDEXES["students"]) <= candidates + COLLISIONS, part
        assert rows_touched(part, "students") <= candidates + COLLISIONS, part
    assert not _sequential_scans(plan), plan


@pytest.mark.parametrize("mode", PLAN_MODES)
async def test_a_search_shorter_than_a_trigram_reads_only_the_teachers_students(
    connection: asyncpg.Connection, heavy_ids: dict[str, list[uuid.UUID]], mode: str
) -> None:
    values = list_values(HEAVY_TEACHER, q_pattern="%li%")
    page, _count = students.student_list(False, True, False, False, "name", False)

    plan = await plan_of(connection, page, values, mode)

    assert not _sequential_scans(plan), plan
    for part in page_and_total(plan):
        assert rows_touched(part, "students") <= len(heavy_ids["students"]), part


@pytest.mark.parametrize("q_pattern", SEARCHES)
async def test_the_heavy_teachers_class_search_reads_only_their_classes(
    connection: asyncpg.Connection, heavy_ids: dict[str, list[uuid.UUID]], q_pattern: str
) -> None:
    """A teacher's classes are few even for the heavy teacher (60 of the platform's 100,000):
    reading them by owner and matching each is as good as the trigram index, which the
    planner may take when the pattern is rare on the whole platform (with the owner index:
    a BitmapAnd); either way, no class of another teacher is read."""
    values = list_values(HEAVY_TEACHER, q_pattern=q_pattern)

    plan = await plan_of(
        connection, list_statement("classes", True, False, "name"), values, "force_custom_plan"
    )

    assert not _sequential_scans(plan), plan
    assert rows_touched(plan, "classes") <= len(heavy_ids["classes"]), plan


@pytest.mark.parametrize("mode", PLAN_MODES)
@pytest.mark.parametrize("table", ["classes", "students"])
async def test_the_heavy_teachers_batch_reads_only_the_named_rows(
    connection: asyncpg.Connection,
    heavy_ids: dict[str, list[uuid.UUID]],
    table: str,
    mode: str,
) -> None:
    named = heavy_ids[table][:BATCH]
    values = list_values(HEAVY_TEACHER, ids=named, limit=BATCH)

    plan = await plan_of(connection, list_statement(table, False, True, "name"), values, mode)

    for part in page_and_total(plan):
        assert rows_touched(part, table) <= len(named), part
    if table == "students":
        # Not even the owner's index entries (the teacher's 10,000 in the big database): the
        # named rows by primary key alone.
        indexes = {node.get("Index Name") or "" for node in nodes(plan)}
        assert "pk_students" in indexes, plan
        assert not {name for name in indexes if name.startswith("ix_students_")}, plan
    assert not _sequential_scans(plan), plan


@pytest.mark.parametrize("mode", PLAN_MODES)
async def test_the_heavy_teachers_roster_reads_only_the_class_members(
    connection: asyncpg.Connection, heavy_ids: dict[str, list[uuid.UUID]], mode: str
) -> None:
    class_id = heavy_ids["classes"][0]
    members = await connection.fetchval(
        "SELECT count(*) FROM class_student_association WHERE class_id = $1", class_id
    )
    values = {"class_id": class_id, "user_id": HEAVY_TEACHER, "limit": 50, "offset": 0}

    plan = await plan_of(connection, classes.ROSTER, values, mode)

    page, total = page_and_total(plan)
    assert rows_touched(page, "students") <= members, plan
    # The total counts the class's entries of the membership's primary key.
    assert not scans_of(total, "students"), total
    assert rows_touched(total, "class_student_association") == members, total
    assert not _sequential_scans(plan), plan
