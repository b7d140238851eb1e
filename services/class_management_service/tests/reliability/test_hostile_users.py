"""Ownership: user B against everything of user A's, route by route, over real HTTP, in
both AUTH_MODEs (``served_in_mode``: in jwt mode each user is proven by a token alone).

The one ownership suite (it took in tests/integration/test_api_ownership.py). Every route of
the API appears in the table (a test checks that against the OpenAPI document). B can
neither read, list, change, delete nor enrol into anything of A's: each attempt is a 404
with the code a missing id gets, which does not reveal whether A's resource exists (no 412
that would confirm it and leak its version), and after each attempt A's data is exactly as
it was, both as A sees it over the API and row by row in the database; a refused attempt
changes nothing B sees either, and writes no event.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.tests.reliability.conftest import (
    ServedCms,
    ServedInMode,
)
from services.class_management_service.tests.support.api import (
    create_class,
    create_student,
    get_ok,
    link_essay,
    problem_of,
    send,
    user_headers,
)

pytestmark = pytest.mark.timeout(120)

A = f"teacher-a-{uuid.uuid4().hex[:8]}"
B = f"teacher-b-{uuid.uuid4().hex[:8]}"
CLASSES = "/v1/classes"
STUDENTS = "/v1/classes/students"


@dataclass(frozen=True)
class World:
    a_class: str
    a_other_class: str
    a_student: str
    a_essay: str
    a_email: str
    a_key: str
    b_class: str
    b_student: str

    def ids_of_a(self) -> set[str]:
        return {self.a_class, self.a_other_class, self.a_student, self.a_essay}


@dataclass(frozen=True)
class Attack:
    id: str
    method: str
    path: str  # {a_class} etc. are filled from World; {new} is a fresh UUID
    status: int = 404
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    as_user: str = B
    # For 2xx responses (lists): nothing of A's may appear in them.
    lists: bool = False
    code: str | None = None  # the problem's code, as for an id that does not exist


CLASS_404 = {"code": "CLASS_NOT_FOUND"}
STUDENT_404 = {"code": "STUDENT_NOT_FOUND"}
ESSAY_LINK_404 = {"code": "ESSAY_LINK_NOT_FOUND"}


def _attacks() -> list[Attack]:
    rename = {"name": "pwned"}
    person = {"person_name": {"first_name": "P", "last_name": "Wned"}}
    return [
        # classes
        Attack("read class", "GET", CLASSES + "/{a_class}", **CLASS_404),
        Attack("rename class", "PUT", CLASSES + "/{a_class}", body=rename, **CLASS_404),
        Attack(
            "rename class, right If-Match",
            "PUT",
            CLASSES + "/{a_class}",
            body=rename,
            headers={"If-Match": '"1"'},
        ),
        Attack(
            "rename class, wrong If-Match",
            "PUT",
            CLASSES + "/{a_class}",
            body=rename,
            headers={"If-Match": '"7"'},
        ),
        Attack("change course", "PUT", CLASSES + "/{a_class}", body={"course_codes": ["SV1"]}),
        Attack(
            "change course, wrong If-Match",
            "PUT",
            CLASSES + "/{a_class}",
            body={"course_codes": ["SV1"]},
            headers={"If-Match": '"7"'},
            **CLASS_404,
        ),
        Attack("empty update of class", "PUT", CLASSES + "/{a_class}", body={}),
        Attack("delete class", "DELETE", CLASSES + "/{a_class}", **CLASS_404),
        Attack(
            "delete class, right If-Match",
            "DELETE",
            CLASSES + "/{a_class}",
            headers={"If-Match": '"1"'},
            **CLASS_404,
        ),
        Attack(
            "delete class, wrong If-Match",
            "DELETE",
            CLASSES + "/{a_class}",
            headers={"If-Match": '"7"'},
        ),
        Attack(
            "archive class", "PUT", CLASSES + "/{a_class}", body={"status": "archived"}, **CLASS_404
        ),
        Attack(
            "import students into A's class",
            "POST",
            CLASSES + "/{a_class}/students/import",
            body={"students": [{"first_name": "P", "last_name": "Wned", "email": "{a_email}"}]},
            **CLASS_404,
        ),
        Attack(
            "dry-run import into A's class",
            "POST",
            CLASSES + "/{a_class}/students/import?dry_run=true",
            body={"students": [{"first_name": "P", "last_name": "Wned"}]},
            **CLASS_404,
        ),
        Attack(
            "list archived classes",
            "GET",
            CLASSES + "?status=archived",
            status=200,
            lists=True,
        ),
        Attack("read roster", "GET", CLASSES + "/{a_class}/roster", **CLASS_404),
        Attack("read roster page 2", "GET", CLASSES + "/{a_class}/roster?limit=1&offset=1"),
        Attack("list classes", "GET", CLASSES, status=200, lists=True),
        Attack(
            "list classes by course", "GET", CLASSES + "?course_code=ENG5", status=200, lists=True
        ),
        Attack(
            "list classes changed since",
            "GET",
            CLASSES + "?updated_since=2000-01-01T00:00:00Z",
            status=200,
            lists=True,
        ),
        # students
        Attack("list students of A's class", "GET", STUDENTS + "?class_id={a_class}", **CLASS_404),
        Attack("list students", "GET", STUDENTS, status=200, lists=True),
        Attack(
            "list students of own class",
            "GET",
            STUDENTS + "?class_id={b_class}",
            status=200,
            lists=True,
        ),
        Attack("read student", "GET", STUDENTS + "/{a_student}", **STUDENT_404),
        Attack("rename student", "PUT", STUDENTS + "/{a_student}", body=person, **STUDENT_404),
        Attack(
            "rename student, right If-Match",
            "PUT",
            STUDENTS + "/{a_student}",
            body=person,
            headers={"If-Match": '"1"'},
        ),
        Attack(
            "change student email",
            "PUT",
            STUDENTS + "/{a_student}",
            body={"email": "b@evil.example.org"},
        ),
        Attack(
            "change student email, wrong If-Match",
            "PUT",
            STUDENTS + "/{a_student}",
            body={"email": "x@example.com"},
            headers={"If-Match": '"9"'},
            **STUDENT_404,
        ),
        Attack(
            "move A's student out of A's class",
            "PUT",
            STUDENTS + "/{a_student}",
            body={"remove_class_ids": ["{a_class}"]},
        ),
        Attack(
            "move A's student into B's class",
            "PUT",
            STUDENTS + "/{a_student}",
            body={"add_class_ids": ["{b_class}"]},
            **STUDENT_404,
        ),
        Attack("delete student", "DELETE", STUDENTS + "/{a_student}", **STUDENT_404),
        Attack(
            "delete student, right If-Match",
            "DELETE",
            STUDENTS + "/{a_student}",
            headers={"If-Match": '"1"'},
        ),
        # enrolment through class_ids, add_class_ids, remove_class_ids
        Attack(
            "create student in A's class",
            "POST",
            STUDENTS,
            body={**person, "class_ids": ["{a_class}"]},
            **CLASS_404,
        ),
        Attack(
            "create student in own and A's class",
            "POST",
            STUDENTS,
            body={**person, "class_ids": ["{b_class}", "{a_class}"]},
            **CLASS_404,
        ),
        Attack(
            "enrol own student into A's class",
            "PUT",
            STUDENTS + "/{b_student}",
            body={"add_class_ids": ["{a_class}"]},
            **CLASS_404,
        ),
        Attack(
            "unenrol own student from A's class",
            "PUT",
            STUDENTS + "/{b_student}",
            body={"remove_class_ids": ["{a_class}"]},
        ),
        Attack(
            "unenrol own student from A's class and change email",
            "PUT",
            STUDENTS + "/{b_student}",
            body={"remove_class_ids": ["{a_class}"], "email": "b2@example.com"},
            **CLASS_404,
        ),
        Attack(
            "move own student from A's class to own",
            "PUT",
            STUDENTS + "/{b_student}",
            body={"add_class_ids": ["{b_class}"], "remove_class_ids": ["{a_class}"]},
        ),
        Attack(
            "enrol own student and rename",
            "PUT",
            STUDENTS + "/{b_student}",
            body={**person, "add_class_ids": ["{a_other_class}"]},
        ),
        # essays
        Attack("list A's student's essays", "GET", STUDENTS + "/{a_student}/essays", **STUDENT_404),
        Attack(
            "link new essay to A's student",
            "PUT",
            STUDENTS + "/{a_student}/essays/{new}",
            **STUDENT_404,
        ),
        Attack(
            "link A's essay to A's student",
            "PUT",
            STUDENTS + "/{a_student}/essays/{a_essay}",
            **STUDENT_404,
        ),
        # The essay id is global: linking A's essay to B's own student is a conflict. It says
        # that the essay is taken (nothing else): B cannot learn whose it is or move it.
        Attack(
            "link A's essay to own student",
            "PUT",
            STUDENTS + "/{b_student}/essays/{a_essay}",
            status=409,
        ),
        Attack(
            "unlink A's essay from A's student",
            "DELETE",
            STUDENTS + "/{a_student}/essays/{a_essay}",
            **ESSAY_LINK_404,
        ),
        Attack(
            "unlink A's essay from own student",
            "DELETE",
            STUDENTS + "/{b_student}/essays/{a_essay}",
            **ESSAY_LINK_404,
        ),
        Attack("who wrote A's essay", "GET", CLASSES + "/essays/{a_essay}", **ESSAY_LINK_404),
        Attack(
            "list A's student's classes", "GET", STUDENTS + "/{a_student}/classes", **STUDENT_404
        ),
        # batch, search and sort: nothing of A's, whatever B names or looks for
        Attack(
            "list classes by A's ids",
            "GET",
            CLASSES + "?ids={a_class},{a_other_class},{b_class}&sort=name",
            status=200,
            lists=True,
        ),
        Attack("search classes", "GET", CLASSES + "?q=9&sort=-updated_at", status=200, lists=True),
        Attack(
            "list students by A's ids",
            "GET",
            STUDENTS + "?ids={a_student},{b_student}",
            status=200,
            lists=True,
        ),
        Attack("search students", "GET", STUDENTS + "?q=ada&sort=-name", status=200, lists=True),
        # creating: A's Idempotency-Key is B's own key for B (a new class, not A's replayed)
        Attack(
            "create class with A's Idempotency-Key",
            "POST",
            CLASSES,
            status=201,
            body={"name": "A's keyed", "course_codes": ["ENG5"]},
            headers={"Idempotency-Key": "{a_key}"},
            lists=True,
        ),
        # identity spelling: another case is another user; so is SQL in the header
        Attack("A's id in upper case", "GET", CLASSES + "/{a_class}", as_user=A.upper()),
        Attack("SQL in X-User-ID", "GET", CLASSES + "/{a_class}", as_user="' OR '1'='1"),
        Attack(
            "SQL in X-User-ID lists", "GET", CLASSES, status=200, as_user="' OR '1'='1", lists=True
        ),
        Attack("LIKE wildcard X-User-ID", "GET", STUDENTS, status=200, as_user="%", lists=True),
        Attack("A's id as a prefix", "GET", CLASSES + "/{a_class}", as_user=A[:-1]),
    ]


ATTACKS = _attacks()


def _fill(value: Any, world: World) -> Any:
    if isinstance(value, str):
        return value.format(**world.__dict__, new=uuid.uuid4())
    if isinstance(value, list):
        return [_fill(item, world) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, world) for key, item in value.items()}
    return value


@pytest.fixture(scope="module")
async def client(served_in_mode: ServedInMode) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=served_in_mode.cms.base_url, auth=served_in_mode.auth, timeout=15
    ) as client:
        yield client


@pytest.fixture(scope="module")
async def world(client: httpx.AsyncClient) -> World:
    a_class = await create_class(client, A, name="A's 9A")
    a_other = await create_class(client, A, name="A's 9B", course_code="SV1")
    a_email = f"ada-{uuid.uuid4().hex[:6]}@example.org"
    a_student = await create_student(client, A, email=a_email, class_ids=[a_class["id"]])
    await create_student(client, A, first_name="Bo", last_name="Second", class_ids=[a_class["id"]])
    a_essay = await link_essay(client, A, a_student["id"])
    a_key = f"a-key-{uuid.uuid4().hex[:6]}"
    keyed = await client.post(
        CLASSES,
        json={"name": "A's keyed", "course_codes": ["ENG5"]},
        headers=user_headers(A, **{"Idempotency-Key": a_key}),
    )
    assert keyed.status_code == 201, keyed.text
    b_class = await create_class(client, B, name="B's 9A")
    b_student = await create_student(client, B, first_name="Eve", class_ids=[b_class["id"]])
    return World(
        a_class["id"],
        a_other["id"],
        a_student["id"],
        a_essay,
        a_email,
        a_key,
        b_class["id"],
        b_student["id"],
    )


async def as_seen_by(
    client: httpx.AsyncClient, user_id: str, class_ids: list[str], student_id: str
) -> list[Any]:
    """Everything ``user_id`` can read of their classes and student, and their lists."""
    headers = user_headers(user_id)
    pages = {"limit": 100}
    return [
        await get_ok(client, CLASSES, headers, pages),
        await get_ok(client, STUDENTS, headers, pages),
        *[await get_ok(client, f"{CLASSES}/{class_id}", headers) for class_id in class_ids],
        await get_ok(client, f"{CLASSES}/{class_ids[0]}/roster", headers),
        await get_ok(client, f"{STUDENTS}/{student_id}", headers),
        await get_ok(client, f"{STUDENTS}/{student_id}/essays", headers),
        await get_ok(client, f"{STUDENTS}/{student_id}/classes", headers),
    ]


async def a_as_seen_over_the_api(client: httpx.AsyncClient, world: World) -> list[Any]:
    return await as_seen_by(client, A, [world.a_class, world.a_other_class], world.a_student)


async def b_as_seen_over_the_api(client: httpx.AsyncClient, world: World) -> list[Any]:
    return await as_seen_by(client, B, [world.b_class], world.b_student)


A_ROWS = """
SELECT md5(coalesce((SELECT string_agg(c::text, '|' ORDER BY c.id) FROM classes c
                     WHERE c.created_by_user_id = :a), '')
        || coalesce((SELECT string_agg(s::text, '|' ORDER BY s.id) FROM students s
                     WHERE s.created_by_user_id = :a), '')
        || coalesce((SELECT string_agg(m::text, '|' ORDER BY m.class_id, m.student_id)
                     FROM class_student_association m JOIN classes c ON c.id = m.class_id
                     WHERE c.created_by_user_id = :a), '')
        || coalesce((SELECT string_agg(e::text, '|' ORDER BY e.id)
                     FROM essay_student_associations e JOIN students s ON s.id = e.student_id
                     WHERE s.created_by_user_id = :a), ''))
