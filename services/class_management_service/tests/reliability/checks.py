"""What the reliability tests check, written once: database state, events, responses."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_FIELDS = {"type", "title", "status", "detail", "code", "correlation_id"}
LEAK_MARKERS = ("Traceback", 'File "', "sqlalchemy", "asyncpg", '.py", line')

# Every table's content, in a stable order. The outbox is seen through its id sequence,
# which every event ever written advanced: the relay deletes rows once they are published
# (and retries change them), but a request must not add events.
_TABLE_DIGESTS = {
    "classes": "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM classes t",
    "students": "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM students t",
    "class_student_association": (
        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.class_id, t.student_id), ''))"
        " FROM class_student_association t"
    ),
    "essay_student_associations": (
        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), ''))"
        " FROM essay_student_associations t"
    ),
    "event_outbox": "SELECT last_value || ':' || is_called FROM event_outbox_id_seq",
}


async def database_digest(engine: AsyncEngine) -> dict[str, str]:
    """A digest per table: equal digests mean equal content."""
    async with engine.connect() as connection:
        return {
            table: str(await connection.scalar(text(sql))) for table, sql in _TABLE_DIGESTS.items()
        }


async def outbox_rows(engine: AsyncEngine, where: str = "true", **params: Any) -> list[Any]:
    async with engine.connect() as connection:
        result = await connection.execute(
            text(
                "SELECT id, event_id, event_type, aggregate_id, payload, attempts, last_error,"
                " created_at, next_attempt_at, parked_at"
                f" FROM event_outbox WHERE {where} ORDER BY id"
            ),
            params,
        )
        return list(result)


async def pending_outbox(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int(
            await connection.scalar(
                text("SELECT count(*) FROM event_outbox WHERE parked_at IS NULL")
            )
        )


def check_problem(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """An RFC 9457 problem response without leaked internals; returns its body."""
    raw = response.text
    where = f"{response.request.method} {response.request.url}"
    assert response.headers.get("content-type", "").startswith(PROBLEM_CONTENT_TYPE), (
        f"{where}: {response.status_code} {response.headers.get('content-type')}: {raw[:500]}"
    )
    if status is not None:
        assert response.status_code == status, f"{where}: {response.status_code}: {raw[:500]}"
    for marker in LEAK_MARKERS:
        assert marker not in raw, f"{where}: the response leaks {marker!r}: {raw[:500]}"
    body = response.json()
    assert PROBLEM_FIELDS <= set(body), body
    assert body["status"] == response.status_code, body
    return body


def user(user_id: str, **extra: str) -> dict[str, str]:
    return {"X-User-ID": user_id, "X-Correlation-ID": str(uuid.uuid4()), **extra}


async def create_class(
    client: httpx.AsyncClient, user_id: str, name: str = "9A", course: str = "ENG5"
) -> dict[str, Any]:
    response = await client.post(
        "/v1/classes", json={"name": name, "course_codes": [course]}, headers=user(user_id)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_student(
    client: httpx.AsyncClient,
    user_id: str,
    first: str = "Ada",
    last: str = "Lovelace",
    email: str | None = None,
    class_ids: Iterable[str] = (),
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "person_name": {"first_name": first, "last_name": last},
        "class_ids": list(class_ids),
    }
    if email is not None:
        body["email"] = email
    response = await client.post("/v1/classes/students", json=body, headers=user(user_id))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def metric_value(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """One sample of the Prometheus text at /metrics (0 when it is absent)."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    wanted = name + (
        "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""
    )
    for line in response.text.splitlines():
        if line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        if sample == wanted:
            return float(value)
    return 0.0
