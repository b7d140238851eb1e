"""Flat cost: the SQL statements a request issues do not grow with the data.

Every statement the app's own engine sends is counted (a ``before_cursor_execute``
listener on the engine the Dishka container hands out), once for a small data set and
once for one ten times larger. An N+1 query (one statement per class or per student)
makes the two counts differ.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.relay_off  # its polling would add statements no request sent

SMALL, LARGE = 3, 30
SORTS = ("name", "-name", "created_at", "-created_at", "updated_at", "-updated_at")


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)


@pytest.fixture
async def counter(app: Quart) -> AsyncIterator[StatementCounter]:
    container = app.extensions["QUART_DISHKA"].container
    engine = await container.get(AsyncEngine)
    counting = StatementCounter()
    event.listen(engine.sync_engine, "before_cursor_execute", counting)
    yield counting
    event.remove(engine.sync_engine, "before_cursor_execute", counting)


def _headers(user_id: str) -> dict[str, str]:
    return {"X-User-ID": user_id, "X-Correlation-ID": str(uuid.uuid4())}


async def _create_class(client: Client, user_id: str, name: str) -> str:
    response = await client.post(
        "/v1/classes", json={"name": name, "course_codes": ["ENG5"]}, headers=_headers(user_id)
    )
    assert response.status_code == 201, await response.get_data(as_text=True)
    return str((await response.get_json())["id"])


async def _create_student(client: Client, user_id: str, number: int, class_ids: list[str]) -> str:
    response = await client.post(
        "/v1/classes/students",
        json={
            "person_name": {"first_name": f"First{number}", "last_name": f"Last{number}"},
            "email": f"student{number}@example.com",
            "class_ids": class_ids,
        },
        headers=_headers(user_id),
    )
    assert response.status_code == 201, await response.get_data(as_text=True)
    return str((await response.get_json())["id"])


async def _seed_user(client: Client, size: int) -> tuple[str, list[str]]:
    """A teacher with ``size`` classes and ``size`` students, each student in every class
    of a three-class group and the first class holding all of them."""
    user_id = f"teacher-{uuid.uuid4().hex[:8]}"
    class_ids = [await _create_class(client, user_id, f"Class {n}") for n in range(size)]
    for number in range(size):
        group = {class_ids[0], *class_ids[number % size : number % size + 3]}
        await _create_student(client, user_id, number, sorted(group))
    return user_id, class_ids


async def _count(
    client: Client, counter: StatementCounter, user_id: str, path: str
) -> tuple[int, Any]:
    before = len(counter.statements)
    response = await client.get(path, headers=_headers(user_id))
    assert response.status_code == 200, await response.get_data(as_text=True)
    return len(counter.statements) - before, await response.get_json()


async def test_read_requests_issue_the_same_statements_for_3_and_30_rows(
    client: Client, counter: StatementCounter
) -> None:
    small_user, small_classes = await _seed_user(client, SMALL)
    large_user, large_classes = await _seed_user(client, LARGE)

    cases: dict[str, Callable[[list[str]], str]] = {
        "class list": lambda classes: "/v1/classes?limit=100",
        "class list, first page": lambda classes: "/v1/classes?limit=20",
        "one class": lambda classes: f"/v1/classes/{classes[0]}",
        "roster": lambda classes: f"/v1/classes/{classes[0]}/roster?limit=100",
        "student list": lambda classes: "/v1/classes/students?limit=100",
        "student list of a class": lambda classes: (
            f"/v1/classes/students?class_id={classes[0]}&limit=100"
        ),
        "class list, q": lambda classes: "/v1/classes?q=class&limit=100",
        "class list, ids": lambda classes: f"/v1/classes?ids={','.join(classes[:20])}",
        **{
            f"class list by {sort}": lambda classes, sort=sort: f"/v1/classes?sort={sort}&limit=100"
            for sort in SORTS
        },
        "student list, q": lambda classes: "/v1/classes/students?q=first&limit=100",
        **{
            f"student list by {sort}": lambda classes, sort=sort: (
                f"/v1/classes/students?sort={sort}&limit=100"
            )
            for sort in SORTS
        },
    }
    counts: dict[str, tuple[int, int]] = {}
    for name, path in cases.items():
        small, small_body = await _count(client, counter, small_user, path(small_classes))
        large, large_body = await _count(client, counter, large_user, path(large_classes))
        counts[name] = (small, large)
        assert small > 0, f"{name}: no statement counted; is the listener on the app's engine?"
        if "pagination" in small_body:
            # The large data set really is larger on the page (or fills it).
            assert large_body["pagination"]["returned"] > small_body["pagination"]["returned"]

    grown = {name: pair for name, pair in counts.items() if pair[0] != pair[1]}
    assert not grown, (
        f"statements per request grow with the data ({SMALL} vs {LARGE} rows): {grown}"
    )


async def test_roster_of_30_students_in_many_classes_is_a_fixed_number_of_statements(
    client: Client, counter: StatementCounter
) -> None:
    """Students who are in many classes each (class_ids are aggregated in SQL)."""
    user_id = f"teacher-{uuid.uuid4().hex[:8]}"
    class_ids = [await _create_class(client, user_id, f"Class {n}") for n in range(5)]
    roster_class = class_ids[0]
    counts = []
    for number in range(LARGE):
        await _create_student(client, user_id, number, class_ids)
        if number + 1 in (1, SMALL, LARGE):
            roster, body = await _count(
                client, counter, user_id, f"/v1/classes/{roster_class}/roster?limit=100"
            )
            students, _ = await _count(client, counter, user_id, "/v1/classes/students?limit=100")
            assert len(body["students"]) == number + 1
            counts.append((roster, students))
    assert len(set(counts)) == 1, f"statements at 1, {SMALL} and {LARGE} students: {counts}"


async def _write_count(
    client: Client, counter: StatementCounter, user_id: str, method: str, path: str, body: Any
) -> int:
    before = len(counter.statements)
    extra = {"json": body} if body is not None else {}
    response = await client.open(path, method=method, headers=_headers(user_id), **extra)
    assert response.status_code < 300, await response.get_data(as_text=True)
    return len(counter.statements) - before


async def test_write_requests_issue_a_fixed_number_of_statements(
    client: Client, counter: StatementCounter
) -> None:
    """What each write costs (docs/performance.md): a change of one aggregate reads it and
    writes it if it is still at the version read; a change of several locks and reads what
    it changes; either changes it and writes every outbox row in one statement. A class deleted
    with 3 or 30 members, a student in 3 or 30 classes: the same count."""
    counts: dict[str, set[int]] = {}
    for size in (SMALL, LARGE):
        user_id = f"teacher-{uuid.uuid4().hex[:8]}"
        await _create_class(client, user_id, "warm-up")  # course ids are read once per process

        async def write(
            name: str, method: str, path: str, body: Any = None, user: str = user_id
        ) -> None:
            n = await _write_count(client, counter, user, method, path, body)
            counts.setdefault(name, set()).add(n)

        before = len(counter.statements)
        class_ids = [await _create_class(client, user_id, f"C{n}") for n in range(size)]
        counts.setdefault("create class", set()).add((len(counter.statements) - before) // size)
        students = [await _create_student(client, user_id, n, [class_ids[0]]) for n in range(size)]
        lonely = await _create_student(client, user_id, 999, [])
        everywhere = {
            "person_name": {"first_name": "Eva", "last_name": "Berg"},
            "class_ids": class_ids,
        }
        await write("create student in classes", "POST", "/v1/classes/students", everywhere)
        many = f"/v1/classes/students/{students[0]}"
        await write("student joins classes", "PUT", many, {"add_class_ids": class_ids[1:]})
        await write("rename class", "PUT", f"/v1/classes/{class_ids[1]}", {"name": "renamed"})
        await write(
            "rename class, no change", "PUT", f"/v1/classes/{class_ids[1]}", {"name": "renamed"}
        )
        await write("rename student", "PUT", many, {"person_name": {"last_name": "Lind"}})
        await write("student, no change", "PUT", many, {"person_name": {"last_name": "Lind"}})
        essay = f"{many}/essays/{uuid.uuid4()}"
        await write("link essay", "PUT", essay)
        await write("link essay again", "PUT", essay)
        await write("delete student in classes", "DELETE", many)
        await write("delete student in no class", "DELETE", f"/v1/classes/students/{lonely}")
        await write("delete class with members", "DELETE", f"/v1/classes/{class_ids[0]}")

    assert counts == {
        "create class": {1},
        "create student in classes": {2},  # read the classes; create, if they are as read
        "student joins classes": {3},  # lock and read the classes, then the student; change
        "rename class": {2},  # read, change if still at the version read
        "rename class, no change": {1},
        "rename student": {2},
        "student, no change": {1},
        "link essay": {1},
        "link essay again": {1},
        "delete student in classes": {4},  # read its classes; lock and read them, it; delete
        "delete student in no class": {3},
        "delete class with members": {4},  # lock and read it, then its members; delete
    }


async def test_the_student_and_essay_queries_are_one_statement_each(
    client: Client, counter: StatementCounter
) -> None:
    """A student's classes and essays, an essay's writer and an unlink: one statement,
    however many classes and essays the student has."""
    user_id = f"teacher-{uuid.uuid4().hex[:8]}"
    class_ids = [await _create_class(client, user_id, f"Class {n}") for n in range(LARGE)]
    few = await _create_student(client, user_id, 1, class_ids[:SMALL])
    many = await _create_student(client, user_id, 2, class_ids)
    essays: dict[str, list[str]] = {few: [], many: []}
    for student_id, count in ((few, SMALL), (many, LARGE)):
        for _ in range(count):
            essay_id = str(uuid.uuid4())
            path = f"/v1/classes/students/{student_id}/essays/{essay_id}"
            response = await client.put(path, headers=_headers(user_id))
            assert response.status_code == 201, await response.get_data(as_text=True)
            essays[student_id].append(essay_id)

    counts: dict[str, list[int]] = {}
    for student_id in (few, many):
        for name, path in {
            "classes": f"/v1/classes/students/{student_id}/classes?limit=100",
            "essays": f"/v1/classes/students/{student_id}/essays?limit=100",
            "writer": f"/v1/classes/essays/{essays[student_id][0]}",
        }.items():
            counted, _ = await _count(client, counter, user_id, path)
            counts.setdefault(name, []).append(counted)
        before = len(counter.statements)
        path = f"/v1/classes/students/{student_id}/essays/{essays[student_id][-1]}"
        response = await client.delete(path, headers=_headers(user_id))
        assert response.status_code == 204, await response.get_data(as_text=True)
        counts.setdefault("unlink", []).append(len(counter.statements) - before)

    assert counts == {name: [1, 1] for name in counts}, counts


async def test_an_import_is_the_same_statements_for_3_and_30_rows(
    client: Client, counter: StatementCounter
) -> None:
    """An import locks and reads its class, locks and reads the students its e-mails name,
    then writes every new student, membership, version and outbox row in one statement: as
    many statements for 3 rows as for 30 (half new students, half the teacher's own)."""
    counts: dict[str, set[int]] = {}
    for size in (SMALL, LARGE):
        user_id = f"teacher-{uuid.uuid4().hex[:8]}"
        class_id = await _create_class(client, user_id, "Imported")
        known = [await _create_student(client, user_id, n, []) for n in range(size)]
        rows = [
            {"first_name": f"First{n}", "last_name": f"Last{n}", "email": f"student{n}@example.com"}
            for n in range(size)
        ] + [{"first_name": f"New{n}", "last_name": "Elev"} for n in range(size)]
        path = f"/v1/classes/{class_id}/students/import"
        for name, body in (
            ("dry run", {"students": rows, "dry_run": True}),
            ("import", {"students": rows}),
            ("import again, no change", {"students": rows[:size]}),
        ):
            n = await _write_count(client, counter, user_id, "POST", path, body)
            counts.setdefault(name, set()).add(n)
        response = await client.get(f"/v1/classes/{class_id}", headers=_headers(user_id))
        assert (await response.get_json())["student_count"] == 2 * size == len(known) * 2

    assert counts == {
        "dry run": {3},  # lock and read the class; lock, then read the students its e-mails name
        "import": {4},  # and one write
        "import again, no change": {3},
    }