"""
# Every event ever written advanced the outbox's id sequence (the relay deletes a row once
# it is published, so the rows themselves are no witness).
EVENTS_WRITTEN = "SELECT last_value || ':' || is_called FROM event_outbox_id_seq"


async def a_rows(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        return str(await connection.scalar(text(A_ROWS), {"a": A}))


async def events_written(engine: AsyncEngine) -> str:
    async with engine.connect() as connection:
        return str(await connection.scalar(text(EVENTS_WRITTEN)))


@pytest.mark.parametrize("attack", ATTACKS, ids=[attack.id for attack in ATTACKS])
async def test_user_b_cannot_touch_anything_of_user_a(
    attack: Attack, world: World, client: httpx.AsyncClient, served_engine: Any
) -> None:
    seen_before = await a_as_seen_over_the_api(client, world)
    b_seen_before = await b_as_seen_over_the_api(client, world)
    rows_before = await a_rows(served_engine)
    events_before = await events_written(served_engine)

    response = await client.request(
        attack.method,
        _fill(attack.path, world),
        json=_fill(attack.body, world),
        headers={**user_headers(attack.as_user), **_fill(attack.headers, world)},
    )

    if attack.status >= 400:
        body = await problem_of(response, attack.status, attack.code)
        # The problem names nothing of A's beyond what B sent.
        sent = _fill(attack.path, world) + json.dumps(_fill(attack.body, world))
        for own_id in world.ids_of_a() | {world.a_email, A}:
            assert own_id not in body["detail"] or own_id in sent, body
    else:
        assert response.status_code == attack.status, response.text
    if attack.lists:  # a 2xx body: nothing of A's in it
        assert "Idempotent-Replayed" not in response.headers
        assert not (world.ids_of_a() & set(re.findall(r"[0-9a-f-]{36}", response.text)))
        assert A not in response.text and world.a_email not in response.text

    assert await a_as_seen_over_the_api(client, world) == seen_before
    assert await a_rows(served_engine) == rows_before
    if attack.status >= 400:  # a refused attack changes nothing of B's and writes no event
        assert await b_as_seen_over_the_api(client, world) == b_seen_before
        assert await events_written(served_engine) == events_before


async def test_b_may_use_an_email_of_a_s_students_without_learning_of_it(
    world: World, client: httpx.AsyncClient, served_engine: Any
) -> None:
    """Emails are unique per teacher: no "already exists" oracle for another teacher's."""
    seen_before = await a_as_seen_over_the_api(client, world)
    rows_before = await a_rows(served_engine)
    await create_student(client, B, first_name="Same", last_name="Mail", email=world.a_email)
    assert await a_as_seen_over_the_api(client, world) == seen_before
    assert await a_rows(served_engine) == rows_before


