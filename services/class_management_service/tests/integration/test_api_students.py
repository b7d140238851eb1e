"""The student routes of the REST API, through the real app on a real database."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.tests.support.api import (
    PAGINATION_FIELDS,
    STUDENT_FIELDS,
    create_class,
    create_student,
    error_locations,
    etag,
    get_ok,
    json_of,
    link_essay,
    problem_of,
    send,
    user_headers,
)
from services.class_management_service.tests.support.database import (
    outbox_count,
    outbox_rows,
)

pytestmark = pytest.mark.relay_off  # counts the outbox rows requests wrote


STUDENTS = "/v1/classes/students"


def _student_path(student: dict[str, Any]) -> str:
    return f"{STUDENTS}/{student['id']}"


async def _student_total(client: Any, headers: dict[str, str]) -> int:
    return (await get_ok(client, STUDENTS, headers))["pagination"]["total"]


async def _put(client: Any, student: dict[str, Any], body: Any, headers: dict[str, str]) -> Any:
    return await client.put(_student_path(student), json=body, headers=headers)


# -- POST /v1/classes/students ---------------------------------------------------------


async def test_create_student_returns_201_with_body_location_and_etag(client, headers) -> None:
    response = await client.post(
        STUDENTS,
        json={
            "person_name": {
                "first_name": " Ada ",
                "last_name": "Lovelace",
                "legal_full_name": "Augusta Ada King",
            },
            "email": "ada@example.com",
        },
        headers=headers,
    )

    body = await json_of(response, 201)
    assert set(body) == STUDENT_FIELDS
    assert uuid.UUID(body["id"])
    assert body["first_name"] == "Ada"  # trimmed
    assert body["last_name"] == "Lovelace"
    assert body["full_name"] == "Ada Lovelace"
    assert body["legal_full_name"] == "Augusta Ada King"
    assert body["email"] == "ada@example.com"
    assert body["class_ids"] == []
    assert body["version"] == 1
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None
    assert response.headers["Location"] == f"{STUDENTS}/{body['id']}"
    assert response.headers["ETag"] == '"1"'
    assert await get_ok(client, response.headers["Location"], headers) == body


async def test_create_student_with_trailing_slash_returns_201_without_redirect(
    client, headers
) -> None:
    response = await client.post(
        f"{STUDENTS}/",
        json={"person_name": {"first_name": "Bo", "last_name": "Ek"}},
        headers=headers,
    )

    body = await json_of(response, 201)
    assert body["email"] is None
    assert await _student_total(client, headers) == 1


async def test_create_student_defaults_the_legal_name(client, headers) -> None:
    body = await create_student(client, headers, "Grace", "Hopper")

    assert body["legal_full_name"] == "Grace Hopper"
    assert body["full_name"] == "Grace Hopper"


async def test_create_student_enrols_in_the_given_classes(client, headers) -> None:
    first = await create_class(client, headers, name="first")
    second = await create_class(client, headers, name="second")

    body = await create_student(client, headers, class_ids=[first["id"], second["id"], first["id"]])

    assert sorted(body["class_ids"]) == sorted([first["id"], second["id"]])
    for klass in (first, second):
        roster = await get_ok(client, f"/v1/classes/{klass['id']}/roster", headers)
        assert [s["student_id"] for s in roster["students"]] == [body["id"]]
        assert (await get_ok(client, f"/v1/classes/{klass['id']}", headers))["student_count"] == 1


async def test_create_student_accepts_names_of_255_characters(client, headers) -> None:
    long = "x" * 255

    body = await create_student(client, headers, long, long, legal_full_name=long)

    assert (body["first_name"], body["last_name"], body["legal_full_name"]) == (long, long, long)


@pytest.mark.parametrize(
    ("body", "location"),
    [
        pytest.param({}, ("person_name",), id="no-name"),
        pytest.param({"person_name": "Ada Lovelace"}, ("person_name",), id="name-not-an-object"),
        pytest.param(
            {"person_name": {"first_name": "  ", "last_name": "L"}},
            ("person_name", "first_name"),
            id="blank-first-name",
        ),
        pytest.param(
            {"person_name": {"first_name": "A", "last_name": ""}},
            ("person_name", "last_name"),
            id="empty-last-name",
        ),
        pytest.param(
            {"person_name": {"first_name": "A"}}, ("person_name", "last_name"), id="no-last-name"
        ),
        pytest.param(
            {"person_name": {"first_name": "A" * 256, "last_name": "L"}},
            ("person_name", "first_name"),
            id="first-name-too-long",
        ),
        pytest.param(
            {"person_name": {"first_name": "A", "last_name": "L", "legal_full_name": " "}},
            ("person_name", "legal_full_name"),
            id="blank-legal-name",
        ),
        pytest.param(
            {"person_name": {"first_name": "A\x00", "last_name": "L"}},
            ("person_name", "first_name"),
            id="nul-in-name",
        ),
        pytest.param(
            {"person_name": {"first_name": "A" * 200, "last_name": "L" * 200}},
            ("person_name",),
            id="default-legal-name-too-long",
        ),
        pytest.param(
            {"person_name": {"first_name": "A", "last_name": "L", "middle": "M"}},
            ("person_name", "middle"),
            id="unknown-name-field",
        ),
        pytest.param(
            {"person_name": {"first_name": "A", "last_name": "L"}, "email": "not-an-email"},
            ("email",),
            id="invalid-email",
        ),
        pytest.param(
            {"person_name": {"first_name": "A", "last_name": "L"}, "email": "a@b@example.com"},
            ("email",),
            id="two-at-signs",
        ),
        pytest.param(
            {"person_name": {"first_name": "A", "last_name": "L"}, "class_ids": ["nope"]},
            ("class_ids", 0),
            id="class-id-not-a-uuid",
        ),
        pytest.param(
            {"person_name": {"first_name": "A", "last_name": "L"}, "class_ids": "x"},
            ("class_ids",),
            id="class-ids-not-a-list",
        ),
        pytest.param(
            {
                "person_name": {"first_name": "A", "last_name": "L"},
                "class_ids": [str(uuid.uuid4()) for _ in range(101)],
            },
            ("class_ids",),
            id="too-many-class-ids",
        ),
        pytest.param(
            {"person_name": {"first_name": "A", "last_name": "L"}, "student_id": "x"},
            ("student_id",),
            id="unknown-field",
        ),
    ],
)
async def test_create_student_rejects_invalid_bodies_with_400(
    client, headers, engine: AsyncEngine, body, location
) -> None:
    response = await client.post(STUDENTS, json=body, headers=headers)

    problem = await problem_of(response, 400, "VALIDATION_ERROR")
    assert any(loc[: len(location)] == location for loc in error_locations(problem)), problem
    assert await _student_total(client, headers) == 0
    assert await outbox_count(engine) == 0


async def test_create_student_in_an_unknown_class_is_404_and_creates_nothing(
    client, headers, engine
) -> None:
    klass = await create_class(client, headers)

    response = await client.post(
        STUDENTS,
        json={
            "person_name": {"first_name": "A", "last_name": "L"},
            "class_ids": [klass["id"], str(uuid.uuid4())],
        },
        headers=headers,
    )

    await problem_of(response, 404, "CLASS_NOT_FOUND")
    assert await _student_total(client, headers) == 0
    assert (await get_ok(client, f"/v1/classes/{klass['id']}", headers))["student_count"] == 0
    assert await outbox_count(engine) == 1  # only the class's


async def test_create_student_with_a_duplicate_email_is_409(client, headers, engine) -> None:
    first = await create_student(client, headers, "A", "One", email="twin@example.com")

    response = await client.post(
        STUDENTS,
        json={"person_name": {"first_name": "B", "last_name": "Two"}, "email": "twin@example.com"},
        headers=headers,
    )

    await problem_of(response, 409, "STUDENT_ALREADY_EXISTS")
    listed = await get_ok(client, STUDENTS, headers)
    assert [s["id"] for s in listed["students"]] == [first["id"]]
    assert await outbox_count(engine) == 1


async def test_create_student_email_duplicates_are_found_ignoring_case(client, headers) -> None:
    await create_student(client, headers, "A", "One", email="case@example.com")

    response = await client.post(
        STUDENTS,
        json={"person_name": {"first_name": "B", "last_name": "Two"}, "email": "CASE@Example.com"},
        headers=headers,
    )

    await problem_of(response, 409, "STUDENT_ALREADY_EXISTS")
    assert await _student_total(client, headers) == 1


async def test_the_same_email_under_another_owner_is_fine(client, headers) -> None:
    other = user_headers()
    mine = await create_student(client, headers, email="shared@example.com")

    theirs = await create_student(client, other, email="shared@example.com")

    assert theirs["id"] != mine["id"]
    assert theirs["email"] == mine["email"] == "shared@example.com"
    assert await _student_total(client, headers) == 1
    assert await _student_total(client, other) == 1


async def test_many_students_may_have_no_email(client, headers) -> None:
    for i in range(3):
        await create_student(client, headers, "No", f"Mail{i}")

    assert await _student_total(client, headers) == 3


# -- GET /v1/classes/students ----------------------------------------------------------


async def test_list_students_by_name_with_pagination(client, headers) -> None:
    carl = await create_student(client, headers, "Carl", "Berg")
    anna = await create_student(client, headers, "Anna", "Berg")
    zoe = await create_student(client, headers, "Zoe", "Adams")

    body = await get_ok(client, STUDENTS, headers)
    page = await get_ok(client, f"{STUDENTS}/", headers, {"limit": 1, "offset": 2})

    assert set(body) == {"students", "pagination"}
    assert [s["id"] for s in body["students"]] == [zoe["id"], anna["id"], carl["id"]]
    assert body["students"][0] == zoe
    assert body["pagination"] == {"limit": 20, "offset": 0, "returned": 3, "total": 3}
    assert set(body["pagination"]) == PAGINATION_FIELDS
    assert [s["id"] for s in page["students"]] == [carl["id"]]
    assert page["pagination"] == {"limit": 1, "offset": 2, "returned": 1, "total": 3}


async def test_list_students_of_one_class(client, headers) -> None:
    klass = await create_class(client, headers)
    inside = await create_student(client, headers, "In", "Side", class_ids=[klass["id"]])
    await create_student(client, headers, "Out", "Side")

    body = await get_ok(client, STUDENTS, headers, {"class_id": klass["id"]})

    assert [s["id"] for s in body["students"]] == [inside["id"]]
    assert body["students"][0]["class_ids"] == [klass["id"]]
    assert body["pagination"]["total"] == 1


async def test_list_students_of_an_unknown_class_is_404(client, headers) -> None:
    await create_student(client, headers)

    response = await client.get(STUDENTS, headers=headers, query_string={"class_id": uuid.uuid4()})

    await problem_of(response, 404, "CLASS_NOT_FOUND")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param({"class_id": "nope"}, "class_id", id="class-id-not-a-uuid"),
        pytest.param({"limit": 0}, "limit", id="limit-0"),
        pytest.param({"limit": 101}, "limit", id="limit-101"),
        pytest.param({"limit": "many"}, "limit", id="limit-not-a-number"),
        pytest.param({"offset": -3}, "offset", id="offset-negative"),
    ],
)
async def test_list_students_rejects_invalid_query_with_400(client, headers, query, field) -> None:
    response = await client.get(STUDENTS, headers=headers, query_string=query)

    problem = await problem_of(response, 400, "VALIDATION_ERROR")
    assert any(field in location for location in error_locations(problem)), problem
    assert await _student_total(client, headers) == 0


# -- GET /v1/classes/students/{student_id} ---------------------------------------------


async def test_get_student_returns_200_with_etag(client, headers) -> None:
    klass = await create_class(client, headers)
    created = await create_student(client, headers, email="g@example.com", class_ids=[klass["id"]])

    response = await client.get(_student_path(created), headers=headers)

    assert await json_of(response, 200) == created
    assert response.headers["ETag"] == '"1"'


async def test_get_unknown_student_is_404(client, headers) -> None:
    response = await client.get(f"{STUDENTS}/{uuid.uuid4()}", headers=headers)

    await problem_of(response, 404, "STUDENT_NOT_FOUND")
    assert await _student_total(client, headers) == 0


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_student_route_with_malformed_id_is_400(client, headers, method) -> None:
    response = await send(
        client, method, f"{STUDENTS}/not-a-uuid", headers, {} if method == "PUT" else None
    )

    problem = await problem_of(response, 400, "VALIDATION_ERROR")
    assert ("path", "student_id") in error_locations(problem)
    assert await _student_total(client, headers) == 0


# -- PUT /v1/classes/students/{student_id} ---------------------------------------------


async def test_update_student_name(client, headers, engine) -> None:
    created = await create_student(client, headers, "Ada", "Byron", email="ada@example.com")

    response = await _put(
        client,
        created,
        {"person_name": {"first_name": "Ada", "last_name": "Lovelace"}},
        headers,
    )

    body = await json_of(response, 200)
    assert (body["first_name"], body["last_name"]) == ("Ada", "Lovelace")
    assert body["full_name"] == "Ada Lovelace"
    assert body["legal_full_name"] == "Ada Byron"  # kept unless given (merge-patch)
    assert body["email"] == "ada@example.com"  # untouched
    assert body["version"] == 2
    assert body["updated_at"] > created["updated_at"]
    assert response.headers["ETag"] == '"2"'
    assert await get_ok(client, _student_path(created), headers) == body
    assert await outbox_count(engine, created["id"]) == 2


async def test_update_student_email_only(client, headers) -> None:
    created = await create_student(client, headers, "Ada", "Lovelace", legal_full_name="A. King")

    response = await _put(client, created, {"email": "new@example.com"}, headers)

    body = await json_of(response, 200)
    assert body["email"] == "new@example.com"
    assert (body["first_name"], body["last_name"], body["legal_full_name"]) == (
        "Ada",
        "Lovelace",
        "A. King",
    )
    assert body["version"] == 2


async def test_update_student_adds_and_removes_classes(client, headers) -> None:
    old = await create_class(client, headers, name="old")
    new = await create_class(client, headers, name="new")
    created = await create_student(client, headers, class_ids=[old["id"]])

    response = await _put(
        client, created, {"add_class_ids": [new["id"]], "remove_class_ids": [old["id"]]}, headers
    )

    body = await json_of(response, 200)
    assert body["class_ids"] == [new["id"]]
    assert body["version"] == 2
    assert (await get_ok(client, f"/v1/classes/{old['id']}", headers))["student_count"] == 0
    new_roster = await get_ok(client, f"/v1/classes/{new['id']}/roster", headers)
    assert [s["student_id"] for s in new_roster["students"]] == [created["id"]]


async def test_update_student_with_empty_body_changes_nothing(client, headers, engine) -> None:
    created = await create_student(client, headers)

    response = await _put(client, created, {}, headers)

    assert await json_of(response, 200) == created
    assert await outbox_count(engine, created["id"]) == 1


async def test_update_student_with_if_match(client, headers) -> None:
    created = await create_student(client, headers)

    ok = await _put(client, created, {"email": "one@example.com"}, {**headers, "If-Match": '"1"'})
    stale = await _put(
        client, created, {"email": "two@example.com"}, {**headers, "If-Match": '"1"'}
    )

    assert (await json_of(ok, 200))["version"] == 2
    await problem_of(stale, 412, "PRECONDITION_FAILED")
    after = await get_ok(client, _student_path(created), headers)
    assert (after["email"], after["version"]) == ("one@example.com", 2)


async def test_update_student_to_a_taken_email_is_409(client, headers, engine) -> None:
    await create_student(client, headers, "A", "One", email="taken@example.com")
    other = await create_student(client, headers, "B", "Two", email="free@example.com")

    response = await _put(client, other, {"email": "taken@example.com"}, headers)

    await problem_of(response, 409, "STUDENT_ALREADY_EXISTS")
    assert await get_ok(client, _student_path(other), headers) == other
    assert await outbox_count(engine, other["id"]) == 1


@pytest.mark.parametrize("field", ["add_class_ids", "remove_class_ids"])
async def test_update_student_with_an_unknown_class_is_404_and_unchanged(
    client, headers, engine, field
) -> None:
    klass = await create_class(client, headers)
    created = await create_student(client, headers, class_ids=[klass["id"]])

    response = await _put(
        client,
        created,
        {field: [str(uuid.uuid4())], "person_name": {"first_name": "X", "last_name": "Y"}},
        headers,
    )

    await problem_of(response, 404, "CLASS_NOT_FOUND")
    assert await get_ok(client, _student_path(created), headers) == created
    assert await outbox_count(engine, created["id"]) == 1


async def test_update_unknown_student_is_404(client, headers) -> None:
    response = await client.put(
        f"{STUDENTS}/{uuid.uuid4()}", json={"email": "x@example.com"}, headers=headers
    )

    await problem_of(response, 404, "STUDENT_NOT_FOUND")
    assert await _student_total(client, headers) == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"person_name": {"first_name": "", "last_name": "L"}}, id="blank-name"),
        pytest.param({"person_name": {"first_name": None}}, id="null-first-name"),
        pytest.param({"person_name": None}, id="null-name"),
        pytest.param({"email": "nope"}, id="invalid-email"),
        pytest.param({"add_class_ids": ["nope"]}, id="add-not-a-uuid"),
        pytest.param({"remove_class_ids": [1]}, id="remove-not-a-uuid"),
        pytest.param({"class_ids": []}, id="unknown-field"),
    ],
)
async def test_update_student_rejects_invalid_bodies_with_400(
    client, headers, engine, body
) -> None:
    created = await create_student(client, headers)

    response = await _put(client, created, body, headers)

    await problem_of(response, 400, "VALIDATION_ERROR")
    assert await get_ok(client, _student_path(created), headers) == created
    assert await outbox_count(engine, created["id"]) == 1


# -- DELETE /v1/classes/students/{student_id} ------------------------------------------


async def test_delete_student_removes_memberships_and_essays(client, headers, engine) -> None:
    klass = await create_class(client, headers)
    created = await create_student(client, headers, class_ids=[klass["id"]])
    essay_id = await link_essay(client, headers, created["id"])

    response = await client.delete(_student_path(created), headers=headers)

    assert response.status_code == 204
    assert await response.get_data() == b""
    await problem_of(
        await client.get(_student_path(created), headers=headers), 404, "STUDENT_NOT_FOUND"
    )
    assert (await get_ok(client, f"/v1/classes/{klass['id']}", headers))["student_count"] == 0
    assert await _student_total(client, headers) == 0
    assert await outbox_count(engine, created["id"]) == 2
    # The essay is free again: another student can have it.
    other = await create_student(client, headers, "Other", "Student")
    relinked = await client.put(f"{_student_path(other)}/essays/{essay_id}", headers=headers)
    assert (await json_of(relinked, 201))["student_id"] == other["id"]


async def test_delete_student_with_if_match(client, headers) -> None:
    created = await create_student(client, headers)
    await json_of(await _put(client, created, {"email": "v2@example.com"}, headers), 200)

    stale = await client.delete(_student_path(created), headers={**headers, "If-Match": '"1"'})
    current = await client.delete(_student_path(created), headers={**headers, "If-Match": etag(2)})

    await problem_of(stale, 412, "PRECONDITION_FAILED")
    assert current.status_code == 204
    assert await _student_total(client, headers) == 0


async def test_delete_unknown_student_is_404(client, headers) -> None:
    kept = await create_student(client, headers)

    response = await client.delete(f"{STUDENTS}/{uuid.uuid4()}", headers=headers)

    await problem_of(response, 404, "STUDENT_NOT_FOUND")
    assert await get_ok(client, _student_path(kept), headers) == kept


# -- merge-patch meaning of PUT, and writes that change nothing --------------------------


async def test_update_student_merges_a_partial_name_and_removes_the_email(
    client, headers, engine
) -> None:
    created = await create_student(
        client, headers, "Ada", "Byron", email="ada@example.com", legal_full_name="Augusta Ada"
    )

    response = await _put(client, created, {"person_name": {"last_name": "Lind"}}, headers)
    renamed = await json_of(response, 200)
    assert (renamed["first_name"], renamed["last_name"]) == ("Ada", "Lind")
    assert renamed["legal_full_name"] == "Augusta Ada"
    assert renamed["email"] == "ada@example.com"

    response = await _put(client, renamed, {"email": None}, headers)
    removed = await json_of(response, 200)
    assert removed["email"] is None
    assert removed["version"] == 3
    assert await get_ok(client, _student_path(created), headers) == removed
    *_, row = await outbox_rows(
        engine,
        "aggregate_id = :id AND topic = :topic",
        id=created["id"],
        topic="huleedu.class.student.updated.v1",
    )
    data = row.payload["data"]
    assert data["student_email"] is None
    assert data["previous"] == {"student_email": "ada@example.com"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({}, id="empty"),
        pytest.param({"person_name": {"first_name": "Ada"}}, id="same-name"),
        pytest.param({"email": "ADA@example.com"}, id="same-email"),
        pytest.param({"add_class_ids": ["{in}"]}, id="add-a-class-it-is-in"),
        pytest.param({"remove_class_ids": ["{out}"]}, id="remove-a-class-it-is-not-in"),
    ],
)
async def test_update_student_that_changes_nothing_is_a_no_op(
    client, headers, engine, body
) -> None:
    inside = await create_class(client, headers)
    outside = await create_class(client, headers)
    created = await create_student(
        client, headers, "Ada", "Byron", email="ada@example.com", class_ids=[inside["id"]]
    )
    body = {
        name: [inside["id"] if v == "{in}" else outside["id"] for v in value]
        if name.endswith("class_ids")
        else value
        for name, value in body.items()
    }

    response = await _put(client, created, body, headers)

    assert await json_of(response, 200) == created
    assert response.headers["ETag"] == '"1"'
    assert await outbox_count(engine, created["id"]) == 1  # the created event only
    assert (await get_ok(client, f"/v1/classes/{inside['id']}", headers))["version"] == 2
    assert (await get_ok(client, f"/v1/classes/{outside['id']}", headers))["version"] == 1


async def test_membership_changes_give_each_class_a_new_version(client, headers) -> None:
    first = await create_class(client, headers)
    second = await create_class(client, headers)
    created = await create_student(client, headers, "Ada", "Byron", class_ids=[first["id"]])
    first_path, second_path = (f"/v1/classes/{k['id']}" for k in (first, second))
    assert (await get_ok(client, first_path, headers))["version"] == 2

    body = {"add_class_ids": [second["id"]], "remove_class_ids": [first["id"]]}
    moved = await json_of(await _put(client, created, body, headers), 200)

    assert moved["class_ids"] == [second["id"]]
    left = await get_ok(client, first_path, headers)
    joined = await get_ok(client, second_path, headers)
    assert (left["student_count"], left["version"]) == (0, 3)
    assert (joined["student_count"], joined["version"]) == (1, 2)

    response = await client.delete(_student_path(created), headers=headers)
    assert response.status_code == 204
    joined_after = await get_ok(client, second_path, headers)
    assert (joined_after["student_count"], joined_after["version"]) == (0, 3)
    assert joined_after["updated_at"] > joined["updated_at"]


async def test_deleting_a_class_gives_each_member_a_new_version(client, headers, engine) -> None:
    klass = await create_class(client, headers)
    kept = await create_class(client, headers)
    member = await create_student(client, headers, "Ada", "B", class_ids=[klass["id"], kept["id"]])
    stranger = await create_student(client, headers, "Bo", "C", class_ids=[kept["id"]])

    response = await client.delete(f"/v1/classes/{klass['id']}", headers=headers)
    assert response.status_code == 204

    after = await get_ok(client, _student_path(member), headers)
    assert after["class_ids"] == [kept["id"]]
    assert after["version"] == 2
    assert (await get_ok(client, _student_path(stranger), headers))["version"] == 1
    (row,) = await outbox_rows(
        engine,
        "aggregate_id = :id AND topic = :topic",
        id=member["id"],
        topic="huleedu.class.student.updated.v1",
    )
    data = row.payload["data"]
    assert (data["version"], data["remove_class_ids"]) == (2, [klass["id"]])
    assert data["previous"] == {"class_ids": sorted([klass["id"], kept["id"]])}
    *_, tombstone = await outbox_rows(
        engine,
        "aggregate_id = :id AND topic = :topic",
        id=klass["id"],
        topic="huleedu.class.state.v1",
    )
    assert tombstone.payload is None  # a tombstone: the relay sends a null value
