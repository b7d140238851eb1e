"""The list queries a gateway needs (issue 15 point 6), through the real app on the real
stack: ``q``, ``ids``, ``sort`` and ``updated_since`` of the class and student lists, names
in Swedish order (the test database is C-collated), a student's classes, all owner-scoped
and paged with totals."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.class_management_service.tests.support.api import (
    create_class,
    create_student,
    error_locations,
    get_ok,
    json_of,
    problem_of,
    user_headers,
)

SWEDISH_ORDER = ["de Wit", "Zetterberg", "Åberg", "ångström", "Ärlig", "Öberg"]
# The same names as the issue saw them sorted by byte value: the order to leave behind.
SHUFFLED = ["Zetterberg", "de Wit", "Ärlig", "Åberg", "Öberg", "ångström"]
SORTS = ("name", "-name", "created_at", "-created_at", "updated_at", "-updated_at")


def _ids(body: dict[str, Any], items: str) -> list[str]:
    return [item["id"] for item in body[items]]


async def test_classes_sort_by_name_in_swedish_order(client, headers) -> None:
    for name in SHUFFLED:
        await create_class(client, headers, name=name)

    ascending = await get_ok(client, "/v1/classes", headers, {"sort": "name"})
    descending = await get_ok(client, "/v1/classes", headers, {"sort": "-name"})

    assert [c["name"] for c in ascending["classes"]] == SWEDISH_ORDER
    assert [c["name"] for c in descending["classes"]] == SWEDISH_ORDER[::-1]
    assert ascending["pagination"]["total"] == len(SWEDISH_ORDER)


async def test_students_sort_by_last_then_first_name_in_swedish_order(client, headers) -> None:
    for last_name in SHUFFLED:
        await create_student(client, headers, "Eva", last_name)
    await create_student(client, headers, "Åke", "Öberg")
    await create_student(client, headers, "Adam", "Öberg")

    default = await get_ok(client, "/v1/classes/students", headers)
    descending = await get_ok(client, "/v1/classes/students", headers, {"sort": "-name"})

    names = [(s["last_name"], s["first_name"]) for s in default["students"]]
    expected = [(last, "Eva") for last in SWEDISH_ORDER[:-1]] + [
        ("Öberg", "Adam"),
        ("Öberg", "Eva"),
        ("Öberg", "Åke"),
    ]
    assert names == expected
    assert [(s["last_name"], s["first_name"]) for s in descending["students"]] == expected[::-1]


@pytest.mark.parametrize("path", ["/v1/classes", "/v1/classes/students"])
async def test_lists_sort_by_creation_and_update_time(client, headers, path) -> None:
    made = []
    for number in range(3):
        if path == "/v1/classes":
            made.append(await create_class(client, headers, name=f"Class {number}"))
        else:
            made.append(await create_student(client, headers, "Eva", f"Lind {number}"))
    first = made[0]["id"]
    # Changing the first makes it the last updated.
    body = {"name": "renamed"} if path == "/v1/classes" else {"email": "eva@example.com"}
    await json_of(await client.put(f"{path}/{first}", json=body, headers=headers), 200)
    items = "classes" if path == "/v1/classes" else "students"
    created = [m["id"] for m in made]

    orders = {
        sort: _ids(await get_ok(client, path, headers, {"sort": sort}), items) for sort in SORTS
    }

    assert orders["created_at"] == created
    assert orders["-created_at"] == created[::-1]
    assert orders["updated_at"] == [*created[1:], first]
    assert orders["-updated_at"] == [first, *created[1:][::-1]]


async def test_class_list_default_order_is_newest_first(client, headers) -> None:
    made = [(await create_class(client, headers, name=n))["id"] for n in ("b", "a", "c")]

    assert _ids(await get_ok(client, "/v1/classes", headers), "classes") == made[::-1]


async def test_q_finds_class_names_whatever_their_case_and_accents(client, headers) -> None:
    oberg = await create_class(client, headers, name="Öberg 9A")
    shouting = await create_class(client, headers, name="ÖBERGS KLASS")
    await create_class(client, headers, name="Lindberg")
    await create_class(client, user_headers(), name="Öberg (another teacher's)")

    found = await get_ok(client, "/v1/classes", headers, {"q": "oberg", "sort": "name"})
    accented = await get_ok(client, "/v1/classes", headers, {"q": "ÖBerg"})
    none = await get_ok(client, "/v1/classes", headers, {"q": "nobody"})

    assert _ids(found, "classes") == [oberg["id"], shouting["id"]]
    assert found["pagination"] == {"limit": 20, "offset": 0, "returned": 2, "total": 2}
    assert sorted(_ids(accented, "classes")) == sorted(_ids(found, "classes"))
    assert none["classes"] == [] and none["pagination"]["total"] == 0


async def test_q_takes_like_wildcards_literally(client, headers) -> None:
    percent = await create_class(client, headers, name="100% svenska")
    underscore = await create_class(client, headers, name="sv_2")
    await create_class(client, headers, name="sv32")

    by_percent = await get_ok(client, "/v1/classes", headers, {"q": "%"})
    by_underscore = await get_ok(client, "/v1/classes", headers, {"q": "v_"})
    by_backslash = await get_ok(client, "/v1/classes", headers, {"q": "\\"})

    assert _ids(by_percent, "classes") == [percent["id"]]
    assert _ids(by_underscore, "classes") == [underscore["id"]]
    assert by_backslash["classes"] == []


async def test_q_finds_students_by_first_last_or_legal_name_or_email(client, headers) -> None:
    oberg = await create_student(client, headers, "Eva", "Öberg")
    asa = await create_student(client, headers, "Åsa", "Lind")
    legal = await create_student(client, headers, "Bo", "Ek", legal_full_name="Bo Östen Ek")
    mail = await create_student(client, headers, "Ida", "Berg", email="ida@skola.example.org")
    await create_student(client, user_headers(), "Eva", "Öberg")

    async def found(q: str) -> list[str]:
        return _ids(await get_ok(client, "/v1/classes/students", headers, {"q": q}), "students")

    assert await found("OBERG") == [oberg["id"]]
    assert await found("asa") == [asa["id"]]
    assert await found("osten") == [legal["id"]]
    assert await found("skola.example") == [mail["id"]]
    assert set(await found("berg")) == {oberg["id"], mail["id"]}


async def test_q_finds_students_by_any_substring_long_or_short(client, headers) -> None:
    """A ``q`` with three letters in a row is looked up by the teacher's search keys, a
    shorter one among all the teacher's students: both find every substring, across words
    too, and follow a change of name."""
    ali = await create_student(client, headers, "Ali", "Hassan")
    natalie = await create_student(client, headers, "Natalie", "Lind")
    await create_student(client, user_headers(), "Ali", "Hassan")

    async def found(q: str) -> set[str]:
        body = await get_ok(client, "/v1/classes/students", headers, {"q": q})
        assert body["pagination"]["total"] == len(body["students"])
        return set(_ids(body, "students"))

    assert await found("ali") == {ali["id"], natalie["id"]}
    assert await found("li") == {ali["id"], natalie["id"]}
    assert await found("i h") == {ali["id"]}
    assert await found("ali has") == {ali["id"]}
    assert await found("hasan") == set()
    assert await found("L%") == set()
    # Letters that the database's character type may not count as such (the test
    # database's is C: pg_trgm then finds no trigram in them, and the keys of the pattern
    # are none, which every student has): found all the same.
    ivan = await create_student(client, headers, "Иван", "Петров")
    assert await found("Петр") == {ivan["id"]}

    response = await client.put(
        f"/v1/classes/students/{ali['id']}",
        json={"person_name": {"last_name": "Berg", "legal_full_name": "Ali Berg"}},
        headers=headers,
    )
    await json_of(response, 200)

    assert await found("hassan") == set()
    assert await found("berg") == {ali["id"]}


async def test_ids_fetch_a_batch_and_leave_out_others_and_missing(client, headers) -> None:
    mine = [await create_class(client, headers, name=f"Class {n}") for n in range(3)]
    theirs = await create_class(client, user_headers(), name="Theirs")
    wanted = [mine[0]["id"], mine[2]["id"], theirs["id"], str(uuid.uuid4())]

    body = await get_ok(client, "/v1/classes", headers, {"ids": ",".join(wanted), "sort": "name"})

    assert _ids(body, "classes") == [mine[0]["id"], mine[2]["id"]]
    assert body["pagination"]["total"] == 2


async def test_student_ids_combine_with_q_and_updated_since(client, headers) -> None:
    ada = await create_student(client, headers, "Ada", "Öberg")
    bo = await create_student(client, headers, "Bo", "Öberg")
    cy = await create_student(client, headers, "Cy", "Lind")
    ids = ",".join(s["id"] for s in (ada, bo, cy))

    both = await get_ok(client, "/v1/classes/students", headers, {"ids": ids, "q": "oberg"})
    since = await get_ok(
        client, "/v1/classes/students", headers, {"updated_since": bo["updated_at"], "ids": ids}
    )

    assert _ids(both, "students") == [ada["id"], bo["id"]]
    assert _ids(since, "students") == [cy["id"], bo["id"]]  # Lind before Öberg
    assert since["pagination"]["total"] == 2


async def test_students_updated_since_selects_the_changed_ones(client, headers) -> None:
    ada = await create_student(client, headers, "Ada", "Lind")
    bo = await create_student(client, headers, "Bo", "Lind")
    since = {"updated_since": bo["updated_at"]}

    before = await get_ok(client, "/v1/classes/students", headers, since)
    response = await client.put(
        f"/v1/classes/students/{ada['id']}", json={"email": "ada@example.com"}, headers=headers
    )
    await json_of(response, 200)
    after = await get_ok(client, "/v1/classes/students", headers, since)

    assert _ids(before, "students") == [bo["id"]]
    assert _ids(after, "students") == [ada["id"], bo["id"]]


@pytest.mark.parametrize("path", ["/v1/classes", "/v1/classes/students"])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param({"sort": "age"}, "sort", id="unknown-sort"),
        pytest.param({"sort": "+name"}, "sort", id="plus-sort"),
        pytest.param({"ids": "nope"}, "ids", id="malformed-id"),
        pytest.param({"ids": f"{uuid.uuid4()},"}, "ids", id="trailing-comma"),
        pytest.param({"ids": ",".join(str(uuid.uuid4()) for _ in range(101))}, "ids", id="101"),
        pytest.param({"q": ""}, "q", id="empty-q"),
        pytest.param({"q": "x" * 256}, "q", id="long-q"),
        pytest.param({"q": "a\x00b"}, "q", id="nul-q"),
        pytest.param({"updated_since": "2026-01-01T00:00:00"}, "updated_since", id="naive"),
    ],
)
async def test_bad_list_parameters_are_400(client, headers, path, query, field) -> None:
    response = await client.get(path, headers=headers, query_string=query)

    problem = await problem_of(response, 400, "VALIDATION_ERROR")
    assert any(field in loc for loc in error_locations(problem)), problem


async def test_100_ids_are_accepted(client, headers) -> None:
    made = await create_student(client, headers)
    ids = [made["id"], *(str(uuid.uuid4()) for _ in range(99))]

    body = await get_ok(client, "/v1/classes/students", headers, {"ids": ",".join(ids)})

    assert _ids(body, "students") == [made["id"]]


async def test_a_students_classes_are_listed_like_the_class_list(client, headers) -> None:
    classes = [await create_class(client, headers, name=n) for n in ("Öst", "Ankor", "Berg")]
    student = await create_student(client, headers, class_ids=[c["id"] for c in classes[:2]])
    path = f"/v1/classes/students/{student['id']}/classes"

    newest_first = await get_ok(client, path, headers)
    by_name = await get_ok(client, path, headers, {"sort": "name"})
    second_page = await get_ok(client, path, headers, {"limit": 1, "offset": 1})
    listed = await get_ok(client, "/v1/classes", headers, {"ids": classes[0]["id"]})

    assert _ids(newest_first, "classes") == [classes[1]["id"], classes[0]["id"]]
    assert [c["name"] for c in by_name["classes"]] == ["Ankor", "Öst"]
    assert newest_first["pagination"] == {"limit": 20, "offset": 0, "returned": 2, "total": 2}
    assert second_page["pagination"] == {"limit": 1, "offset": 1, "returned": 1, "total": 2}
    assert newest_first["classes"][1] == listed["classes"][0]  # the same item shape


async def test_a_students_classes_of_a_student_in_none_is_an_empty_page(client, headers) -> None:
    student = await create_student(client, headers)
    path = f"/v1/classes/students/{student['id']}/classes"

    assert await get_ok(client, path, headers) == {
        "classes": [],
        "pagination": {"limit": 20, "offset": 0, "returned": 0, "total": 0},
    }


async def test_a_students_classes_are_404_for_others_and_missing_students(client, headers) -> None:
    class_ = await create_class(client, headers)
    student = await create_student(client, headers, class_ids=[class_["id"]])

    other = await client.get(
        f"/v1/classes/students/{student['id']}/classes", headers=user_headers()
    )
    missing = await client.get(f"/v1/classes/students/{uuid.uuid4()}/classes", headers=headers)
    malformed = await client.get("/v1/classes/students/nope/classes", headers=headers)
    bad_sort = await client.get(
        f"/v1/classes/students/{student['id']}/classes",
        headers=headers,
        query_string={"sort": "size"},
    )

    await problem_of(other, 404, "STUDENT_NOT_FOUND")
    await problem_of(missing, 404, "STUDENT_NOT_FOUND")
    assert ("path", "student_id") in error_locations(await problem_of(malformed, 400))
    await problem_of(bad_sort, 400, "VALIDATION_ERROR")