def test_the_table_covers_every_route(served_cms: ServedCms) -> None:
    document = httpx.get(served_cms.base_url + "/openapi.json", timeout=10).json()
    routes = {
        (method.upper(), re.sub(r"/$", "", path) or "/")
        for path, item in document["paths"].items()
        if path.startswith("/v1/")
        for method in item
    }
    attacked = {
        (
            attack.method,
            re.sub(r"\{[a-z_]+\}", "{}", attack.path.split("?")[0]),
        )
        for attack in ATTACKS
    }
    routes = {(method, re.sub(r"\{[a-z_]+\}", "{}", path)) for method, path in routes}
    assert routes <= attacked, routes - attacked


async def test_idempotency_keys_cannot_collide_across_users(
    client: httpx.AsyncClient, served_engine: Any
) -> None:
    attacker = f"mallory-{uuid.uuid4().hex[:8]}"
    victim = f"{attacker}:shared"  # any user whose id extends another's after a colon
    body = {"name": "victim's class", "course_codes": ["ENG5"]}
    first = await client.post(
        CLASSES, json=body, headers=user_headers(victim, **{"Idempotency-Key": "k"})
    )
    assert first.status_code == 201
    stolen = await client.post(
        CLASSES, json=body, headers=user_headers(attacker, **{"Idempotency-Key": "shared:k"})
    )
    assert stolen.status_code == 201, stolen.text
    assert stolen.json()["id"] != first.json()["id"], "the attacker got the victim's class"
    assert "Idempotent-Replayed" not in stolen.headers


