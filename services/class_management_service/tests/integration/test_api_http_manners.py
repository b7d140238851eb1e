"""HTTP manners through the real app: strict query parameters, OPTIONS with Allow, a
challenge on every 401, trailing slashes on item URLs, add/remove overlap. (Bodiless 204
and 304 are checked over a real socket in tests/reliability/test_http_manners_wire.py:
Quart's test client adds a Content-Type of its own.)"""

from __future__ import annotations

import uuid

import pytest

from services.class_management_service.tests.support.api import (
    create_class,
    create_student,
    error_locations,
    etag,
    get_ok,
    json_of,
    problem_of,
    send,
)
from services.class_management_service.tests.support.database import outbox_count

UNKNOWN_QUERIES = [
    ("GET", "/v1/classes", {"name": "9A"}),
    ("GET", "/v1/classes", {"limit": "5", "sortt": "name"}),
    ("GET", "/v1/classes/students", {"first_name": "Ada"}),
    ("GET", "/v1/classes/{class_id}", {"expand": "students"}),  # a route without a query model
    ("GET", "/v1/classes/{class_id}/roster", {"order": "name"}),
    ("PUT", "/v1/classes/{class_id}", {"dry_run": "1"}),
]


@pytest.mark.parametrize(("method", "path", "query"), UNKNOWN_QUERIES)
async def test_an_unknown_query_parameter_is_400_naming_it(
    client, headers, method, path, query
) -> None:
    own = await create_class(client, headers)
    body = {"name": "renamed"} if method == "PUT" else None
    response = await send(
        client, method, path.format(class_id=own["id"]), headers, body=body, query=query
    )
    problem = await problem_of(response, 400, "VALIDATION_ERROR")
    known = {"limit", "offset"}
    unknown = [name for name in query if name not in known]
    assert error_locations(problem) == [("query", name) for name in unknown]
    for name in unknown:
        assert name in problem["detail"]
    assert (await get_ok(client, f"/v1/classes/{own['id']}", headers))["name"] == own["name"]


async def test_declared_query_parameters_still_work(client, headers) -> None:
    await create_class(client, headers, course_code="ENG5")
    await create_class(client, headers, course_code="SV1")
    listed = await get_ok(client, "/v1/classes", headers, query={"course_code": "SV1", "limit": 5})
    assert [item["course_code"] for item in listed["classes"]] == ["SV1"]


@pytest.mark.relay_off  # counts the outbox rows
async def test_the_same_class_added_and_removed_is_400(client, headers, engine) -> None:
    klass = await create_class(client, headers)
    student = await create_student(client, headers)
    events_before = await outbox_count(engine)
    response = await client.put(
        f"/v1/classes/students/{student['id']}",
        json={"add_class_ids": [klass["id"]], "remove_class_ids": [klass["id"]]},
        headers=headers,
    )
    problem = await problem_of(response, 400, "VALIDATION_ERROR")
    assert klass["id"] in problem["errors"][0]["msg"], problem
    assert await outbox_count(engine) == events_before
    unchanged = await get_ok(client, f"/v1/classes/students/{student['id']}", headers)
    assert unchanged["class_ids"] == [] and unchanged["version"] == student["version"]


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/v1/classes", {"GET", "POST"}),
        ("/v1/classes/{class_id}", {"GET", "PUT", "DELETE"}),
        ("/v1/classes/students/{class_id}/essays/{class_id}", {"PUT"}),
    ],
)
async def test_options_answers_allow_without_an_identity(client, path, methods) -> None:
    response = await client.options(path.format(class_id=uuid.uuid4()))  # no X-User-ID
    assert response.status_code == 200, await response.get_data()
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert methods | {"OPTIONS"} <= allowed, allowed


async def test_a_401_for_a_missing_user_header_asks_for_it(client) -> None:
    response = await client.get("/v1/classes")
    await problem_of(response, 401, "AUTHENTICATION_REQUIRED")
    assert response.headers["WWW-Authenticate"].startswith("X-User-ID"), response.headers


@pytest.mark.relay_off  # counts the outbox rows
async def test_item_urls_with_a_trailing_slash_behave_as_without(client, headers, engine) -> None:
    klass = await create_class(client, headers)
    student = await create_student(client, headers, class_ids=[klass["id"]])
    class_path = f"/v1/classes/{klass['id']}/"
    student_path = f"/v1/classes/students/{student['id']}/"

    for path in (class_path, student_path, "/v1/classes/", "/v1/classes/students/"):
        without = await get_ok(client, path.rstrip("/"), headers)
        assert await get_ok(client, path, headers) == without
    roster = await get_ok(client, f"/v1/classes/{klass['id']}/roster/", headers)
    assert [entry["student_id"] for entry in roster["students"]] == [student["id"]]
    current = (await get_ok(client, class_path, headers))["version"]  # 2: its student joined
    renamed = await client.put(
        class_path, json={"name": "renamed"}, headers={**headers, "If-Match": etag(current)}
    )
    assert (await json_of(renamed, 200))["name"] == "renamed"
    missing = await send(client, "GET", f"/v1/classes/{uuid.uuid4()}/", headers)
    await problem_of(missing, 404, "CLASS_NOT_FOUND")
    events_before = await outbox_count(engine)
    deleted = await client.delete(student_path, headers=headers)
    assert deleted.status_code == 204
    # The student's deleted event, and its class's update (one student fewer).
    assert await outbox_count(engine) == events_before + 2
