"""Headers that must come once, and the headers every response carries."""

from __future__ import annotations

import pytest
from werkzeug.datastructures import Headers

from services.class_management_service.tests.support.api import (
    create_class,
    json_of,
    problem_of,
)
from services.class_management_service.tests.support.database import outbox_count

REPEATABLE_ONCE = [
    ("X-User-ID", "teacher-x"),
    ("Authorization", "Bearer a.b.c"),
    ("X-Correlation-ID", "6f1c1b1e-3c2a-4a7e-9a53-0c3f5d1e2b4a"),
    ("If-Match", '"1"'),
    ("If-None-Match", '"1"'),
    ("Idempotency-Key", "k-1"),
]


@pytest.mark.relay_off  # counts the outbox rows
@pytest.mark.parametrize(("name", "value"), REPEATABLE_ONCE, ids=[n for n, _ in REPEATABLE_ONCE])
async def test_a_header_that_counts_once_is_refused_when_repeated(
    client, headers, engine, name, value
) -> None:
    own = await create_class(client, headers)
    events_before = await outbox_count(engine)
    for spelling in (name, name.lower()):  # names are case-insensitive: still one header
        sent = Headers(list(headers.items()))
        if name in sent:
            sent.add(spelling, "another-" + sent[name])
        else:
            sent.add(name, value)
            sent.add(spelling, value)
        response = await client.put(
            f"/v1/classes/{own['id']}", json={"name": "renamed"}, headers=sent
        )
        problem = await problem_of(response, 400, "DUPLICATE_HEADER")
        assert name in problem["detail"]
    assert await outbox_count(engine) == events_before
    unchanged = await json_of(await client.get(f"/v1/classes/{own['id']}", headers=headers), 200)
    assert unchanged["name"] == own["name"]


async def test_every_response_is_never_cached_nor_sniffed(client, headers) -> None:
    created = await client.post(
        "/v1/classes", json={"name": "9A", "course_codes": ["ENG5"]}, headers=headers
    )
    responses = [
        created,
        await client.get("/v1/classes", headers=headers),
        await client.get("/v1/classes/00000000-0000-0000-0000-000000000000", headers=headers),
        await client.get("/v1/classes"),  # 401
        await client.get("/v1/nowhere", headers=headers),  # 404 of the router
        await client.get("/healthz/live"),
    ]
    for response in responses:
        assert response.headers["Cache-Control"] == "no-store", response.status_code
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.status_code
