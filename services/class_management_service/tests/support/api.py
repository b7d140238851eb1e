"""The tests' one HTTP layer: requests and response checks over the Quart test client (the
app in the test's process) and httpx (a served process), through one adapter.

``send`` makes a request with either client; ``reply_of`` reads either client's response
the same way. Every helper asserts what it relies on (status codes, content types), so that
a failing set-up step fails loudly where it happened instead of somewhere later in the test.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from quart.typing import TestClientProtocol

# A client of the API: the app's Quart test client, or httpx against a served process.
Client = TestClientProtocol | httpx.AsyncClient

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "correlation_id"}
CLASS_FIELDS = {
    "id",
    "name",
    "course_code",
    "student_count",
    "created_at",
    "updated_at",
    "version",
    "status",
}
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


def user_headers(
    user_id: str | None = None, correlation_id: str | None = None, **extra: str
) -> dict[str, str]:
    """Headers of a caller: a fresh user (unless given), a fresh correlation id (unless
    given) and any ``extra`` headers."""
    return {
        "X-User-ID": user_id or f"teacher-{uuid.uuid4().hex[:8]}",
        "X-Correlation-ID": correlation_id or str(uuid.uuid4()),
        **extra,
    }


def caller(headers_or_user: Mapping[str, str] | str) -> Mapping[str, str]:
    """A caller's headers, given as headers or as a user id."""
    if isinstance(headers_or_user, str):
        return user_headers(headers_or_user)
    return headers_or_user


def with_correlation(headers: Mapping[str, str], correlation_id: str | None = None) -> dict:
    """The same caller with a new correlation id (one per request that causes an event)."""
    return {**headers, "X-Correlation-ID": correlation_id or str(uuid.uuid4())}


def etag(version: int) -> str:
    return f'"{version}"'


