"""The class routes of the REST API, through the real app on a real database."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.tests.support.api import (
    CLASS_FIELDS,
    PAGINATION_FIELDS,
    ROSTER_FIELDS,
    create_class,
    create_student,
    error_locations,
    etag,
    get_ok,
    json_of,
    problem_of,
    with_correlation,
)
from services.class_management_service.tests.support.database import (
    outbox_count,
)

pytestmark = pytest.mark.relay_off  # counts the outbox rows requests wrote


KNOWN_COURSES = ("ENG5", "ENG6", "ENG7", "SV1", "SV2", "SV3")


async def _class_total(client: Any, headers: dict[str, str]) -> int:
    return (await get_ok(client, "/v1/classes", headers))["pagination"]["total"]


# -- POST /v1/classes ------------------------------------------------------------------


async def test_create_class_returns_201_with_body_location_and_etag(client, headers) -> None:
    response = await client.post(
        "/v1/classes", json={"name": "  Year 9 A  ", "course_codes": ["ENG5"]}, headers=headers
    )

    body = await json_of(response, 201)
    assert set(body) == CLASS_FIELDS
    assert uuid.UUID(body["id"])
    assert body["name"] == "Year 9 A"  # trimmed
    assert body["course_code"] == "ENG5"
    assert body["student_count"] == 0
    assert body["version"] == 1
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None
    assert body["created_at"] == body["updated_at"]
    assert response.headers["Location"] == f"/v1/classes/{body['id']}"
    assert response.headers["ETag"] == '"1"'
    assert response.headers["X-Correlation-ID"] == headers["X-Correlation-ID"]
    stored = await get_ok(client, response.headers["Location"], headers)
    assert stored == body


async def test_create_class_with_trailing_slash_returns_201_without_redirect(
    client, headers
) -> None:
    response = await client.post(
        "/v1/classes/", json={"name": "9B", "course_codes": ["SV1"]}, headers=headers
    )

    body = await json_of(response, 201)
    assert body["name"] == "9B"
    assert "Location" in response.headers
    assert response.headers["Location"] == f"/v1/classes/{body['id']}"
    assert await _class_total(client, headers) == 1


async def test_create_class_accepts_every_known_course(client, headers) -> None:
    for code in KNOWN_COURSES:
        body = await create_class(client, headers, name=f"class {code}", course_code=code)
        assert body["course_code"] == code

    assert await _class_total(client, headers) == len(KNOWN_COURSES)


async def test_create_class_accepts_a_name_of_255_characters_after_trimming(
    client, headers
) -> None:
    name = "n" * 255
    response = await client.post(
        "/v1/classes", json={"name": f"  {name}\t", "course_codes": ["ENG6"]}, headers=headers
    )

    assert (await json_of(response, 201))["name"] == name


@pytest.mark.parametrize(
    ("body", "code", "location"),
    [
        pytest.param({"name": "   ", "course_codes": ["ENG5"]}, None, ("name",), id="blank-name"),
        pytest.param({"name": "", "course_codes": ["ENG5"]}, None, ("name",), id="empty-name"),
        pytest.param(
            {"name": "n" * 256, "course_codes": ["ENG5"]}, None, ("name",), id="name-too-long"
        ),
        pytest.param({"name": 42, "course_codes": ["ENG5"]}, None, ("name",), id="name-not-text"),
        pytest.param(
            {"name": "a\x00b", "course_codes": ["ENG5"]}, None, ("name",), id="name-with-nul"
        ),
        pytest.param({"course_codes": ["ENG5"]}, None, ("name",), id="name-missing"),
        pytest.param({"name": "9A"}, None, ("course_codes",), id="course-codes-missing"),
        pytest.param({"name": "9A", "course_codes": []}, None, ("course_codes",), id="no-course"),
        pytest.param(
            {"name": "9A", "course_codes": "ENG5"}, None, ("course_codes",), id="codes-not-a-list"
        ),
        pytest.param(
            {"name": "9A", "course_codes": ["ENG5"], "owner": "x"},
            None,
            ("owner",),
            id="unknown-field",
        ),
        pytest.param(
            {"name": "9A", "course_codes": ["ENG9"]}, "COURSE_NOT_FOUND", None, id="unknown-course"
        ),
        pytest.param(
            {"name": "9A", "course_codes": ["ENG5", "SV1"]},
            "MULTIPLE_COURSE_ERROR",
            None,
            id="two-courses",
        ),
        pytest.param(
            {"name": "9A", "course_codes": ["ENG5", "NOPE"]},
            "MULTIPLE_COURSE_ERROR",
            None,
            id="known-and-unknown",
        ),
    ],
)
async def test_create_class_rejects_invalid_bodies_with_400(
    client, headers, engine: AsyncEngine, body, code, location
) -> None:
    response = await client.post("/v1/classes", json=body, headers=headers)

    problem = await problem_of(response, 400, code or "VALIDATION_ERROR")
    if location is not None:
        assert location in error_locations(problem), problem
    assert await _class_total(client, headers) == 0
    assert await outbox_count(engine) == 0


# -- GET /v1/classes ------------------------------------------------------------------


async def test_list_classes_returns_the_callers_classes_newest_first(client, headers) -> None:
    created = [await create_class(client, headers, name=f"class {i}") for i in range(3)]

    body = await get_ok(client, "/v1/classes", headers)

    assert set(body) == {"classes", "pagination"}
    assert [item["id"] for item in body["classes"]] == [c["id"] for c in reversed(created)]
    assert body["classes"][0] == created[-1]
    assert body["pagination"] == {"limit": 20, "offset": 0, "returned": 3, "total": 3}
    assert set(body["pagination"]) == PAGINATION_FIELDS


async def test_list_classes_is_empty_for_a_new_caller(client, headers) -> None:
    body = await get_ok(client, "/v1/classes/", headers)

    assert body == {
        "classes": [],
        "pagination": {"limit": 20, "offset": 0, "returned": 0, "total": 0},
    }


async def test_list_classes_pages_with_limit_and_offset(client, headers) -> None:
    created = [await create_class(client, headers, name=f"class {i}") for i in range(22)]
    newest_first = [c["id"] for c in reversed(created)]

    default_page = await get_ok(client, "/v1/classes", headers)
    second = await get_ok(client, "/v1/classes", headers, {"limit": 5, "offset": 5})
    tail = await get_ok(client, "/v1/classes", headers, {"limit": 100, "offset": 20})
    beyond = await get_ok(client, "/v1/classes", headers, {"limit": 1, "offset": 22})

    assert [c["id"] for c in default_page["classes"]] == newest_first[:20]
    assert default_page["pagination"] == {"limit": 20, "offset": 0, "returned": 20, "total": 22}
    assert [c["id"] for c in second["classes"]] == newest_first[5:10]
    assert second["pagination"] == {"limit": 5, "offset": 5, "returned": 5, "total": 22}
    assert [c["id"] for c in tail["classes"]] == newest_first[20:]
    assert tail["pagination"] == {"limit": 100, "offset": 20, "returned": 2, "total": 22}
    assert beyond["classes"] == []
    assert beyond["pagination"]["total"] == 22


async def test_list_classes_filters_by_course_code(client, headers) -> None:
    english = await create_class(client, headers, course_code="ENG7")
    await create_class(client, headers, course_code="SV2")
    await create_class(client, headers, course_code="SV2")

    eng = await get_ok(client, "/v1/classes", headers, {"course_code": "ENG7"})
    sv2 = await get_ok(client, "/v1/classes", headers, {"course_code": "SV2"})
    sv3 = await get_ok(client, "/v1/classes", headers, {"course_code": "SV3"})

    assert [c["id"] for c in eng["classes"]] == [english["id"]]
    assert eng["pagination"]["total"] == 1
    assert {c["course_code"] for c in sv2["classes"]} == {"SV2"}
    assert sv2["pagination"]["total"] == 2
    assert sv3["classes"] == [] and sv3["pagination"]["total"] == 0


async def test_list_classes_filters_by_updated_since(client, headers) -> None:
    first = await create_class(client, headers, name="first")
    second = await create_class(client, headers, name="second")
    since = {"updated_since": second["updated_at"]}
    # The same instant written with another offset must select the same classes.
    instant = datetime.fromisoformat(second["updated_at"].replace("Z", "+00:00"))
    shifted = {
        "updated_since": instant.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    }

    before_update = await get_ok(client, "/v1/classes", headers, since)
    shifted_before = await get_ok(client, "/v1/classes", headers, shifted)
    response = await client.put(
        f"/v1/classes/{first['id']}", json={"name": "first, renamed"}, headers=headers
    )
    await json_of(response, 200)
    after_update = await get_ok(client, "/v1/classes", headers, since)

    assert [c["id"] for c in before_update["classes"]] == [second["id"]]
    assert shifted_before == before_update
    assert {c["id"] for c in after_update["classes"]} == {first["id"], second["id"]}
    assert after_update["pagination"]["total"] == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param({"limit": 0}, "limit", id="limit-0"),
        pytest.param({"limit": 101}, "limit", id="limit-101"),
        pytest.param({"limit": -5}, "limit", id="limit-negative"),
        pytest.param({"limit": "ten"}, "limit", id="limit-not-a-number"),
        pytest.param({"limit": "99999999999999999999999"}, "limit", id="limit-huge"),
        pytest.param({"offset": -1}, "offset", id="offset-negative"),
        pytest.param({"offset": "x"}, "offset", id="offset-not-a-number"),
        pytest.param({"course_code": "ENG9"}, "course_code", id="unknown-course"),
        pytest.param({"updated_since": "yesterday"}, "updated_since", id="since-not-a-date"),
        pytest.param({"updated_since": "2026-01-01T00:00:00"}, "updated_since", id="since-naive"),
        pytest.param(
            {"updated_since": "9999-12-31T23:59:59-14:00"}, "updated_since", id="since-after-9999"
        ),
        pytest.param(
            {"updated_since": "0001-01-01T00:00:00+14:00"}, "updated_since", id="since-before-1"
        ),
    ],
)
async def test_list_classes_rejects_invalid_query_with_400(client, headers, query, field) -> None:
    response = await client.get("/v1/classes", headers=headers, query_string=query)

    problem = await problem_of(response, 400, "VALIDATION_ERROR")
    assert any(field in location for location in error_locations(problem)), problem
    assert await _class_total(client, headers) == 0


async def test_list_classes_accepts_the_limit_bounds(client, headers) -> None:
    await create_class(client, headers)

    smallest = await get_ok(client, "/v1/classes", headers, {"limit": 1})
    largest = await get_ok(client, "/v1/classes", headers, {"limit": 100})

    assert smallest["pagination"] == {"limit": 1, "offset": 0, "returned": 1, "total": 1}
    assert largest["pagination"] == {"limit": 100, "offset": 0, "returned": 1, "total": 1}


# -- GET /v1/classes/{class_id} --------------------------------------------------------


async def test_get_class_returns_200_with_etag(client, headers) -> None:
    created = await create_class(client, headers, name="9C", course_code="SV3")

    response = await client.get(f"/v1/classes/{created['id']}", headers=headers)

    assert await json_of(response, 200) == created
    assert response.headers["ETag"] == '"1"'


async def test_get_class_counts_its_students(client, headers) -> None:
    klass = await create_class(client, headers)
    await create_student(client, headers, first_name="A", class_ids=[klass["id"]])
    await create_student(client, headers, first_name="B", class_ids=[klass["id"]])
    await create_student(client, headers, first_name="C")

    body = await get_ok(client, f"/v1/classes/{klass['id']}", headers)

    assert body["student_count"] == 2
    assert body["version"] == 3  # each enrolment changed student_count: a version each


async def test_get_unknown_class_is_404(client, headers) -> None:
    missing = uuid.uuid4()

    response = await client.get(f"/v1/classes/{missing}", headers=headers)

    problem = await problem_of(response, 404, "CLASS_NOT_FOUND")
    assert problem["correlation_id"] == headers["X-Correlation-ID"]


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "123", "1" * 100, "%20"])
async def test_get_class_with_malformed_id_is_400(client, headers, bad_id) -> None:
    response = await client.get(f"/v1/classes/{bad_id}", headers=headers)

    problem = await problem_of(response, 400, "VALIDATION_ERROR")
    assert ("path", "class_id") in error_locations(problem)
    assert await _class_total(client, headers) == 0


# -- PUT /v1/classes/{class_id} --------------------------------------------------------


async def test_update_class_name_only_keeps_the_course(client, headers, engine) -> None:
    created = await create_class(client, headers, name="old", course_code="SV2")

    response = await client.put(
        f"/v1/classes/{created['id']}", json={"name": "  new  "}, headers=headers
    )

    body = await json_of(response, 200)
    assert body["name"] == "new"
    assert body["course_code"] == "SV2"
    assert body["version"] == 2
    assert body["created_at"] == created["created_at"]
    assert body["updated_at"] > created["updated_at"]
    assert response.headers["ETag"] == '"2"'
    assert await get_ok(client, f"/v1/classes/{created['id']}", headers) == body
    assert await outbox_count(engine, created["id"]) == 2


async def test_update_class_course_only_keeps_the_name(client, headers) -> None:
    created = await create_class(client, headers, name="keep me", course_code="ENG5")

    response = await client.put(
        f"/v1/classes/{created['id']}", json={"course_codes": ["ENG6"]}, headers=headers
    )

    body = await json_of(response, 200)
    assert (body["name"], body["course_code"], body["version"]) == ("keep me", "ENG6", 2)


async def test_update_class_both_fields(client, headers) -> None:
    created = await create_class(client, headers, name="a", course_code="ENG5")

    response = await client.put(
        f"/v1/classes/{created['id']}",
        json={"name": "b", "course_codes": ["SV1"]},
        headers=headers,
    )

    body = await json_of(response, 200)
    assert (body["name"], body["course_code"], body["version"]) == ("b", "SV1", 2)


async def test_update_class_with_empty_body_changes_nothing(client, headers, engine) -> None:
    created = await create_class(client, headers)

    response = await client.put(f"/v1/classes/{created['id']}", json={}, headers=headers)

    assert await json_of(response, 200) == created
    assert response.headers["ETag"] == '"1"'
    assert await outbox_count(engine, created["id"]) == 1  # no update event


async def test_update_class_with_matching_if_match_succeeds(client, headers) -> None:
    created = await create_class(client, headers)
    first = await client.put(
        f"/v1/classes/{created['id']}",
        json={"name": "v2"},
        headers={**headers, "If-Match": etag(1)},
    )
    second = await client.put(
        f"/v1/classes/{created['id']}",
        json={"name": "v3"},
        headers={**headers, "If-Match": first.headers["ETag"]},
    )
    any_version = await client.put(
        f"/v1/classes/{created['id']}", json={"name": "v4"}, headers={**headers, "If-Match": "*"}
    )

    assert (await json_of(first, 200))["version"] == 2
    assert (await json_of(second, 200))["version"] == 3
    assert (await json_of(any_version, 200))["name"] == "v4"


@pytest.mark.parametrize("if_match", [etag(2), etag(0), '"abc"', "W/" + etag(7), "garbage"])
async def test_update_class_with_stale_if_match_is_412_and_unchanged(
    client, headers, engine, if_match
) -> None:
    created = await create_class(client, headers, name="original")

    response = await client.put(
        f"/v1/classes/{created['id']}",
        json={"name": "lost update"},
        headers={**headers, "If-Match": if_match},
    )

    await problem_of(response, 412, "PRECONDITION_FAILED")
    assert await get_ok(client, f"/v1/classes/{created['id']}", headers) == created
    assert await outbox_count(engine, created["id"]) == 1


async def test_update_class_after_a_concurrent_change_is_412(client, headers) -> None:
    created = await create_class(client, headers, name="original")
    stale = etag(created["version"])
    await json_of(
        await client.put(f"/v1/classes/{created['id']}", json={"name": "other"}, headers=headers),
        200,
    )

    response = await client.put(
        f"/v1/classes/{created['id']}",
        json={"name": "mine"},
        headers={**headers, "If-Match": stale},
    )

    await problem_of(response, 412, "PRECONDITION_FAILED")
    assert (await get_ok(client, f"/v1/classes/{created['id']}", headers))["name"] == "other"


async def test_update_unknown_class_is_404(client, headers) -> None:
    response = await client.put(f"/v1/classes/{uuid.uuid4()}", json={"name": "x"}, headers=headers)

    await problem_of(response, 404, "CLASS_NOT_FOUND")


async def test_update_class_with_malformed_id_is_400(client, headers) -> None:
    response = await client.put("/v1/classes/nope", json={"name": "x"}, headers=headers)

    problem = await problem_of(response, 400, "VALIDATION_ERROR")
    assert ("path", "class_id") in error_locations(problem)
    assert await _class_total(client, headers) == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param({"name": " "}, "VALIDATION_ERROR", id="blank-name"),
        pytest.param({"name": "x" * 256}, "VALIDATION_ERROR", id="name-too-long"),
        pytest.param({"course_codes": []}, "VALIDATION_ERROR", id="no-course"),
        pytest.param({"colour": "red"}, "VALIDATION_ERROR", id="unknown-field"),
        pytest.param({"course_codes": ["XX1"]}, "COURSE_NOT_FOUND", id="unknown-course"),
        pytest.param({"course_codes": ["SV1", "SV2"]}, "MULTIPLE_COURSE_ERROR", id="two-courses"),
    ],
)
async def test_update_class_rejects_invalid_bodies_with_400(
    client, headers, engine, body, code
) -> None:
    created = await create_class(client, headers)

    response = await client.put(f"/v1/classes/{created['id']}", json=body, headers=headers)

    await problem_of(response, 400, code)
    assert await get_ok(client, f"/v1/classes/{created['id']}", headers) == created
    assert await outbox_count(engine, created["id"]) == 1


# -- DELETE /v1/classes/{class_id} -----------------------------------------------------


async def test_delete_class_returns_204_and_the_class_is_gone(client, headers, engine) -> None:
    created = await create_class(client, headers)

    response = await client.delete(f"/v1/classes/{created['id']}", headers=headers)

    assert response.status_code == 204
    assert await response.get_data() == b""
    assert response.headers["X-Correlation-ID"] == headers["X-Correlation-ID"]
    await problem_of(
        await client.get(f"/v1/classes/{created['id']}", headers=headers), 404, "CLASS_NOT_FOUND"
    )
    assert await outbox_count(engine, created["id"]) == 2
    again = await client.delete(f"/v1/classes/{created['id']}", headers=headers)
    await problem_of(again, 404, "CLASS_NOT_FOUND")


async def test_delete_class_removes_memberships_but_keeps_students(client, headers) -> None:
    doomed = await create_class(client, headers, name="doomed")
    kept = await create_class(client, headers, name="kept")
    student = await create_student(client, headers, class_ids=[doomed["id"], kept["id"]])

    response = await client.delete(f"/v1/classes/{doomed['id']}", headers=headers)

    assert response.status_code == 204
    after = await get_ok(client, f"/v1/classes/students/{student['id']}", headers)
    assert after["class_ids"] == [kept["id"]]
    assert (await get_ok(client, f"/v1/classes/{kept['id']}", headers))["student_count"] == 1
    listed = await get_ok(client, "/v1/classes/students", headers)
    assert [s["id"] for s in listed["students"]] == [student["id"]]
    roster = await client.get(f"/v1/classes/{doomed['id']}/roster", headers=headers)
    await problem_of(roster, 404, "CLASS_NOT_FOUND")


async def test_delete_class_with_matching_if_match_is_204(client, headers) -> None:
    created = await create_class(client, headers)

    response = await client.delete(
        f"/v1/classes/{created['id']}", headers={**headers, "If-Match": etag(1)}
    )

    assert response.status_code == 204
    assert await _class_total(client, headers) == 0


async def test_delete_class_with_stale_if_match_is_412_and_kept(client, headers, engine) -> None:
    created = await create_class(client, headers)
    await json_of(
        await client.put(f"/v1/classes/{created['id']}", json={"name": "v2"}, headers=headers),
        200,
    )

    response = await client.delete(
        f"/v1/classes/{created['id']}", headers={**headers, "If-Match": etag(1)}
    )

    await problem_of(response, 412, "PRECONDITION_FAILED")
    assert (await get_ok(client, f"/v1/classes/{created['id']}", headers))["version"] == 2
    assert await outbox_count(engine, created["id"]) == 2


async def test_delete_unknown_class_is_404(client, headers) -> None:
    response = await client.delete(f"/v1/classes/{uuid.uuid4()}", headers=headers)

    await problem_of(response, 404, "CLASS_NOT_FOUND")


async def test_delete_class_with_malformed_id_is_400(client, headers) -> None:
    response = await client.delete("/v1/classes/12345", headers=headers)

    problem = await problem_of(response, 400, "VALIDATION_ERROR")
    assert ("path", "class_id") in error_locations(problem)
    assert await _class_total(client, headers) == 0


# -- GET /v1/classes/{class_id}/roster -------------------------------------------------


async def test_roster_lists_the_class_students_by_name(client, headers) -> None:
    klass = await create_class(client, headers)
    other = await create_class(client, headers)
    zed = await create_student(
        client, headers, "Zed", "Young", "zed@example.com", [klass["id"]], "Zedekiah Young"
    )
    amy = await create_student(client, headers, "Amy", "Adams", None, [klass["id"], other["id"]])
    await create_student(client, headers, "Not", "Enrolled", class_ids=[other["id"]])

    body = await get_ok(client, f"/v1/classes/{klass['id']}/roster", headers)

    assert set(body) == {"students", "pagination"}
    assert body["students"] == [
        {
            "student_id": amy["id"],
            "first_name": "Amy",
            "last_name": "Adams",
            "legal_full_name": "Amy Adams",
            "email": None,
        },
        {
            "student_id": zed["id"],
            "first_name": "Zed",
            "last_name": "Young",
            "legal_full_name": "Zedekiah Young",
            "email": "zed@example.com",
        },
    ]
    assert all(set(entry) == ROSTER_FIELDS for entry in body["students"])
    assert body["pagination"] == {"limit": 20, "offset": 0, "returned": 2, "total": 2}


async def test_roster_pages(client, headers) -> None:
    klass = await create_class(client, headers)
    for last in ("Cc", "Aa", "Bb"):
        await create_student(client, headers, "X", last, class_ids=[klass["id"]])

    body = await get_ok(
        client, f"/v1/classes/{klass['id']}/roster", headers, {"limit": 1, "offset": 1}
    )

    assert [s["last_name"] for s in body["students"]] == ["Bb"]
    assert body["pagination"] == {"limit": 1, "offset": 1, "returned": 1, "total": 3}


async def test_roster_of_an_empty_class(client, headers) -> None:
    klass = await create_class(client, headers)

    body = await get_ok(client, f"/v1/classes/{klass['id']}/roster", headers)

    assert body == {
        "students": [],
        "pagination": {"limit": 20, "offset": 0, "returned": 0, "total": 0},
    }


async def test_roster_of_unknown_class_is_404(client, headers) -> None:
    response = await client.get(f"/v1/classes/{uuid.uuid4()}/roster", headers=headers)

    await problem_of(response, 404, "CLASS_NOT_FOUND")


@pytest.mark.parametrize(
    ("path", "query"),
    [
        pytest.param("/v1/classes/xyz/roster", {}, id="malformed-id"),
        pytest.param("/v1/classes/{id}/roster", {"limit": 0}, id="limit-0"),
        pytest.param("/v1/classes/{id}/roster", {"limit": 101}, id="limit-101"),
        pytest.param("/v1/classes/{id}/roster", {"offset": -1}, id="offset-negative"),
    ],
)
async def test_roster_rejects_bad_requests_with_400(client, headers, path, query) -> None:
    klass = await create_class(client, headers)

    response = await client.get(
        path.format(id=klass["id"]), headers=with_correlation(headers), query_string=query
    )

    await problem_of(response, 400, "VALIDATION_ERROR")
