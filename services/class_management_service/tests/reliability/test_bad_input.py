"""Hand-picked bad input against the served app: each gets a 4xx problem and changes nothing.

Requests go over real HTTP to a ``serve`` process (uvicorn, httptools), so what the HTTP
server itself does with odd input is part of what is tested.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.tests.reliability.conftest import ServedCms
from services.class_management_service.tests.support.api import (
    create_class,
    create_student,
    problem_of,
    user_headers,
)
from services.class_management_service.tests.support.database import (
    database_digest,
)
from services.class_management_service.tests.support.kafka_events import (
    collect_events,
)

pytestmark = pytest.mark.timeout(120)

OWNER = f"bad-input-{uuid.uuid4().hex[:8]}"
CLASS = "/v1/classes"
STUDENTS = "/v1/classes/students"
TWO_MB = 2 * 1024 * 1024


NEXT_VERSION = "{next_version}"  # in an If-Match: one past the target's current version


@dataclass(frozen=True)
class World:
    class_id: str
    student_id: str
    class_version: int  # 2: created, then its student joined
    student_version: int


@dataclass(frozen=True)
class Bad:
    """One bad request; ``{class_id}``/``{student_id}`` in the path are the owner's ids."""

    id: str
    method: str
    path: str
    status: int
    code: str | None = None
    json_body: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


NESTED = b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b', "course_codes": ["ENG5"]}'
NESTED_OBJECTS = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
VALID_CLASS = {"name": "9A", "course_codes": ["ENG5"]}
VALID_STUDENT = {"person_name": {"first_name": "Ada", "last_name": "Lovelace"}}
JSON = {"Content-Type": "application/json"}
FORM = "application/x-www-form-urlencoded"

WRITES = [
    ("POST", CLASS),
    ("PUT", CLASS + "/{class_id}"),
    ("POST", STUDENTS),
    ("PUT", STUDENTS + "/{student_id}"),
]
PATH_ROUTES = [
    ("GET", CLASS + "/{id}"),
    ("PUT", CLASS + "/{id}"),
    ("DELETE", CLASS + "/{id}"),
    ("GET", CLASS + "/{id}/roster"),
    ("GET", STUDENTS + "/{id}"),
    ("PUT", STUDENTS + "/{id}"),
    ("DELETE", STUDENTS + "/{id}"),
    ("GET", STUDENTS + "/{id}/essays"),
    ("PUT", STUDENTS + "/{id}/essays/" + str(uuid.uuid4())),
    ("PUT", STUDENTS + "/{student_id}/essays/{id}"),
]
BAD_IDS = {
    "word": "not-a-uuid",
    "zero": "0",
    "sql": "1' OR '1'='1",
    "long": "a" * 300,
    "almost": "12345678-1234-1234-1234-12345678901",
    "unicode": "\u0661\u0662\u0663",
    "nul": "%00",
}
LIST_ROUTES = [CLASS, STUDENTS, CLASS + "/{class_id}/roster"]
BAD_PAGES = {
    "limit-too-big": {"limit": "101"},
    "limit-huge": {"limit": "1" + "0" * 30},
    "limit-zero": {"limit": "0"},
    "limit-negative": {"limit": "-1"},
    "limit-text": {"limit": "ten"},
    "limit-float": {"limit": "1.5"},
    "offset-negative": {"offset": "-1"},
    "offset-huge": {"offset": "9" * 40},
}