@dataclass(frozen=True)
class Reply:
    """A response as the checks read it, whichever client received it."""

    where: str  # "METHOD url -> " when the client knows the request, else ""
    status: int
    mimetype: str
    headers: Mapping[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


async def reply_of(response: Any) -> Reply:
    """The adapter: a Quart test response or an ``httpx.Response`` as a ``Reply``."""
    if isinstance(response, httpx.Response):
        content_type = response.headers.get("content-type", "")
        return Reply(
            where=f"{response.request.method} {response.request.url} -> ",
            status=response.status_code,
            mimetype=content_type.split(";")[0].strip(),
            headers=response.headers,
            text=response.text,
        )
    return Reply(
        where="",
        status=response.status_code,
        mimetype=response.mimetype,
        headers=response.headers,
        text=await response.get_data(as_text=True),
    )


async def json_of(response: Any, status: int) -> Any:
    """The JSON body of a response that must have ``status``."""
    reply = await reply_of(response)
    assert reply.status == status, (
        f"{reply.where}expected {status}, got {reply.status}: {reply.text[:2000]}"
    )
    assert reply.mimetype == "application/json", reply.mimetype
    return reply.json()


async def problem_of(
    response: Any, status: int | None = None, code: str | None = None
) -> dict[str, Any]:
    """Check an RFC 9457 problem response (of ``status``, if given) and return its body."""
    reply = await reply_of(response)
    raw = reply.text
    if status is not None:
        assert reply.status == status, (
            f"{reply.where}expected {status}, got {reply.status}: {raw[:2000]}"
        )
    assert reply.mimetype == PROBLEM_CONTENT_TYPE, f"{reply.where}{reply.mimetype}: {raw[:500]}"
    for marker in LEAK_MARKERS:
        assert marker not in raw, f"{reply.where}response leaks {marker!r}: {raw}"
    body: dict[str, Any] = reply.json()
    assert PROBLEM_FIELDS <= set(body), body
    assert set(body) <= PROBLEM_FIELDS | {"errors"}, body
    assert body["status"] == reply.status
    assert body["type"].startswith("https://"), body["type"]
    assert body["title"] and body["detail"]
    assert uuid.UUID(body["correlation_id"])
    assert body["correlation_id"] == reply.headers["X-Correlation-ID"]
    if code is not None:
        assert body["code"] == code, body
    if "errors" in body:
        for error in body["errors"]:  # a field's error, or an import row's
            assert set(error) in ({"loc", "msg", "type"}, {"row", "field", "code", "msg"}), error
    return body


def error_locations(problem: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(error["loc"]) for error in problem.get("errors") or ()]


# -- requests --------------------------------------------------------------------------


async def send(
    client: Client,
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: Any = None,
    query: Mapping[str, Any] | None = None,
) -> Any:
    """One request with either client; ``body`` (when not None) is sent as JSON."""
    extra: dict[str, Any] = {"json": body} if body is not None else {}
    if isinstance(client, httpx.AsyncClient):
        return await client.request(
            method, path, headers=dict(headers), params=dict(query or {}), **extra
        )
    return await client.open(
        path, method=method, headers=dict(headers), query_string=dict(query or {}), **extra
    )


async def get_ok(
    client: Client,
    path: str,
    headers: Mapping[str, str],
    query: Mapping[str, Any] | None = None,
) -> Any:
    return await json_of(await send(client, "GET", path, headers, query=query), 200)


async def create_class(
    client: Client,
    headers: Mapping[str, str] | str,
    name: str = "9A",
    course_code: str = "ENG5",
) -> dict[str, Any]:
    """A class of the caller (headers, or a user id), which must be created."""
    response = await send(
        client,
        "POST",
        "/v1/classes",
        with_correlation(caller(headers)),
        body={"name": name, "course_codes": [course_code]},
    )
    return dict(await json_of(response, 201))


async def set_class_status(
    client: Client, headers: Mapping[str, str] | str, class_id: str, status: str
) -> dict[str, Any]:
    """The caller's class archived or restored (``status``), which must succeed."""
    path = f"/v1/classes/{class_id}"
    response = await send(
        client, "PUT", path, with_correlation(caller(headers)), {"status": status}
    )
    return dict(await json_of(response, 200))


async def create_student(
    client: Client,
    headers: Mapping[str, str] | str,
    first_name: str = "Ada",
    last_name: str = "Lovelace",
    email: str | None = None,
    class_ids: Iterable[str] = (),
    legal_full_name: str | None = None,
) -> dict[str, Any]:
    """A student of the caller (headers, or a user id), which must be created."""
    person_name: dict[str, str] = {"first_name": first_name, "last_name": last_name}
    if legal_full_name is not None:
        person_name["legal_full_name"] = legal_full_name
    body: dict[str, Any] = {"person_name": person_name, "class_ids": list(class_ids)}
    if email is not None:
        body["email"] = email
    response = await send(
        client, "POST", "/v1/classes/students", with_correlation(caller(headers)), body=body
    )
    return dict(await json_of(response, 201))


async def link_essay(client: Client, headers: Mapping[str, str] | str, student_id: str) -> str:
    essay_id = str(uuid.uuid4())
    path = f"/v1/classes/students/{student_id}/essays/{essay_id}"
    await json_of(await send(client, "PUT", path, caller(headers)), 201)
    return essay_id


async def metric_value(client: Client, name: str, **labels: str) -> float:
    """One sample of the Prometheus text at /metrics (0 when it is absent)."""
    reply = await reply_of(await send(client, "GET", "/metrics", {}))
    assert reply.status == 200, reply.text
    wanted = name + (
        "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
    )
    for line in reply.text.splitlines():
        if line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        if sample == wanted:
            return float(value)
    return 0.0


async def state_in_event_terms(
    client: Client, headers: Mapping[str, str], class_ids: Iterable[str], student_ids: Iterable[str]
) -> dict[str, Any]:
    """Each aggregate as the API shows it, named as its events name it (None: deleted): what
    a consumer rebuilding state from the topics must end with."""
    state: dict[str, Any] = {}
    for class_id in class_ids:
        reply = await reply_of(await send(client, "GET", f"/v1/classes/{class_id}", headers))
        assert reply.status in (200, 404), reply.text
        body = reply.json() if reply.status == 200 else None
        state[class_id] = body and {
            "class_designation": body["name"],
            "course_codes": [body["course_code"]],
            "student_count": body["student_count"],
            "version": body["version"],
        }
    for student_id in student_ids:
        path = f"/v1/classes/students/{student_id}"
        reply = await reply_of(await send(client, "GET", path, headers))
        assert reply.status in (200, 404), reply.text
        body = reply.json() if reply.status == 200 else None
        state[student_id] = body and {
            "first_name": body["first_name"],
            "last_name": body["last_name"],
            "legal_full_name": body["legal_full_name"],
            "student_email": body["email"],
            "class_ids": body["class_ids"],
            "version": body["version"],
        }
    return state