async def test_a_missing_id_and_another_users_id_get_the_same_answer(
    world: World, client: httpx.AsyncClient
) -> None:
    theirs = await send(client, "GET", f"{CLASSES}/{world.a_class}", user_headers(B))
    missing = await send(client, "GET", f"{CLASSES}/{uuid.uuid4()}", user_headers(B))

    their_problem = await problem_of(theirs, 404, "CLASS_NOT_FOUND")
    missing_problem = await problem_of(missing, 404, "CLASS_NOT_FOUND")
    for key in ("type", "title", "status", "code"):
        assert their_problem[key] == missing_problem[key]


async def test_lists_show_only_the_callers_own_data(client: httpx.AsyncClient) -> None:
    a, b = user_headers(), user_headers()
    a_class = await create_class(client, a, name="A's class")
    a_student = await create_student(client, a, "Alice", "Anders", class_ids=[a_class["id"]])
    b_class = await create_class(client, b, name="B's class")
    b_student = await create_student(client, b, "Bob", "Berg", class_ids=[b_class["id"]])
    await create_class(client, a, name="A's second class", course_code="SV1")

    a_classes = await get_ok(client, CLASSES, a)
    b_classes = await get_ok(client, CLASSES, b)
    b_filtered = await get_ok(client, CLASSES, b, {"course_code": "SV1"})
    a_students = await get_ok(client, STUDENTS, a)
    b_students = await get_ok(client, STUDENTS, b)
    stranger = user_headers()

    assert a_classes["pagination"]["total"] == 2
    assert b_class["id"] not in {c["id"] for c in a_classes["classes"]}
    assert [c["id"] for c in b_classes["classes"]] == [b_class["id"]]
    assert b_classes["pagination"]["total"] == 1
    assert b_filtered["classes"] == [] and b_filtered["pagination"]["total"] == 0
    assert [s["id"] for s in a_students["students"]] == [a_student["id"]]
    assert [s["id"] for s in b_students["students"]] == [b_student["id"]]
    assert (await get_ok(client, CLASSES, stranger))["pagination"]["total"] == 0
    assert (await get_ok(client, STUDENTS, stranger))["pagination"]["total"] == 0


async def test_user_ids_are_compared_exactly(client: httpx.AsyncClient) -> None:
    owner = user_headers(f"Teacher-Case-{uuid.uuid4().hex[:6]}")
    lookalike = user_headers(owner["X-User-ID"].lower())
    created = await create_class(client, owner)

    response = await send(client, "GET", f"{CLASSES}/{created['id']}", lookalike)

    await problem_of(response, 404, "CLASS_NOT_FOUND")
    assert (await get_ok(client, f"{CLASSES}/{created['id']}", owner)) == created