def _cases() -> Iterator[Bad]:
    for method, path in WRITES:
        slug = f"{method} {path}"
        valid = VALID_CLASS if path.startswith(CLASS + "/{") or path == CLASS else VALID_STUDENT
        yield Bad(f"{slug} malformed json", method, path, 400, "MALFORMED_JSON",
                  content=b'{"name": "9A",', headers=JSON)  # fmt: skip
        yield Bad(f"{slug} not utf-8", method, path, 400, "MALFORMED_JSON",
                  content=b'{"name": "\xff\xfe"}', headers=JSON)  # fmt: skip
        yield Bad(f"{slug} text/plain", method, path, 415, "UNSUPPORTED_MEDIA_TYPE",
                  content=_json(valid), headers={"Content-Type": "text/plain"})  # fmt: skip
        yield Bad(f"{slug} form", method, path, 415, "UNSUPPORTED_MEDIA_TYPE",
                  content=b"name=9A", headers={"Content-Type": FORM})  # fmt: skip
        yield Bad(f"{slug} no content type", method, path, 415, "UNSUPPORTED_MEDIA_TYPE",
                  content=_json(valid), headers={"Content-Type": ""})  # fmt: skip
        yield Bad(f"{slug} 2 MB", method, path, 413, "PAYLOAD_TOO_LARGE",
                  content=b'{"name": "' + b"x" * TWO_MB + b'"}', headers=JSON)  # fmt: skip
        yield Bad(f"{slug} deeply nested arrays", method, path, 400, "MALFORMED_JSON",
                  content=NESTED, headers=JSON)  # fmt: skip
        yield Bad(f"{slug} deeply nested objects", method, path, 400, "MALFORMED_JSON",
                  content=NESTED_OBJECTS, headers=JSON)  # fmt: skip
        yield Bad(f"{slug} unknown field", method, path, 400, "VALIDATION_ERROR",
                  json_body={**valid, "is_admin": True})  # fmt: skip
        yield Bad(f"{slug} json array", method, path, 400, "VALIDATION_ERROR", json_body=[valid])
        yield Bad(f"{slug} json null", method, path, 400, None, content=b"null", headers=JSON)
    yield Bad("student unknown nested field", "POST", STUDENTS, 400, "VALIDATION_ERROR",
              json_body={"person_name": {"first_name": "A", "last_name": "B", "x": 1}})  # fmt: skip
    for name, value in {
        "nul": "9\x00A",
        "lone surrogate": "\ud800",
        "reversed surrogates": "\udc00\ud800",
        "only spaces": "   ",
        "only unicode spaces": "\u3000\u2003",
        "too long": "x" * 256,
    }.items():
        yield Bad(f"class name {name}", "POST", CLASS, 400, None,
                  content=json.dumps({"name": value, "course_codes": ["ENG5"]}).encode(),
                  headers=JSON)  # fmt: skip
        yield Bad(f"class rename {name}", "PUT", CLASS + "/{class_id}", 400, None,
                  content=json.dumps({"name": value}).encode(), headers=JSON)  # fmt: skip
        for part in ("first_name", "last_name", "legal_full_name"):
            person = {"first_name": "Ada", "last_name": "Lovelace", part: value}
            body = json.dumps({"person_name": person}).encode()
            yield Bad(f"student {part} {name}", "POST", STUDENTS, 400, None,
                      content=body, headers=JSON)  # fmt: skip
    for email in ("not-an-email", "a\x00@b.se", "a@b.se' OR '1'='1", "x" * 400 + "@b.se"):
        yield Bad(f"email {email[:20]!r}", "POST", STUDENTS, 400, "VALIDATION_ERROR",
                  json_body={**VALID_STUDENT, "email": email})  # fmt: skip
    for field_name in ("class_ids",):
        yield Bad("class_ids not uuids", "POST", STUDENTS, 400, "VALIDATION_ERROR",
                  json_body={**VALID_STUDENT, field_name: ["1' OR '1'='1"]})  # fmt: skip
    for field_name in ("add_class_ids", "remove_class_ids"):
        yield Bad(f"{field_name} not uuids", "PUT", STUDENTS + "/{student_id}", 400,
                  "VALIDATION_ERROR", json_body={field_name: ["nope"]})  # fmt: skip
        yield Bad(f"{field_name} too many", "PUT", STUDENTS + "/{student_id}", 400,
                  "VALIDATION_ERROR",
                  json_body={field_name: [str(uuid.uuid4()) for _ in range(101)]})  # fmt: skip
    yield Bad("course code sql", "POST", CLASS, 400, None,
              json_body={"name": "9A", "course_codes": ["ENG5' OR '1'='1"]})  # fmt: skip
    yield Bad("two course codes", "POST", CLASS, 400, "MULTIPLE_COURSE_ERROR",
              json_body={"name": "9A", "course_codes": ["ENG5", "SV1"]})  # fmt: skip
    for method, path in PATH_ROUTES:
        for label, bad in BAD_IDS.items():
            yield Bad(f"{method} {path} id {label}", method, path.replace("{id}", bad), 400,
                      "VALIDATION_ERROR")  # fmt: skip
    for path in LIST_ROUTES:
        for label, params in BAD_PAGES.items():
            yield Bad(f"GET {path} {label}", "GET", path, 400, "VALIDATION_ERROR", params=params)
    for label, params in {
        "course_code sql": {"course_code": "ENG5' OR '1'='1"},
        "course_code unknown": {"course_code": "ENG9"},
        "updated_since naive": {"updated_since": "2026-01-01T00:00:00"},
        "updated_since garbage": {"updated_since": "yesterday"},
    }.items():
        yield Bad(f"GET classes {label}", "GET", CLASS, 400, "VALIDATION_ERROR", params=params)
    yield Bad("GET students class_id sql", "GET", STUDENTS, 400, "VALIDATION_ERROR",
              params={"class_id": "1' OR '1'='1"})  # fmt: skip
    big_user = {"X-User-ID": "u" * 10_240}
    for method, path in [("GET", CLASS), ("POST", CLASS), ("GET", STUDENTS + "/{student_id}")]:
        yield Bad(f"{method} {path} 10 kB X-User-ID", method, path, 400, "INVALID_USER_ID",
                  json_body=VALID_CLASS if method == "POST" else None,
                  headers=big_user)  # fmt: skip
    yield Bad(
        "no X-User-ID", "GET", CLASS, 401, "AUTHENTICATION_REQUIRED", headers={"X-User-ID": ""}
    )
    yield Bad("X-Correlation-ID not a uuid", "POST", CLASS, 400, "INVALID_CORRELATION_ID",
              json_body=VALID_CLASS, headers={"X-Correlation-ID": "abc"})  # fmt: skip
    # Leniencies left out here: W/"1" and an unquoted 1 both count as version 1.
    # NEXT_VERSION: one past the version the class (or student) has now (World).
    for tag in ('"abc"', '"1", "2"', '"99999999999"', f'"{NEXT_VERSION}"', '"-1"', '""'):
        yield Bad(f"If-Match {tag}", "PUT", CLASS + "/{class_id}", 412, "PRECONDITION_FAILED",
                  json_body={"name": "renamed"}, headers={"If-Match": tag})  # fmt: skip
        yield Bad(f"delete If-Match {tag}", "DELETE", STUDENTS + "/{student_id}", 412,
                  "PRECONDITION_FAILED", headers={"If-Match": tag})  # fmt: skip
    for key in ("k" * 256, ""):
        yield Bad(f"Idempotency-Key {key[:8]!r}", "POST", CLASS, 400, "VALIDATION_ERROR",
                  json_body=VALID_CLASS, headers={"Idempotency-Key": key})  # fmt: skip
    yield Bad("unknown route", "GET", "/v1/nothing-here", 404, "NOT_FOUND")
    yield Bad("method not allowed", "PATCH", CLASS + "/{class_id}", 405, "METHOD_NOT_ALLOWED",
              json_body={"name": "x"})  # fmt: skip


