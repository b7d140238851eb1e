"""Essay links of students: PUT (idempotent), GET (paged), DELETE (with its event) and
which student wrote an essay, through the real app."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from common_core.events import EssayUnlinkedV1, topic_for

from services.class_management_service.tests.support.api import (
    create_student,
    error_locations,
    get_ok,
    json_of,
    link_essay,
    problem_of,
    user_headers,
    with_correlation,
)
from services.class_management_service.tests.support.kafka_events import EventCollector


def _essay_path(student_id: str, essay_id: Any) -> str:
    return f"/v1/classes/students/{student_id}/essays/{essay_id}"


def _essays_path(student_id: str) -> str:
    return f"/v1/classes/students/{student_id}/essays"


def _page(returned: int, total: int, limit: int = 20, offset: int = 0) -> dict[str, int]:
    return {"limit": limit, "offset": offset, "returned": returned, "total": total}


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
    assert listed == {"essays": [created], "pagination": _page(1, 1)}


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

    assert body["pagination"] == _page(3, 3)
    assert [e["essay_id"] for e in body["essays"]] == linked
    assert {e["student_id"] for e in body["essays"]} == {student["id"]}
    assert [e["created_at"] for e in body["essays"]] == sorted(
        e["created_at"] for e in body["essays"]
    )


async def test_list_essays_of_a_student_without_essays(client, headers) -> None:
    student = await create_student(client, headers)

    assert await get_ok(client, _essays_path(student["id"]), headers) == {
        "essays": [],
        "pagination": _page(0, 0),
    }


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
    assert (await get_ok(client, _essays_path(student["id"]), headers))["essays"] == []


async def test_list_essays_pages_with_totals(client, headers) -> None:
    student = await create_student(client, headers)
    linked = [await link_essay(client, headers, student["id"]) for _ in range(3)]
    path = _essays_path(student["id"])

    second = await get_ok(client, path, headers, {"limit": 2, "offset": 2})
    past_end = await get_ok(client, path, headers, {"limit": 2, "offset": 5})

    assert [e["essay_id"] for e in second["essays"]] == linked[2:]
    assert second["pagination"] == _page(1, 3, limit=2, offset=2)
    assert past_end == {"essays": [], "pagination": _page(0, 3, limit=2, offset=5)}
    other = await client.get(path, headers=user_headers(), query_string={"offset": 5})
    await problem_of(other, 404, "STUDENT_NOT_FOUND")


async def test_unlink_essay_is_204_and_publishes_essay_unlinked(
    client, headers, events: EventCollector
) -> None:
    student = await create_student(client, headers)
    kept = await link_essay(client, headers, student["id"])
    essay_id = await link_essay(client, headers, student["id"])
    correlation_id = str(uuid.uuid4())

    response = await client.delete(
        _essay_path(student["id"], essay_id), headers=with_correlation(headers, correlation_id)
    )

    assert response.status_code == 204
    assert await response.get_data() == b""
    listed = await get_ok(client, _essays_path(student["id"]), headers)
    assert [e["essay_id"] for e in listed["essays"]] == [kept]
    (event,) = await events.wait_for(
        lambda e: e.key == essay_id.encode() and e.topic == topic_for(EssayUnlinkedV1)
    )
    data = event.envelope.data
    assert isinstance(data, EssayUnlinkedV1)
    assert (str(data.essay_id), str(data.student_id)) == (essay_id, student["id"])
    assert data.user_id == headers["X-User-ID"]
    assert str(event.envelope.correlation_id) == correlation_id
    # Unlinked, the essay may be linked again, to another student too.
    other = await create_student(client, headers, "Bo", "Ek")
    relink = await client.put(_essay_path(other["id"], essay_id), headers=headers)
    await json_of(relink, 201)


async def test_unlink_of_a_link_that_is_not_there_is_404(client, headers) -> None:
    student = await create_student(client, headers)
    other = await create_student(client, headers, "Bo", "Ek")
    essay_id = await link_essay(client, headers, other["id"])

    never_linked = await client.delete(_essay_path(student["id"], uuid.uuid4()), headers=headers)
    of_another_student = await client.delete(_essay_path(student["id"], essay_id), headers=headers)
    by_another_user = await client.delete(
        _essay_path(other["id"], essay_id), headers=user_headers()
    )
    malformed = await client.delete(_essay_path(student["id"], "nope"), headers=headers)

    for response in (never_linked, of_another_student, by_another_user):
        await problem_of(response, 404, "ESSAY_LINK_NOT_FOUND")
    assert ("path", "essay_id") in error_locations(await problem_of(malformed, 400))
    assert (await get_ok(client, _essays_path(other["id"]), headers))["essays"][0][
        "essay_id"
    ] == essay_id


async def test_essay_writer_names_the_callers_student(client, headers) -> None:
    student = await create_student(
        client, headers, "Åsa", "Öberg", email="asa@example.com", legal_full_name="Åsa Maria Öberg"
    )
    essay_id = await link_essay(client, headers, student["id"])
    (link,) = (await get_ok(client, _essays_path(student["id"]), headers))["essays"]

    writer = await get_ok(client, f"/v1/classes/essays/{essay_id}", headers)

    assert writer == {
        "essay_id": essay_id,
        "student_id": student["id"],
        "created_at": link["created_at"],
        "student": {
            "id": student["id"],
            "first_name": "Åsa",
            "last_name": "Öberg",
            "legal_full_name": "Åsa Maria Öberg",
            "email": "asa@example.com",
        },
    }


async def test_essay_writer_is_404_unless_a_student_of_the_callers_wrote_it(
    client, headers
) -> None:
    student = await create_student(client, headers)
    essay_id = await link_essay(client, headers, student["id"])

    another_user = await client.get(f"/v1/classes/essays/{essay_id}", headers=user_headers())
    unknown = await client.get(f"/v1/classes/essays/{uuid.uuid4()}", headers=headers)
    malformed = await client.get("/v1/classes/essays/nope", headers=headers)

    await problem_of(another_user, 404, "ESSAY_LINK_NOT_FOUND")
    await problem_of(unknown, 404, "ESSAY_LINK_NOT_FOUND")
    assert ("path", "essay_id") in error_locations(await problem_of(malformed, 400))
