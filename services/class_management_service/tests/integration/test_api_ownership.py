"""Ownership isolation: a teacher's classes and students do not exist for anyone else.

User A owns a class with a student (with an essay); user B owns a class and a student of
their own. Every route B could use to reach A's data answers 404, exactly as for an id that
does not exist (never 403 or 412, which would reveal that it exists), and neither A's nor B's
data changes, nor does any event get written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.tests.support.api import (
    create_class,
    create_student,
    get_ok,
    link_essay,
    problem_of,
    send,
    user_headers,
)
from services.class_management_service.tests.support.database import (
    outbox_count,
)

pytestmark = pytest.mark.relay_off  # counts the outbox rows requests wrote

if TYPE_CHECKING:
    from quart.typing import TestClientProtocol

Ids = dict[str, str]


@dataclass(frozen=True)
class Case:
    """B's request: ``path`` and ``body`` are filled in from the ids of both users."""

    method: str
    path: str
    code: str
    body: Callable[[Ids], Any] | None = None
    query: Callable[[Ids], dict[str, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


CASES = [
    pytest.param(Case("GET", "/v1/classes/{a_class}", "CLASS_NOT_FOUND"), id="get-class"),
    pytest.param(
        Case("PUT", "/v1/classes/{a_class}", "CLASS_NOT_FOUND", lambda ids: {"name": "mine now"}),
        id="update-class",
    ),
    pytest.param(
        Case(
            "PUT",
            "/v1/classes/{a_class}",
            "CLASS_NOT_FOUND",
            lambda ids: {"course_codes": ["SV1"]},
            headers={"If-Match": '"7"'},
        ),
        id="update-class-stale-if-match",
    ),
    pytest.param(Case("DELETE", "/v1/classes/{a_class}", "CLASS_NOT_FOUND"), id="delete-class"),
    pytest.param(
        Case("DELETE", "/v1/classes/{a_class}", "CLASS_NOT_FOUND", headers={"If-Match": '"1"'}),
        id="delete-class-if-match",
    ),
    pytest.param(Case("GET", "/v1/classes/{a_class}/roster", "CLASS_NOT_FOUND"), id="roster"),
    pytest.param(
        Case(
            "GET",
            "/v1/classes/students",
            "CLASS_NOT_FOUND",
            query=lambda ids: {"class_id": ids["a_class"]},
        ),
        id="list-students-of-class",
    ),
    pytest.param(
        Case("GET", "/v1/classes/students/{a_student}", "STUDENT_NOT_FOUND"), id="get-student"
    ),
    pytest.param(
        Case(
            "PUT",
            "/v1/classes/students/{a_student}",
            "STUDENT_NOT_FOUND",
            lambda ids: {"person_name": {"first_name": "Mal", "last_name": "Lory"}},
        ),
        id="update-student",
    ),
    pytest.param(
        Case(
            "PUT",
            "/v1/classes/students/{a_student}",
            "STUDENT_NOT_FOUND",
            lambda ids: {"add_class_ids": [ids["b_class"]]},
        ),
        id="enrol-student-in-own-class",
    ),
    pytest.param(
        Case(
            "PUT",
            "/v1/classes/students/{a_student}",
            "STUDENT_NOT_FOUND",
            lambda ids: {"email": "x@example.com"},
            headers={"If-Match": '"9"'},
        ),
        id="update-student-stale-if-match",
    ),
    pytest.param(
        Case("DELETE", "/v1/classes/students/{a_student}", "STUDENT_NOT_FOUND"),
        id="delete-student",
    ),
    pytest.param(
        Case(
            "PUT",
            "/v1/classes/students/{a_student}/essays/{new_essay}",
            "STUDENT_NOT_FOUND",
        ),
        id="link-new-essay",
    ),
    pytest.param(
        Case("PUT", "/v1/classes/students/{a_student}/essays/{a_essay}", "STUDENT_NOT_FOUND"),
        id="link-existing-essay",
    ),
    pytest.param(
        Case("GET", "/v1/classes/students/{a_student}/essays", "STUDENT_NOT_FOUND"),
        id="list-essays",
    ),
    pytest.param(
        Case(
            "POST",
            "/v1/classes/students",
            "CLASS_NOT_FOUND",
            lambda ids: {
                "person_name": {"first_name": "New", "last_name": "Kid"},
                "class_ids": [ids["a_class"]],
            },
        ),
        id="create-student-in-class",
    ),
    pytest.param(
        Case(
            "POST",
            "/v1/classes/students",
            "CLASS_NOT_FOUND",
            lambda ids: {
                "person_name": {"first_name": "New", "last_name": "Kid"},
                "class_ids": [ids["b_class"], ids["a_class"]],
            },
        ),
        id="create-student-in-own-and-class",
    ),
    pytest.param(
        Case(
            "PUT",
            "/v1/classes/students/{b_student}",
            "CLASS_NOT_FOUND",
            lambda ids: {"add_class_ids": [ids["a_class"]]},
        ),
        id="add-own-student-to-class",
    ),
    pytest.param(
        Case(
            "PUT",
            "/v1/classes/students/{b_student}",
            "CLASS_NOT_FOUND",
            lambda ids: {"remove_class_ids": [ids["a_class"]], "email": "b2@example.com"},
        ),
        id="remove-own-student-from-class",
    ),
]


async def _world(client: TestClientProtocol, a: dict[str, str], b: dict[str, str]) -> Ids:
    a_class = await create_class(client, a, name="A's class")
    a_student = await create_student(
        client, a, "Alice", "Anders", "alice@example.com", [a_class["id"]]
    )
    a_essay = await link_essay(client, a, a_student["id"])
    b_class = await create_class(client, b, name="B's class")
    b_student = await create_student(client, b, "Bob", "Berg", "bob@example.com", [b_class["id"]])
    return {
        "a_class": a_class["id"],
        "a_student": a_student["id"],
        "a_essay": a_essay,
        "b_class": b_class["id"],
        "b_student": b_student["id"],
        "new_essay": str(uuid.uuid4()),
    }


async def _view(
    client: TestClientProtocol, headers: dict[str, str], class_id: str, student_id: str
) -> list[Any]:
    """Everything the owner can read about their class and student."""
    return [
        await get_ok(client, f"/v1/classes/{class_id}", headers),
        await get_ok(client, f"/v1/classes/{class_id}/roster", headers),
        await get_ok(client, f"/v1/classes/students/{student_id}", headers),
        await get_ok(client, f"/v1/classes/students/{student_id}/essays", headers),
        await get_ok(client, "/v1/classes", headers),
        await get_ok(client, "/v1/classes/students", headers),
    ]


@pytest.mark.parametrize("case", CASES)
async def test_another_users_data_is_404_and_untouched(
    client, engine: AsyncEngine, case: Case
) -> None:
    a, b = user_headers("teacher-a-" + uuid.uuid4().hex[:6]), user_headers()
    ids = await _world(client, a, b)
    a_before = await _view(client, a, ids["a_class"], ids["a_student"])
    b_before = await _view(client, b, ids["b_class"], ids["b_student"])
    events_before = await outbox_count(engine)

    response = await send(
        client,
        case.method,
        case.path.format(**ids),
        {**b, **case.headers},
        case.body(ids) if case.body else None,
        case.query(ids) if case.query else None,
    )

    await problem_of(response, 404, case.code)
    assert await _view(client, a, ids["a_class"], ids["a_student"]) == a_before
    assert await _view(client, b, ids["b_class"], ids["b_student"]) == b_before
    assert await outbox_count(engine) == events_before


async def test_a_missing_id_and_another_users_id_get_the_same_answer(client) -> None:
    a, b = user_headers(), user_headers()
    ids = await _world(client, a, b)

    theirs = await client.get(f"/v1/classes/{ids['a_class']}", headers=b)
    missing = await client.get(f"/v1/classes/{uuid.uuid4()}", headers=b)

    their_problem = await problem_of(theirs, 404, "CLASS_NOT_FOUND")
    missing_problem = await problem_of(missing, 404, "CLASS_NOT_FOUND")
    for key in ("type", "title", "status", "code"):
        assert their_problem[key] == missing_problem[key]


async def test_lists_show_only_the_callers_own_data(client) -> None:
    a, b = user_headers(), user_headers()
    ids = await _world(client, a, b)
    await create_class(client, a, name="A's second class", course_code="SV1")

    a_classes = await get_ok(client, "/v1/classes", a)
    b_classes = await get_ok(client, "/v1/classes", b)
    b_filtered = await get_ok(client, "/v1/classes", b, {"course_code": "SV1"})
    a_students = await get_ok(client, "/v1/classes/students", a)
    b_students = await get_ok(client, "/v1/classes/students", b)
    stranger = user_headers()

    assert a_classes["pagination"]["total"] == 2
    assert ids["b_class"] not in {c["id"] for c in a_classes["classes"]}
    assert [c["id"] for c in b_classes["classes"]] == [ids["b_class"]]
    assert b_classes["pagination"]["total"] == 1
    assert b_filtered["classes"] == [] and b_filtered["pagination"]["total"] == 0
    assert [s["id"] for s in a_students["students"]] == [ids["a_student"]]
    assert [s["id"] for s in b_students["students"]] == [ids["b_student"]]
    assert (await get_ok(client, "/v1/classes", stranger))["pagination"]["total"] == 0
    assert (await get_ok(client, "/v1/classes/students", stranger))["pagination"]["total"] == 0


async def test_user_ids_are_compared_exactly(client) -> None:
    owner = user_headers("Teacher-Case")
    lookalike = user_headers("teacher-case")
    created = await create_class(client, owner)

    response = await client.get(f"/v1/classes/{created['id']}", headers=lookalike)

    await problem_of(response, 404, "CLASS_NOT_FOUND")
    assert (await get_ok(client, f"/v1/classes/{created['id']}", owner)) == created