CASES = [pytest.param(case, id=case.id) for case in _cases()]


@pytest.fixture(scope="module")
async def world(served_cms: ServedCms) -> AsyncIterator[World]:
    async with httpx.AsyncClient(base_url=served_cms.base_url, timeout=10) as client:
        klass = await create_class(client, OWNER)
        student = await create_student(client, OWNER, class_ids=[klass["id"]])
        joined = await client.get(f"{CLASS}/{klass['id']}", headers=user_headers(OWNER))
        assert joined.json()["version"] == 2, joined.text
        yield World(klass["id"], student["id"], joined.json()["version"], student["version"])


@pytest.fixture(scope="module")
async def client(served_cms: ServedCms) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served_cms.base_url, timeout=30) as client:
        yield client


@pytest.mark.parametrize("bad", CASES)
async def test_bad_input_gets_a_problem_and_changes_nothing(
    bad: Bad, world: World, client: httpx.AsyncClient, served_engine: AsyncEngine
) -> None:
    path = bad.path.format(class_id=world.class_id, student_id=world.student_id)
    target_version = world.class_version if "{class_id}" in bad.path else world.student_version
    next_version = str(target_version + 1)
    headers = {
        **user_headers(OWNER),
        **{name: value.replace(NEXT_VERSION, next_version) for name, value in bad.headers.items()},
    }
    if headers["X-User-ID"] == "":
        del headers["X-User-ID"]
    before = await database_digest(served_engine)

    response = await client.request(
        bad.method,
        path,
        headers=headers,
        params=bad.params,
        content=bad.content,
        json=bad.json_body if bad.content is None else None,
    )

    body = await problem_of(response, bad.status)
    if bad.code is not None:
        assert body["code"] == bad.code, body
    assert await database_digest(served_engine) == before


