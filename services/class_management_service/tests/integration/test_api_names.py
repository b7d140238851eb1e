"""Names and e-mails that cannot mislead: no control or bidirectional formatting
characters, and one Unicode form (NFC) for what looks the same."""

from __future__ import annotations

import unicodedata

import pytest

from services.class_management_service.tests.support.api import (
    create_class,
    create_student,
    error_locations,
    json_of,
    problem_of,
)

COMPOSED = "\u00e9"  # é
DECOMPOSED = "e\u0301"  # e + combining acute accent
MISLEADING = {
    "NUL": "\x00",
    "bell (Cc)": "\x07",
    "DEL (Cc)": "\x7f",
    "C1 (Cc)": "\x85",
    "right-to-left override": "\u202e",
    "left-to-right embedding": "\u202a",
    "pop directional formatting": "\u202c",
    "first strong isolate": "\u2068",
    "pop directional isolate": "\u2069",
}
PERSON = {"first_name": "Ada", "last_name": "Lovelace"}


def _bodies(character: str) -> list[tuple[str, str, dict, tuple]]:
    bad = f"ev{character}il"
    return [
        ("POST", "/v1/classes", {"name": bad, "course_codes": ["ENG5"]}, ("name",)),
        ("POST", "/v1/classes/students", {"person_name": {**PERSON, "first_name": bad}},
         ("person_name", "first_name")),
        ("POST", "/v1/classes/students", {"person_name": {**PERSON, "last_name": bad}},
         ("person_name", "last_name")),
        ("POST", "/v1/classes/students",
         {"person_name": {**PERSON, "legal_full_name": bad}}, ("person_name", "legal_full_name")),
        ("POST", "/v1/classes/students", {"person_name": PERSON, "email": f"a{character}@x.org"},
         ("email",)),
    ]  # fmt: skip


@pytest.mark.parametrize("character", MISLEADING.values(), ids=MISLEADING.keys())
async def test_misleading_characters_are_400_naming_the_field(client, headers, character) -> None:
    for method, path, body, field in _bodies(character):
        response = await client.open(path, method=method, json=body, headers=headers)
        problem = await problem_of(response, 400, "VALIDATION_ERROR")
        assert any(loc[-len(field) :] == field for loc in error_locations(problem)), problem
    own = await create_class(client, headers)
    renamed = await client.put(
        f"/v1/classes/{own['id']}", json={"name": f"9{character}A"}, headers=headers
    )
    await problem_of(renamed, 400, "VALIDATION_ERROR")


async def test_names_are_stored_composed(client, headers) -> None:
    own = await create_class(client, headers, name=f"Fran{DECOMPOSED}ais")
    assert own["name"] == f"Fran{COMPOSED}ais"
    student = await create_student(
        client, headers, first_name=f"{DECOMPOSED}lise", last_name=f"Ren{DECOMPOSED}"
    )
    assert student["first_name"] == f"{COMPOSED}lise"
    assert student["full_name"] == f"{COMPOSED}lise Ren{COMPOSED}"
    assert all(
        unicodedata.is_normalized("NFC", student[key])
        for key in ("first_name", "last_name", "legal_full_name")
    )
    listed = await json_of(await client.get("/v1/classes", headers=headers), 200)
    assert [c["name"] for c in listed["classes"]] == [f"Fran{COMPOSED}ais"]


async def test_a_composed_and_a_decomposed_email_are_one_email(client, headers) -> None:
    await create_student(client, headers, email=f"{COMPOSED}lise@example.org")
    again = await client.post(
        "/v1/classes/students",
        json={"person_name": PERSON, "email": f"{DECOMPOSED}lise@example.org"},
        headers=headers,
    )
    await problem_of(again, 409, "STUDENT_ALREADY_EXISTS")


async def test_ordinary_unicode_names_are_kept(client, headers) -> None:
    for name in ("Åsa Öberg", "محمد", "李小龙", "Zoë O'Brien-Smith"):
        first, _, last = name.partition(" ")
        student = await create_student(client, headers, first_name=first, last_name=last or "X")
        assert student["first_name"] == first
