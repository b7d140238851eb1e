"""Essay links of students: PUT (idempotent) and GET, through the real app."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest

from services.class_management_service.tests.support.api import (
    create_student,
    error_locations,
    get_ok,
    json_of,
    link_essay,
    problem_of,
    user_headers,
)


def _essay_path(student_id: str, essay_id: Any) -> str:
    return f"/v1/classes/students/{student_id}/essays/{essay_id}"


def _essays_path(student_id: str) -> str:
    return f"/v1/classes/students/{student_id}/essays"


async def test_associate_essay_is_201_first_and_200_after(client, headers) -> None:
    student = await create_student(client, headers)
    essay_id = str(uuid.uuid4())

    first = await client.put(_essay_path(student["id"], essay_id), headers=headers)
    second = await client.put(_essay_path(student["id"], essay_id), headers=headers)

    created = await json_of(first, 201)
    again = await json_of(second, 200)
    assert set(created) == {"essay_id", "student_id", "created_at"}
    assert created["essay_id"] == essay_id
    assert created["student_id"] == student["id"]
    assert datetime.fromisoformat(created["created_at"]).tzinfo is not None
    assert again == created
    listed = await get_ok(client, _essays_path(student["id"]), headers)
    assert listed == {"essays": [created]}


async def test_associate_essay_ignores_an_empty_json_body(client, headers) -> None:
    student = await create_student(client, headers)

    response = await client.put(_essay_path(student["id"], uuid.uuid4()), json={}, headers=headers)

    assert (await json_of(response, 201))["student_id"] == student["id"]


async def test_an_essay_of_another_student_is_409(client, headers) -> None:
    owner = await create_student(client, headers, "Essay", "Owner")
    other = await create_student(client, headers, "Other", "Student")
    essay_id = await link_essay(client, headers, owner["id"])

    response = await client.put(_essay_path(other["id"], essay_id), headers=headers)

    await problem_of(response, 409, "ESSAY_ALREADY_ASSOCIATED")
    assert (await get_ok(client, _essays_path(other["id"]), headers))["essays"] == []
    owner_essays = (await get_ok(client, _essays_path(owner["id"]), headers))["essays"]
    assert [e["essay_id"] for e in owner_essays] == [essay_id]


async def test_an_essay_of_another_owners_student_is_409(client, headers) -> None:
    other_user = user_headers()
    theirs = await create_student(client, other_user)
    mine = await create_student(client, headers)
    essay_id = await link_essay(client, other_user, theirs["id"])

    response = await client.put(_essay_path(mine["id"], essay_id), headers=headers)

    await problem_of(response, 409, "ESSAY_ALREADY_ASSOCIATED")
    their_essays = (await get_ok(client, _essays_path(theirs["id"]), other_user))["essays"]
    assert [e["student_id"] for e in their_essays] == [theirs["id"]]


async def test_list_essays_oldest_first(client, headers) -> None:
    student = await create_student(client, headers)
    other = await create_student(client, headers, "Other", "Student")
    linked = [await link_essay(client, headers, student["id"]) for _ in range(3)]
    await link_essay(client, headers, other["id"])

    body = await get_ok(client, _essays_path(student["id"]), headers)

    assert set(body) == {"essays"}
    assert [e["essay_id"] for e in body["essays"]] == linked
    assert {e["student_id"] for e in body["essays"]} == {student["id"]}
    assert [e["created_at"] for e in body["essays"]] == sorted(
        e["created_at"] for e in body["essays"]
    )


async def test_list_essays_of_a_student_without_essays(client, headers) -> None:
    student = await create_student(client, headers)

    assert await get_ok(client, _essays_path(student["id"]), headers) == {"essays": []}


async def test_essay_routes_of_an_unknown_student_are_404(client, headers) -> None:
    missing = uuid.uuid4()

    put = await client.put(_essay_path(str(missing), uuid.uuid4()), headers=headers)
    get = await client.get(_essays_path(str(missing)), headers=headers)

    await problem_of(put, 404, "STUDENT_NOT_FOUND")
    await problem_of(get, 404, "STUDENT_NOT_FOUND")


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        pytest.param("PUT", "/v1/classes/students/{sid}/essays/nope", "essay_id", id="put-essay"),
        pytest.param("PUT", "/v1/classes/students/nope/essays/{eid}", "student_id", id="put-stu"),
        pytest.param("GET", "/v1/classes/students/nope/essays", "student_id", id="get-student"),
    ],
)
async def test_essay_routes_with_malformed_ids_are_400(
    client, headers, method, path, field
) -> None:
    student = await create_student(client, headers)

    response = await client.open(
        path.format(sid=student["id"], eid=uuid.uuid4()), method=method, headers=headers
    )

    problem = await problem_of(response, 400, "VALIDATION_ERROR")
    assert ("path", field) in error_locations(problem)
    assert await get_ok(client, _essays_path(student["id"]), headers) == {"essays": []}
