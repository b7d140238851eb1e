"""Shortcuts for the API tests: set-up requests that must succeed, and response checks.

Every helper asserts what it relies on (status codes, content types), so that a failing
set-up step fails loudly where it happened instead of somewhere later in the test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from quart.typing import TestClientProtocol
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "correlation_id"}
CLASS_FIELDS = {"id", "name", "course_code", "student_count", "created_at", "updated_at", "version"}
STUDENT_FIELDS = {
    "id",
    "full_name",
    "first_name",
    "last_name",
    "legal_full_name",
    "email",
    "class_ids",
    "created_at",
    "updated_at",
    "version",
}
ROSTER_FIELDS = {"student_id", "first_name", "last_name", "legal_full_name", "email"}
PAGINATION_FIELDS = {"limit", "offset", "returned", "total"}
# Text that only appears in a response when an exception leaked out of the service.
LEAK_MARKERS = ("Traceback", 'File "', "sqlalchemy", "asyncpg", "psycopg", '.py", line')


def user_headers(user_id: str | None = None, correlation_id: str | None = None) -> dict[str, str]:
    """Headers of a caller: a fresh user (unless given) and a fresh correlation id."""
    return {
        "X-User-ID": user_id or f"teacher-{uuid.uuid4().hex[:8]}",
        "X-Correlation-ID": correlation_id or str(uuid.uuid4()),
    }


def with_correlation(headers: Mapping[str, str], correlation_id: str | None = None) -> dict:
    """The same caller with a new correlation id (one per request that causes an event)."""
    return {**headers, "X-Correlation-ID": correlation_id or str(uuid.uuid4())}


def etag(version: int) -> str:
    return f'"{version}"'


async def json_of(response: Any, status: int) -> Any:
    """The JSON body of a response that must have ``status``."""
    body = await response.get_data(as_text=True)
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {body}"
    assert response.mimetype == "application/json", response.mimetype
    return await response.get_json()


async def problem_of(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """Check an RFC 9457 problem response and return its body."""
    raw = await response.get_data(as_text=True)
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {raw}"
    assert response.mimetype == PROBLEM_CONTENT_TYPE, response.mimetype
    for marker in LEAK_MARKERS:
        assert marker not in raw, f"response leaks {marker!r}: {raw}"
    body = await response.get_json()
    assert PROBLEM_FIELDS <= set(body), body
    assert set(body) <= PROBLEM_FIELDS | {"errors"}, body
    assert body["status"] == status
    assert body["type"].startswith("https://"), body["type"]
    assert body["title"] and body["detail"]
    assert uuid.UUID(body["correlation_id"])
    assert body["correlation_id"] == response.headers["X-Correlation-ID"]
    if code is not None:
        assert body["code"] == code, body
    if "errors" in body:
        for error in body["errors"]:
            assert set(error) == {"loc", "msg", "type"}, error
    return body


def error_locations(problem: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(error["loc"]) for error in problem.get("errors") or ()]


# -- set-up requests ---------------------------------------------------------------------


async def create_class(
    client: TestClientProtocol,
    headers: Mapping[str, str],
    name: str = "9A",
    course_code: str = "ENG5",
) -> dict[str, Any]:
    response = await client.post(
        "/v1/classes",
        json={"name": name, "course_codes": [course_code]},
        headers=with_correlation(headers),
    )
    return await json_of(response, 201)


async def create_student(
    client: TestClientProtocol,
    headers: Mapping[str, str],
    first_name: str = "Ada",
    last_name: str = "Lovelace",
    email: str | None = None,
    class_ids: Iterable[str] = (),
    legal_full_name: str | None = None,
) -> dict[str, Any]:
    person_name: dict[str, str] = {"first_name": first_name, "last_name": last_name}
    if legal_full_name is not None:
        person_name["legal_full_name"] = legal_full_name
    body: dict[str, Any] = {"person_name": person_name, "class_ids": list(class_ids)}
    if email is not None:
        body["email"] = email
    response = await client.post(
        "/v1/classes/students", json=body, headers=with_correlation(headers)
    )
    return await json_of(response, 201)


async def link_essay(
    client: TestClientProtocol, headers: Mapping[str, str], student_id: str
) -> str:
    essay_id = str(uuid.uuid4())
    response = await client.put(
        f"/v1/classes/students/{student_id}/essays/{essay_id}", headers=headers
    )
    await json_of(response, 201)
    return essay_id


async def send(
    client: TestClientProtocol,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: Any = None,
    query: Mapping[str, Any] | None = None,
) -> Any:
    """One request; ``body`` (when not None) is sent as JSON."""
    extra: dict[str, Any] = {"json": body} if body is not None else {}
    return await client.open(
        path, method=method, headers=dict(headers), query_string=dict(query or {}), **extra
    )


async def get_ok(
    client: TestClientProtocol,
    path: str,
    headers: Mapping[str, str],
    query: Mapping[str, Any] | None = None,
) -> Any:
    response = await client.get(path, headers=headers, query_string=dict(query or {}))
    return await json_of(response, 200)


async def outbox_count(engine: AsyncEngine, aggregate_id: str | None = None) -> int:
    """Rows in the outbox (of one aggregate, if given): every change writes exactly one.

    Only a count of what requests wrote with ``@pytest.mark.relay_off``: a relay deletes
    each row once published."""
    async with engine.connect() as connection:
        if aggregate_id is None:
            return int(await connection.scalar(text("SELECT count(*) FROM event_outbox")))
        return int(
            await connection.scalar(
                text("SELECT count(*) FROM event_outbox WHERE aggregate_id = :id"),
                {"id": aggregate_id},
            )
        )
