"""Smuggled identities over a real socket, in both AUTH_MODEs: raw HTTP/1.1, so that no
client library folds or drops a repeated header on the way."""

from __future__ import annotations

import asyncio
import json
import uuid
from urllib.parse import urlsplit

import pytest

from services.class_management_service.tests.reliability.conftest import ServedInMode
from services.class_management_service.tests.support.database import database_digest
from services.class_management_service.tests.support.tokens import bearer

pytestmark = pytest.mark.timeout(120)


async def raw_request(base_url: str, lines: list[str], body: bytes = b"") -> tuple[int, dict]:
    """Send the request line and headers exactly as given; (status, JSON body)."""
    address = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        head = "\r\n".join([*lines, f"Content-Length: {len(body)}", "Connection: close", "", ""])
        writer.write(head.encode("latin-1") + body)
        await writer.drain()
        reply = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    status_line, _, rest = reply.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), json.loads(payload or b"null")


def _identity(mode: str, user_id: str) -> list[str]:
    if mode == "jwt":
        return [f"Authorization: {bearer(user_id)['Authorization']}"]
    return [f"X-User-ID: {user_id}"]


@pytest.mark.parametrize(
    "repeated",
    ["X-User-ID", "Authorization", "x-user-id", "X-Correlation-ID", "Idempotency-Key"],
)
async def test_a_repeated_identity_header_is_400_over_the_wire(
    served_in_mode: ServedInMode, served_engine, repeated: str
) -> None:
    victim, mallory = f"victim-{uuid.uuid4().hex[:8]}", f"mallory-{uuid.uuid4().hex[:8]}"
    values = {
        "x-user-id": (f"X-User-ID: {mallory}", f"x-user-id: {victim}"),
        "authorization": (
            f"Authorization: {bearer(mallory)['Authorization']}",
            f"authorization: {bearer(victim)['Authorization']}",
        ),
        "x-correlation-id": (f"X-Correlation-ID: {uuid.uuid4()}",) * 2,
        "idempotency-key": ("Idempotency-Key: k", "Idempotency-Key: k2"),
    }[repeated.lower()]
    identity = [
        line
        for line in _identity(served_in_mode.mode, mallory)
        if line.split(":")[0].lower() != repeated.lower()
    ]
    before = await database_digest(served_engine)
    status, problem = await raw_request(
        served_in_mode.cms.base_url,
        [
            "POST /v1/classes HTTP/1.1",
            "Host: cms",
            "Content-Type: application/json",
            *identity,
            *values,
        ],
        json.dumps({"name": "smuggled", "course_codes": ["ENG5"]}).encode(),
    )
    assert status == 400, problem
    assert problem["code"] == "DUPLICATE_HEADER", problem
    assert await database_digest(served_engine) == before


# The header that names the caller in each mode, 100 kB long (the other is ignored).
BIG_IDENTITY = {
    "jwt": (f"Authorization: Bearer {'a' * 102_400}", 401, "INVALID_TOKEN"),
    "trusted-header": (f"X-User-ID: {'u' * 102_400}", 400, "INVALID_USER_ID"),
}


async def test_a_100_kb_identity_header_is_refused_over_the_wire(
    served_in_mode: ServedInMode, served_engine
) -> None:
    big, expected_status, code = BIG_IDENTITY[served_in_mode.mode]
    before = await database_digest(served_engine)
    status, problem = await raw_request(
        served_in_mode.cms.base_url,
        ["POST /v1/classes HTTP/1.1", "Host: cms", "Content-Type: application/json", big],
        json.dumps({"name": "big", "course_codes": ["ENG5"]}).encode(),
    )
    assert (status, problem["code"]) == (expected_status, code), problem
    assert await database_digest(served_engine) == before