# Stored as sent. Bidirectional controls are refused and decomposed letters composed
# (NFC): tests/integration/test_api_names.py.
VERBATIM_NAMES = [
    "Robert'); DROP TABLE classes;--",
    "1' OR '1'='1",
    "%_\\ LIKE wildcards",
    "$$; SELECT pg_sleep(10); $$",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 family",
    "\U0001d11e four-byte",
    "\u65e5\u672c\u8a9e \u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u03a9\u2248\u00e7",
    "zero\u200bwidth",
    "\U0001d11e" * 255,
]


@pytest.mark.parametrize("name", VERBATIM_NAMES, ids=range(len(VERBATIM_NAMES)))
async def test_sql_looking_and_unusual_names_are_stored_verbatim(
    name: str, client: httpx.AsyncClient, served_engine: AsyncEngine, served_cms: ServedCms
) -> None:
    owner = f"verbatim-{uuid.uuid4().hex[:8]}"
    created = await create_class(client, owner, name=name)
    person = name[:100]  # first + last over 254 characters need a legal_full_name
    student = await create_student(
        client, owner, first_name=person, last_name=person, class_ids=[created["id"]]
    )
    fetched = (await client.get(f"{CLASS}/{created['id']}", headers=user_headers(owner))).json()
    listed = (await client.get(CLASS, headers=user_headers(owner))).json()["classes"]
    roster = (
        await client.get(f"{CLASS}/{created['id']}/roster", headers=user_headers(owner))
    ).json()["students"]
    assert created["name"] == fetched["name"] == listed[0]["name"] == name
    assert roster[0]["first_name"] == roster[0]["last_name"] == student["first_name"] == person
    async with served_engine.connect() as connection:
        stored = await connection.scalar(
            text("SELECT name FROM classes WHERE id = :id"), {"id": created["id"]}
        )
        tables = await connection.scalar(
            text("SELECT count(*) FROM pg_tables WHERE tablename = 'classes'")
        )
    (event,) = await collect_events(
        served_cms.kafka_bootstrap,
        lambda e: (
            str(getattr(e.envelope.data, "class_id", "")) == created["id"]
            and e.topic == "huleedu.class.created.v1"
        ),
        count=1,
        timeout=15,
        settle=0,
    )
    assert stored == name and event.envelope.data.class_designation == name
    assert tables == 1


REPEATS = 20


async def _two_mb_chunks() -> AsyncIterator[bytes]:
    chunk = b"x" * 65_536
    yield b'{"name": "'
    for _ in range(TWO_MB // len(chunk)):
        yield chunk
    yield b'"}'


async def _post_over_limit(client: httpx.AsyncClient, framing: str) -> httpx.Response:
    content = (
        b'{"name": "' + b"x" * TWO_MB + b'"}' if framing == "content-length" else _two_mb_chunks()
    )
    return await client.post(CLASS, content=content, headers={**user_headers(OWNER), **JSON})


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("connection", ["new", "kept-alive"])
async def test_an_over_limit_body_gets_its_413_every_time(
    framing: str, connection: str, served_cms: ServedCms
) -> None:
    # The service answers before the client has sent its body; it reads and discards the
    # rest (up to a bound) before closing, so the client, still sending, reads the 413
    # instead of a reset connection.
    async with httpx.AsyncClient(base_url=served_cms.base_url, timeout=30) as shared:
        for attempt in range(REPEATS):
            if connection == "new":
                async with httpx.AsyncClient(base_url=served_cms.base_url, timeout=30) as fresh:
                    response = await _post_over_limit(fresh, framing)
            else:
                response = await _post_over_limit(shared, framing)
            assert response.status_code == 413, (attempt, response.text)
            assert response.json()["code"] == "PAYLOAD_TOO_LARGE"
