"""Importing a class list, through the real app on the real stack: JSON and CSV, matching by
e-mail, every refusal with nothing written, dry runs, Idempotency-Key, ownership and
archived classes. "Nothing written" is a digest of every table (and of the outbox's id
sequence, which every event ever written advanced) taken before and after."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from common_core.events import ClassUpdatedV1, StudentCreatedV1, StudentUpdatedV1, topic_for
from quart.typing import TestClientProtocol as Client
from sqlalchemy.ext.asyncio import AsyncEngine

from services.class_management_service.tests.support.api import (
    create_class,
    create_student,
    get_ok,
    json_of,
    problem_of,
    send,
    set_class_status,
    with_correlation,
)
from services.class_management_service.tests.support.database import database_digest
from services.class_management_service.tests.support.kafka_events import EventCollector

REPORT_FIELDS = {"class_id", "dry_run", "created", "added", "unchanged", "students"}


def _path(class_id: str) -> str:
    return f"/v1/classes/{class_id}/students/import"


async def _post_csv(
    client: Client,
    class_id: str,
    headers: Mapping[str, str],
    data: bytes,
    query: Mapping[str, str] | None = None,
    content_type: str = "text/csv",
) -> Any:
    return await client.post(
        _path(class_id),
        data=data,
        headers={**with_correlation(headers), "Content-Type": content_type},
        query_string=dict(query or {}),
    )


async def _import(client: Client, class_id: str, headers: Mapping[str, str], body: Any) -> Any:
    return await send(client, "POST", _path(class_id), with_correlation(headers), body=body)


def _row(number: int, **extra: Any) -> dict[str, Any]:
    return {"first_name": f"Elev{number}", "last_name": "Svensson", **extra}


async def test_a_json_import_creates_adds_and_leaves_members_as_they_are_in_one_change(
    client: Client, headers: dict[str, str], events: EventCollector
) -> None:
    target = await create_class(client, headers, "9A")
    other = await create_class(client, headers, "9B")
    outsider = await create_student(
        client, headers, "Ada", "Lind", "ada@example.com", [other["id"]]
    )
    member = await create_student(client, headers, "Bo", "Ek", "bo@example.com", [target["id"]])
    target = await get_ok(client, f"/v1/classes/{target['id']}", headers)  # student_count 1
    correlation_id = str(uuid.uuid4())

    response = await send(
        client,
        "POST",
        _path(target["id"]),
        {**headers, "X-Correlation-ID": correlation_id},
        body={
            "students": [
                _row(1, email="Ny@Example.com", legal_full_name="Elev Ett Svensson"),
                # Matched case-insensitively; their names in the file change nothing.
                {"first_name": "Other", "last_name": "Name", "email": "ADA@example.com"},
                {"first_name": "Bo", "last_name": "Ek", "email": "bo@example.com"},
                _row(4),
            ]
        },
    )

    report = await json_of(response, 200)
    assert set(report) == REPORT_FIELDS
    assert (report["class_id"], report["dry_run"]) == (target["id"], False)
    assert (report["created"], report["added"], report["unchanged"]) == (2, 1, 1)
    outcomes = [(s["row"], s["outcome"]) for s in report["students"]]
    assert outcomes == [(1, "created"), (2, "added"), (3, "unchanged"), (4, "created")]
    assert report["students"][1]["student_id"] == outsider["id"]
    assert report["students"][2]["student_id"] == member["id"]
    new_id = report["students"][0]["student_id"]
    new = await get_ok(client, f"/v1/classes/students/{new_id}", headers)
    assert (new["email"], new["legal_full_name"]) == ("ny@example.com", "Elev Ett Svensson")
    assert new["class_ids"] == [target["id"]]
    after_import = await get_ok(client, f"/v1/classes/{target['id']}", headers)
    assert after_import["student_count"] == 4
    assert after_import["version"] == target["version"] + 1
    added = await get_ok(client, f"/v1/classes/students/{outsider['id']}", headers)
    assert (added["first_name"], added["last_name"]) == ("Ada", "Lind")
    assert sorted(added["class_ids"]) == sorted([target["id"], other["id"]])
    assert added["version"] == outsider["version"] + 1
    unchanged = await get_ok(client, f"/v1/classes/students/{member['id']}", headers)
    assert unchanged["version"] == member["version"]

    # The events of the single-student operations, all caused by this request.
    def of_request(event: Any) -> bool:
        return str(event.envelope.correlation_id) == correlation_id

    caused = await events.wait_for(of_request, count=4)
    by_topic = sorted((event.topic, event.key.decode()) for event in caused)
    assert by_topic == sorted(
        [
            (topic_for(StudentCreatedV1), new_id),
            (topic_for(StudentCreatedV1), report["students"][3]["student_id"]),
            (topic_for(StudentUpdatedV1), outsider["id"]),
            (topic_for(ClassUpdatedV1), target["id"]),
        ]
    )
    (class_event,) = [e.envelope.data for e in caused if e.topic == topic_for(ClassUpdatedV1)]
    assert (class_event.student_count, class_event.version) == (4, after_import["version"])
    assert class_event.previous.student_count == 1
    (joined,) = [e.envelope.data for e in caused if e.topic == topic_for(StudentUpdatedV1)]
    assert joined.add_class_ids == [uuid.UUID(target["id"])]
    assert joined.version == added["version"]
    created = [e.envelope.data for e in caused if e.topic == topic_for(StudentCreatedV1)]
    assert all(e.class_ids == [uuid.UUID(target["id"])] and e.version == 1 for e in created)


CSV_CASES = {
    "comma": b"first_name,last_name,email\nAnna,Berg,anna@example.com\n",
    "semicolon, BOM, Swedish headers, CRLF": (
        "\ufeffF\u00f6rnamn;Efternamn;E-post\r\nAnna;Berg;anna@example.com\r\n".encode()
    ),
    "columns in another order, any case": (
        b"EMAIL,Last_Name,FIRST_NAME\nanna@example.com,Berg,Anna\n"
    ),
}


@pytest.mark.parametrize("data", CSV_CASES.values(), ids=CSV_CASES.keys())
async def test_a_csv_file_is_read_whatever_its_delimiter_bom_and_header_language(
    client: Client, headers: dict[str, str], data: bytes
) -> None:
    target = await create_class(client, headers)

    report = await json_of(await _post_csv(client, target["id"], headers, data), 200)

    assert report["created"] == 1
    (student,) = (await get_ok(client, "/v1/classes/students", headers))["students"]
    assert (student["first_name"], student["last_name"]) == ("Anna", "Berg")
    assert student["email"] == "anna@example.com"
    assert student["legal_full_name"] == "Anna Berg"


@pytest.mark.parametrize("delimiter", [",", ";"])
async def test_quoted_csv_fields_may_hold_the_delimiter_and_quotes(
    client: Client, headers: dict[str, str], delimiter: str
) -> None:
    target = await create_class(client, headers)
    d = delimiter
    data = (
        f"first_name{d}last_name{d}legal_full_name{d}email\n"
        f'"Karl{d} Johan"{d}"Öberg"{d}"Karl Johan ""KJ"" Öberg"{d}\n'
        f"\n"  # an empty line is no row
        f'Eva{d}"Lind{d} Ström"{d}{d}eva@example.com\n'
    ).encode()

    report = await json_of(await _post_csv(client, target["id"], headers, data), 200)

    assert [s["row"] for s in report["students"]] == [1, 2]
    students = (await get_ok(client, "/v1/classes/students", headers))["students"]
    names = sorted(
        (s["first_name"], s["last_name"], s["legal_full_name"], s["email"]) for s in students
    )
    assert names == [
        ("Eva", f"Lind{d} Ström", f"Eva Lind{d} Ström", "eva@example.com"),
        (f"Karl{d} Johan", "Öberg", 'Karl Johan "KJ" Öberg', None),
    ]


def _csv_of(count: int) -> bytes:
    lines = ["förnamn;efternamn;e-post"]
    lines += [f"Förnamn{n};Efternamnsson{n};elev.nummer{n}@skolan.example.se" for n in range(count)]
    return ("\n".join(lines) + "\n").encode()


async def test_a_file_of_1000_rows_is_imported_and_one_of_1001_is_413(
    client: Client, headers: dict[str, str], engine: AsyncEngine
) -> None:
    target = await create_class(client, headers)
    before = await database_digest(engine)

    too_many = await _post_csv(client, target["id"], headers, _csv_of(1001))
    await problem_of(too_many, 413, "TOO_MANY_ROWS")
    json_too_many = await _import(
        client, target["id"], headers, {"students": [_row(n) for n in range(1001)]}
    )
    await problem_of(json_too_many, 413, "TOO_MANY_ROWS")
    assert await database_digest(engine) == before

    report = await json_of(await _post_csv(client, target["id"], headers, _csv_of(1000)), 200)

    assert report["created"] == 1000
    assert [s["row"] for s in report["students"]] == list(range(1, 1001))
    assert (await get_ok(client, f"/v1/classes/{target['id']}", headers))["student_count"] == 1000
    listed = await get_ok(client, "/v1/classes/students", headers, {"limit": 1})
    assert listed["pagination"]["total"] == 1000


async def test_every_invalid_row_is_reported_and_nothing_is_written(
    client: Client, headers: dict[str, str], engine: AsyncEngine
) -> None:
    target = await create_class(client, headers)
    await create_student(client, headers, "Kvar", "Här", "kvar@example.com")
    before = await database_digest(engine)

    response = await _import(
        client,
        target["id"],
        headers,
        {
            "students": [
                _row(1, email="ok@example.com"),
                _row(2, email="not an e-mail"),
                {"first_name": "  ", "last_name": "Berg"},
                {"first_name": "Evil\u202e", "last_name": "Berg"},
                _row(5, email="OK@example.com"),  # row 1's e-mail again
                _row(6, nickname="x"),
                {"last_name": "Berg"},
            ]
        },
    )

    problem = await problem_of(response, 400, "IMPORT_INVALID")
    found = [(e["row"], e["field"], e["code"]) for e in problem["errors"]]
    assert found == [
        (2, "email", "value_error"),
        (3, "first_name", "too_short"),
        (4, "first_name", "value_error"),
        (5, "email", "duplicate_email"),
        (6, "nickname", "extra_forbidden"),
        (7, "first_name", "missing"),
    ]
    assert all(error["msg"] for error in problem["errors"])
    assert await database_digest(engine) == before


async def test_invalid_csv_rows_are_reported_by_their_data_row(
    client: Client, headers: dict[str, str], engine: AsyncEngine
) -> None:
    target = await create_class(client, headers)
    before = await database_digest(engine)
    data = (
        b"first_name,last_name,email\nAnna,Berg,\n"
        b",Lind,lind@example.com\n"
        b"Eva,Ek,x@example.com,extra\n"
        b'"Sara","Lind\nStr\xc3\xb6m",\n'  # a line break in a quoted field: one row, refused
    )

    problem = await problem_of(
        await _post_csv(client, target["id"], headers, data), 400, "IMPORT_INVALID"
    )

    found = [(e["row"], e["field"], e["code"]) for e in problem["errors"]]
    assert found == [
        (2, "first_name", "too_short"),
        (3, None, "too_many_cells"),
        (4, "last_name", "value_error"),  # names are plain text, as in a single creation
    ]
    assert await database_digest(engine) == before


REFUSED_FILES = {
    "empty file": (b"", "VALIDATION_ERROR"),
    "header only": (b"first_name,last_name\n", "VALIDATION_ERROR"),
    "unknown column": (b"first_name,last_name,shoe_size\nA,B,42\n", "VALIDATION_ERROR"),
    "a name column missing": (b"first_name,email\nA,a@example.com\n", "VALIDATION_ERROR"),
    "a column twice": (b"email,first_name,last_name,e-post\nx,A,B,y\n", "VALIDATION_ERROR"),
    "not UTF-8": ("first_name,last_name\nÅsa,Berg\n".encode("latin-1"), "VALIDATION_ERROR"),
}


@pytest.mark.parametrize(("data", "code"), REFUSED_FILES.values(), ids=REFUSED_FILES.keys())
async def test_a_file_that_is_not_a_class_list_is_400_with_nothing_written(
    client: Client, headers: dict[str, str], engine: AsyncEngine, data: bytes, code: str
) -> None:
    target = await create_class(client, headers)
    before = await database_digest(engine)

    await problem_of(await _post_csv(client, target["id"], headers, data), 400, code)

    assert await database_digest(engine) == before


REFUSED_BODIES = {
    "no rows": {"students": []},
    "no students field": {"rows": [_row(1)]},
    "not a list": {"students": "Anna Berg"},
    "dry_run not a boolean": {"students": [_row(1)], "dry_run": "perhaps"},
}


@pytest.mark.parametrize("body", REFUSED_BODIES.values(), ids=REFUSED_BODIES.keys())
async def test_a_json_body_that_is_not_an_import_is_400_validation_error(
    client: Client, headers: dict[str, str], engine: AsyncEngine, body: Any
) -> None:
    target = await create_class(client, headers)
    before = await database_digest(engine)

    await problem_of(await _import(client, target["id"], headers, body), 400, "VALIDATION_ERROR")

    assert await database_digest(engine) == before


async def test_other_media_types_are_415_and_others_classes_404_with_nothing_written(
    client: Client, headers: dict[str, str], engine: AsyncEngine
) -> None:
    target = await create_class(client, headers)
    someone_else = {**headers, "X-User-ID": f"teacher-{uuid.uuid4().hex[:8]}"}
    csv = b"first_name,last_name\nAnna,Berg\n"
    before = await database_digest(engine)

    plain = await _post_csv(client, target["id"], headers, csv, content_type="text/plain")
    assert "text/csv" in (await problem_of(plain, 415, "UNSUPPORTED_MEDIA_TYPE"))["detail"]
    await problem_of(
        await _post_csv(client, target["id"], someone_else, csv), 404, "CLASS_NOT_FOUND"
    )
    await problem_of(
        await _post_csv(client, str(uuid.uuid4()), headers, csv), 404, "CLASS_NOT_FOUND"
    )
    json_body = {"students": [_row(1)]}
    await problem_of(
        await _import(client, target["id"], someone_else, json_body), 404, "CLASS_NOT_FOUND"
    )
    unknown_query = await _post_csv(client, target["id"], headers, csv, {"force": "true"})
    await problem_of(unknown_query, 400, "VALIDATION_ERROR")

    assert await database_digest(engine) == before


async def test_an_archived_class_gains_no_students_by_import(
    client: Client, headers: dict[str, str], engine: AsyncEngine
) -> None:
    target = await create_class(client, headers)
    await set_class_status(client, headers, target["id"], "archived")
    before = await database_digest(engine)

    response = await _post_csv(client, target["id"], headers, b"first_name,last_name\nA,B\n")
    await problem_of(response, 409, "CLASS_ARCHIVED")
    dry_run = await _import(client, target["id"], headers, {"students": [_row(1)], "dry_run": True})
    await problem_of(dry_run, 409, "CLASS_ARCHIVED")

    assert await database_digest(engine) == before


async def test_a_dry_run_reports_what_the_import_does_and_writes_and_publishes_nothing(
    client: Client, headers: dict[str, str], engine: AsyncEngine
) -> None:
    target = await create_class(client, headers)
    other = await create_class(client, headers, "9B")
    await create_student(client, headers, "Ada", "Lind", "ada@example.com", [other["id"]])
    await create_student(client, headers, "Bo", "Ek", "bo@example.com", [target["id"]])
    data = b"first_name;last_name;email\nAda;Lind;ada@example.com\nBo;Ek;BO@example.com\nNy;Elev;\n"
    before = await database_digest(engine)

    csv_dry = await json_of(
        await _post_csv(client, target["id"], headers, data, {"dry_run": "true"}), 200
    )
    json_dry = await json_of(
        await _import(
            client,
            target["id"],
            headers,
            {
                "dry_run": True,
                "students": [
                    {"first_name": "Ada", "last_name": "Lind", "email": "ada@example.com"},
                    {"first_name": "Bo", "last_name": "Ek", "email": "BO@example.com"},
                    {"first_name": "Ny", "last_name": "Elev"},
                ],
            },
        ),
        200,
    )
    assert await database_digest(engine) == before  # nothing written, no event in the outbox

    real = await json_of(await _post_csv(client, target["id"], headers, data), 200)
    assert csv_dry == json_dry
    assert csv_dry["dry_run"] is True and real["dry_run"] is False
    assert [(s["row"], s["outcome"]) for s in csv_dry["students"]] == [
        (s["row"], s["outcome"]) for s in real["students"]
    ]
    assert [s["student_id"] for s in csv_dry["students"][:2]] == [
        s["student_id"] for s in real["students"][:2]
    ]
    assert csv_dry["students"][2]["student_id"] is None  # a dry run creates no student
    counts = ("created", "added", "unchanged")
    assert [csv_dry[c] for c in counts] == [real[c] for c in counts] == [1, 1, 1]


async def test_an_import_retried_with_its_idempotency_key_is_replayed_not_repeated(
    client: Client, headers: dict[str, str], engine: AsyncEngine
) -> None:
    target = await create_class(client, headers)
    keyed = {**headers, "Idempotency-Key": f"import-{uuid.uuid4()}"}
    data = b"first_name,last_name\nAnna,Berg\nEva,Ek\n"

    first = await _post_csv(client, target["id"], keyed, data)
    report = await json_of(first, 200)
    after_first = await database_digest(engine)
    retry = await _post_csv(client, target["id"], keyed, data)

    assert await json_of(retry, 200) == report
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert await database_digest(engine) == after_first
    # The same key with another file, or the same file as a dry run, is another request.
    other_file = await _post_csv(client, target["id"], keyed, data + b"Bo,Lind\n")
    await problem_of(other_file, 422, "IDEMPOTENCY_KEY_REUSED")
    dry_run = await _post_csv(client, target["id"], keyed, data, {"dry_run": "true"})
    await problem_of(dry_run, 422, "IDEMPOTENCY_KEY_REUSED")
    assert await database_digest(engine) == after_first
    assert (await get_ok(client, f"/v1/classes/{target['id']}", headers))["student_count"] == 2
