"""Protocol-level behaviour: authentication, correlation ids, problem responses, bodies the
service must refuse (malformed, too large, not JSON), and the operational endpoints.

Client mistakes are always 4xx problem responses, never a 500, never a stack trace.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

import pytest

from services.class_management_service.tests.support.api import (
    LEAK_MARKERS,
    create_class,
    create_student,
    get_ok,
    json_of,
    problem_of,
    send,
)
from services.class_management_service.tests.support.database import (
    outbox_count,
)
from services.class_management_service.tests.support.polling import wait_until

CLASS_BODY = {"name": "9A", "course_codes": ["ENG5"]}
STUDENT_BODY = {"person_name": {"first_name": "Ada", "last_name": "Lovelace"}}
ONE_MIB = 1024 * 1024

# Every /v1 route: (method, path template, JSON body or None).
V1_ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/classes", CLASS_BODY),
    ("GET", "/v1/classes", None),
    ("GET", "/v1/classes/{class_id}", None),
    ("PUT", "/v1/classes/{class_id}", {"name": "renamed"}),
    ("DELETE", "/v1/classes/{class_id}", None),
    ("GET", "/v1/classes/{class_id}/roster", None),
    ("POST", "/v1/classes/students", STUDENT_BODY),
    ("GET", "/v1/classes/students", None),
    ("GET", "/v1/classes/students/{student_id}", None),
    ("PUT", "/v1/classes/students/{student_id}", {"email": "x@example.com"}),
    ("DELETE", "/v1/classes/students/{student_id}", None),
    ("PUT", "/v1/classes/students/{student_id}/essays/{essay_id}", None),
    ("GET", "/v1/classes/students/{student_id}/essays", None),
]
# Routes that take a JSON body.
BODY_ROUTES = [route for route in V1_ROUTES if route[2] is not None]


def _route_id(route: tuple[str, str, Any]) -> str:
    return f"{route[0]} {route[1]}"


async def _fixtures(client: Any, headers: dict[str, str]) -> dict[str, str]:
    """A class and a student of the caller, to fill in path templates."""
    klass = await create_class(client, headers)
    student = await create_student(client, headers, class_ids=[klass["id"]])
    return {"class_id": klass["id"], "student_id": student["id"], "essay_id": str(uuid.uuid4())}


async def _snapshot(client: Any, headers: dict[str, str], ids: dict[str, str]) -> list[Any]:
    """What the caller can see of the fixtures: must not change after a refused request."""
    return [
        await get_ok(client, "/v1/classes", headers),
        await get_ok(client, "/v1/classes/students", headers),
        await get_ok(client, f"/v1/classes/{ids['class_id']}/roster", headers),
        await get_ok(client, f"/v1/classes/students/{ids['student_id']}/essays", headers),
    ]


# -- X-User-ID ---------------------------------------------------------------------------


@pytest.mark.relay_off  # counts the outbox rows
@pytest.mark.parametrize("route", V1_ROUTES, ids=_route_id)
async def test_every_v1_route_needs_a_user_id(client, headers, engine, route) -> None:
    method, template, body = route
    ids = await _fixtures(client, headers)
    before = await _snapshot(client, headers, ids)
    events_before = await outbox_count(engine)
    path = template.format(**ids)

    missing = await send(
        client, method, path, {"X-Correlation-ID": headers["X-Correlation-ID"]}, body
    )
    blank = await send(client, method, path, {"X-User-ID": "   "}, body)

    problem = await problem_of(missing, 401, "AUTHENTICATION_REQUIRED")
    assert problem["correlation_id"] == headers["X-Correlation-ID"]
    await problem_of(blank, 401, "AUTHENTICATION_REQUIRED")
    assert await _snapshot(client, headers, ids) == before
    assert await outbox_count(engine) == events_before


@pytest.mark.parametrize(
    "bad_user_id", ["u" * 256, "bad\x01user"], ids=["too-long", "control-character"]
)
async def test_an_unusable_user_id_is_a_4xx_problem(client, headers, bad_user_id) -> None:
    response = await client.get("/v1/classes", headers={"X-User-ID": bad_user_id})

    body = await problem_of(response, 400)
    assert body["code"] == "INVALID_USER_ID"
    assert (await get_ok(client, "/v1/classes", headers))["pagination"]["total"] == 0


async def test_user_ids_are_trimmed_consistently(client, headers, user_id) -> None:
    created = await create_class(client, {**headers, "X-User-ID": f"  {user_id}  "})

    body = await get_ok(client, f"/v1/classes/{created['id']}", {"X-User-ID": user_id})

    assert body["id"] == created["id"]


# -- X-Correlation-ID --------------------------------------------------------------------


async def test_correlation_id_is_echoed(client, headers) -> None:
    created = await create_class(client, headers)

    response = await client.get(f"/v1/classes/{created['id']}", headers=headers)

    await json_of(response, 200)
    assert response.headers["X-Correlation-ID"] == headers["X-Correlation-ID"]


async def test_correlation_id_is_generated_when_absent(client, user_id) -> None:
    ok = await client.get("/v1/classes", headers={"X-User-ID": user_id})
    missing = await client.get(f"/v1/classes/{uuid.uuid4()}", headers={"X-User-ID": user_id})

    await json_of(ok, 200)
    assert uuid.UUID(ok.headers["X-Correlation-ID"])
    problem = await problem_of(missing, 404, "CLASS_NOT_FOUND")
    assert uuid.UUID(problem["correlation_id"])
    assert problem["correlation_id"] != ok.headers["X-Correlation-ID"]


# -- problem responses -------------------------------------------------------------------


async def test_problem_responses_have_the_rfc9457_shape(client, headers) -> None:
    response = await client.get(f"/v1/classes/{uuid.uuid4()}", headers=headers)

    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = json.loads(await response.get_data(as_text=True))
    assert set(body) == {"type", "title", "status", "detail", "code", "correlation_id"}
    assert body["type"].startswith("https://") and body["type"].endswith("class-not-found")
    assert body["status"] == 404
    assert body["code"] == "CLASS_NOT_FOUND"
    assert body["correlation_id"] == headers["X-Correlation-ID"]


async def test_validation_problems_list_errors_per_field(client, headers) -> None:
    response = await client.post(
        "/v1/classes/students",
        json={"person_name": {"first_name": "", "last_name": "L"}, "email": "bad"},
        headers=headers,
    )

    body = await problem_of(response, 400, "VALIDATION_ERROR")
    locations = {tuple(error["loc"]) for error in body["errors"]}
    assert ("person_name", "first_name") in locations
    assert ("email",) in locations
    assert all(error["msg"] and error["type"] for error in body["errors"])
    # The rejected input is not echoed back.
    assert "bad" not in json.dumps(body["errors"])
    assert (await get_ok(client, "/v1/classes/students", headers))["pagination"]["total"] == 0


async def test_unknown_routes_are_404_problems(client, headers) -> None:
    response = await client.get(f"/v1/nothing-here/{uuid.uuid4()}", headers=headers)

    await problem_of(response, 404, "NOT_FOUND")
    assert (await get_ok(client, "/v1/classes", headers))["pagination"]["total"] == 0


async def test_unsupported_methods_are_405_problems_with_allow(client, headers) -> None:
    created = await create_class(client, headers)

    response = await client.patch(
        f"/v1/classes/{created['id']}", json={"name": "x"}, headers=headers
    )

    await problem_of(response, 405, "METHOD_NOT_ALLOWED")
    assert "PUT" in response.headers["Allow"]
    assert await get_ok(client, f"/v1/classes/{created['id']}", headers) == created


# -- malformed JSON ----------------------------------------------------------------------


@pytest.mark.relay_off  # counts the outbox rows
@pytest.mark.parametrize("route", BODY_ROUTES, ids=_route_id)
@pytest.mark.parametrize(
    "raw",
    [b'{"name": "9A", ', b"{'name': 'single quotes'}", b"\xff\xfe not utf-8", b"[" * 100_000],
    ids=["truncated", "not-json", "not-utf8", "deeply-nested"],
)
async def test_malformed_json_is_400_malformed_json(client, headers, engine, route, raw) -> None:
    method, template, _ = route
    ids = await _fixtures(client, headers)
    before = await _snapshot(client, headers, ids)
    events_before = await outbox_count(engine)

    response = await client.open(
        template.format(**ids),
        method=method,
        data=raw,
        headers={**headers, "Content-Type": "application/json"},
    )

    await problem_of(response, 400, "MALFORMED_JSON")
    assert await _snapshot(client, headers, ids) == before
    assert await outbox_count(engine) == events_before


@pytest.mark.parametrize("raw", [b"[]", b"null", b'"9A"', b"42"], ids=str)
async def test_json_that_is_not_an_object_is_400(client, headers, raw) -> None:
    response = await client.post(
        "/v1/classes", data=raw, headers={**headers, "Content-Type": "application/json"}
    )

    await problem_of(response, 400)
    assert (await get_ok(client, "/v1/classes", headers))["pagination"]["total"] == 0


@pytest.mark.parametrize("path", ["/v1/classes", "/v1/classes/students"])
async def test_an_empty_json_body_is_400(client, headers, path) -> None:
    response = await client.post(
        path, data=b"", headers={**headers, "Content-Type": "application/json"}
    )

    assert 400 <= response.status_code < 500
    await problem_of(response, response.status_code)
    assert (await get_ok(client, path, headers))["pagination"]["total"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"name": ["9A"], "course_codes": ["ENG5"]},
        {"name": {"$ne": 1}, "course_codes": ["ENG5"]},
        {"name": "9A", "course_codes": [None]},
        {"name": "9A", "course_codes": [5]},
        {"name": "9A", "course_codes": ["ENG5"] * 1000},
        {"name": True, "course_codes": ["ENG5"]},
    ],
    ids=["name-list", "name-object", "code-null", "code-number", "many-codes", "name-bool"],
)
async def test_odd_class_bodies_are_400_not_500(client, headers, body) -> None:
    response = await client.post("/v1/classes", json=body, headers=headers)

    await problem_of(response, 400)
    assert (await get_ok(client, "/v1/classes", headers))["pagination"]["total"] == 0


async def test_non_ascii_names_round_trip(client, headers) -> None:
    klass = await create_class(client, headers, name="Åk 9 · svenska 🇸🇪")
    student = await create_student(client, headers, "Zoë", "Ñúñez-Øst", class_ids=[klass["id"]])

    assert (await get_ok(client, f"/v1/classes/{klass['id']}", headers))["name"] == klass["name"]
    roster = await get_ok(client, f"/v1/classes/{klass['id']}/roster", headers)
    assert roster["students"][0]["last_name"] == student["last_name"] == "Ñúñez-Øst"


@pytest.mark.parametrize("if_match", ['"99999999999"', '"1", "2"', 'W/"x"'])
async def test_odd_if_match_values_are_412_not_500(client, headers, if_match) -> None:
    created = await create_class(client, headers)

    response = await client.put(
        f"/v1/classes/{created['id']}",
        json={"name": "x"},
        headers={**headers, "If-Match": if_match},
    )

    await problem_of(response, 412, "PRECONDITION_FAILED")
    assert await get_ok(client, f"/v1/classes/{created['id']}", headers) == created


# -- body size and media type ------------------------------------------------------------


@pytest.mark.parametrize("route", BODY_ROUTES, ids=_route_id)
async def test_a_body_over_one_mib_is_413(client, headers, engine, route) -> None:
    method, template, _ = route
    ids = await _fixtures(client, headers)
    before = await _snapshot(client, headers, ids)
    payload = json.dumps({"name": "x" * (2 * ONE_MIB), "course_codes": ["ENG5"]}).encode()

    response = await client.open(
        template.format(**ids),
        method=method,
        data=payload,
        headers={**headers, "Content-Type": "application/json"},
    )

    await problem_of(response, 413, "PAYLOAD_TOO_LARGE")
    assert await _snapshot(client, headers, ids) == before


async def test_a_large_body_under_the_limit_is_validated_not_refused(client, headers) -> None:
    payload = json.dumps({"name": "x" * (ONE_MIB - 1024), "course_codes": ["ENG5"]}).encode()

    response = await client.post(
        "/v1/classes", data=payload, headers={**headers, "Content-Type": "application/json"}
    )

    await problem_of(response, 400, "VALIDATION_ERROR")
    assert (await get_ok(client, "/v1/classes", headers))["pagination"]["total"] == 0


@pytest.mark.parametrize("route", BODY_ROUTES, ids=_route_id)
@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("text/plain", json.dumps(CLASS_BODY)),
        ("application/x-www-form-urlencoded", "name=9A&course_codes=ENG5"),
        ("application/xml", "<class><name>9A</name></class>"),
        (None, json.dumps(CLASS_BODY)),
    ],
    ids=["text", "form", "xml", "no-content-type"],
)
async def test_a_body_that_is_not_json_is_415(
    client, headers, engine, route, content_type, raw
) -> None:
    method, template, _ = route
    ids = await _fixtures(client, headers)
    before = await _snapshot(client, headers, ids)
    request_headers = dict(headers)
    if content_type is not None:
        request_headers["Content-Type"] = content_type

    response = await client.open(
        template.format(**ids), method=method, data=raw.encode(), headers=request_headers
    )

    await problem_of(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert await _snapshot(client, headers, ids) == before


async def test_json_with_a_charset_parameter_is_accepted(client, headers) -> None:
    response = await client.post(
        "/v1/classes",
        data=json.dumps(CLASS_BODY).encode(),
        headers={**headers, "Content-Type": "application/json; charset=utf-8"},
    )

    created = await json_of(response, 201)
    assert await get_ok(client, f"/v1/classes/{created['id']}", headers) == created


# -- operational endpoints ---------------------------------------------------------------


async def test_healthz_reports_every_dependency_ok(client) -> None:
    # The relay connects to the broker in the background right after start-up: until then
    # /healthz is 200 "degraded", naming the relay.
    async def all_ok() -> bool:
        response = await client.get("/healthz")
        return response.status_code == 200 and (await response.get_json())["status"] == "ok"

    await wait_until(all_ok, timeout=60)
    body = await json_of(await client.get("/healthz"), 200)
    assert body["status"] == "ok"
    assert set(body["dependencies"]) == {"postgres", "redis", "kafka", "relay"}
    assert {health["status"] for health in body["dependencies"].values()} == {"ok"}


async def test_metrics_label_routes_by_template_never_by_id(client, headers) -> None:
    klass = await create_class(client, headers)
    student = await create_student(client, headers, class_ids=[klass["id"]])
    essay_id = str(uuid.uuid4())
    missing = str(uuid.uuid4())
    await get_ok(client, f"/v1/classes/{klass['id']}", headers)
    await get_ok(client, f"/v1/classes/{klass['id']}/roster", headers)
    await json_of(
        await client.put(
            f"/v1/classes/students/{student['id']}/essays/{essay_id}", headers=headers
        ),
        201,
    )
    await client.get(f"/v1/classes/{missing}", headers=headers)
    await client.get(f"/v1/unrouted/{missing}", headers=headers)
    await client.get("/v1/classes/not-a-uuid-at-all", headers=headers)

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = await response.get_data(as_text=True)
    routes = set(re.findall(r'cms_http_requests_total\{[^}]*route="([^"]*)"', text))
    assert {
        "/v1/classes",
        "/v1/classes/students",
        "/v1/classes/<class_id>",
        "/v1/classes/<class_id>/roster",
        "/v1/classes/students/<student_id>/essays/<essay_id>",
    } <= routes
    for raw in (klass["id"], student["id"], essay_id, missing, "not-a-uuid-at-all", "unrouted"):
        assert raw not in text
    uuid_pattern = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    assert not any(uuid_pattern.search(route) for route in routes), routes
    assert re.search(
        r'cms_http_requests_total\{method="GET",route="/v1/classes/<class_id>",status="404"\}',
        text,
    )


async def test_metrics_have_one_series_per_route_and_label_405_by_its_route(
    client, headers
) -> None:
    async def created_count() -> float:
        text = await (await client.get("/metrics")).get_data(as_text=True)
        found = re.search(
            r'cms_http_requests_total\{method="POST",route="/v1/classes",status="201"\} (\S+)',
            text,
        )
        return float(found.group(1)) if found else 0.0

    before = await created_count()
    body = {"name": "9A", "course_codes": ["ENG5"]}
    await json_of(await client.post("/v1/classes", json=body, headers=headers), 201)
    klass = await json_of(await client.post("/v1/classes/", json=body, headers=headers), 201)
    not_allowed = await client.patch(f"/v1/classes/{klass['id']}", json=body, headers=headers)
    assert not_allowed.status_code == 405

    text = await (await client.get("/metrics")).get_data(as_text=True)
    routes = set(re.findall(r'cms_http_requests_total\{[^}]*route="([^"]*)"', text))
    assert "/v1/classes/" not in routes and "/v1/classes/students/" not in routes, routes
    # Metrics are process-wide: other tests count too, so compare with before.
    assert await created_count() == before + 2
    assert re.search(
        r'cms_http_requests_total\{method="PATCH",route="/v1/classes/<class_id>",status="405"\}',
        text,
    )


async def test_the_access_line_of_a_problem_names_its_code(
    client, headers, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="services.class_management_service.access"):
        missing = await client.get(f"/v1/classes/{uuid.uuid4()}", headers=headers)
        assert missing.status_code == 404
        assert (await client.get("/healthz/live")).status_code == 200
    lines = {
        record.getMessage().split()[1]: record
        for record in caplog.records
        if record.name == "services.class_management_service.access"
    }
    problem = lines["/v1/classes/<class_id>"]
    assert getattr(problem, "code", None) == "CLASS_NOT_FOUND"
    assert " 404 CLASS_NOT_FOUND " in problem.getMessage()
    assert getattr(lines["/healthz/live"], "code", "missing") is None


async def test_openapi_document_is_served(client, headers) -> None:
    response = await client.get("/openapi.json")

    document = await json_of(response, 200)
    assert document["openapi"].startswith("3.")
    paths = set(document["paths"])
    assert {
        "/v1/classes",
        "/v1/classes/{class_id}",
        "/v1/classes/{class_id}/roster",
        "/v1/classes/students",
        "/v1/classes/students/{student_id}",
        "/v1/classes/students/{student_id}/essays",
        "/v1/classes/students/{student_id}/essays/{essay_id}",
    } <= paths
    assert (await get_ok(client, "/v1/classes", headers))["pagination"]["total"] == 0


async def test_no_response_leaks_internals(client, headers) -> None:
    """A sweep of bad requests over every route: none is a 500 or shows a stack trace."""
    ids = await _fixtures(client, headers)
    bad_ids = {"class_id": "x" * 70, "student_id": "'; DROP TABLE students; --", "essay_id": "0"}
    responses = []
    for method, template, body in V1_ROUTES:
        responses.append(await send(client, method, template.format(**bad_ids), headers, body))
        responses.append(
            await send(
                client,
                method,
                template.format(**ids),
                headers,
                {"unexpected": "x" * 300} if body is not None else None,
                {"limit": "1e9", "offset": "-0.5", "class_id": "x"},
            )
        )
    for response in responses:
        assert response.status_code < 500, await response.get_data(as_text=True)
        raw = await response.get_data(as_text=True)
        for marker in LEAK_MARKERS:
            assert marker not in raw
