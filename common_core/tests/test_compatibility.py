"""The compatibility checker on small before/after schemas: one per kind of break."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from common_core.events.compatibility import (
    Break,
    breaking_changes,
    breaking_changes_between_sets,
)

BEFORE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "name": {"type": "string", "minLength": 1, "maxLength": 10},
        "count": {"type": "number", "minimum": 0},
        "kind": {"$ref": "#/$defs/Kind"},
        "code": {"anyOf": [{"$ref": "#/$defs/Kind"}, {"type": "string", "minLength": 1}]},
        "email": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/Tag"}},
    },
    "required": ["id", "name"],
    "$defs": {
        "Kind": {"enum": ["a", "b"], "type": "string"},
        "Tag": {
            "type": "object",
            "properties": {"label": {"type": "string"}},
            "required": ["label"],
        },
    },
}


def _after(change: Any) -> dict[str, Any]:
    schema = copy.deepcopy(BEFORE)
    change(schema)
    return schema


def _kinds(breaks: list[Break]) -> set[tuple[str, str]]:
    return {(b.kind, b.path) for b in breaks}


def test_an_unchanged_schema_has_no_breaks() -> None:
    assert breaking_changes(BEFORE, copy.deepcopy(BEFORE)) == []


def test_additive_changes_pass() -> None:
    def additive(schema: dict[str, Any]) -> None:
        schema["properties"]["room"] = {"type": "string", "default": "A1"}  # new optional
        schema["properties"]["name"]["description"] = "The name."
        schema["$defs"]["Kind"]["enum"] = ["a", "b"]
        schema["properties"]["code"]["anyOf"][0] = {"enum": ["a", "b", "c"], "type": "string"}
        schema["$defs"]["Unused"] = {"type": "integer"}
        schema["properties"]["tags"]["items"] = {  # the same object, inline instead of $ref
            "type": "object",
            "properties": {"label": {"type": "string"}, "colour": {"type": "string"}},
            "required": ["label"],
        }

    assert breaking_changes(BEFORE, _after(additive)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda s: s["properties"].pop("count"),
            {("removed", "$.count")},
            id="optional-field-removed",
        ),
        pytest.param(
            lambda s: (
                s["properties"].update(title=s["properties"].pop("name")),
                s.update(required=["id", "title"]),
            ),
            {("removed", "$.name"), ("required", "$.title")},
            id="required-field-renamed",
        ),
        pytest.param(
            lambda s: s["required"].append("count"),
            {("required", "$.count")},
            id="optional-field-made-required",
        ),
        pytest.param(
            lambda s: (
                s["properties"].update(room={"type": "string"}),
                s["required"].append("room"),
            ),
            {("required", "$.room")},
            id="new-required-field",
        ),
        pytest.param(
            lambda s: s["required"].remove("name"),
            {("removed", "$.name")},
            id="required-field-made-optional",
        ),
        pytest.param(
            lambda s: s["properties"]["count"].update(type="integer"),
            {("narrowed", "$.count")},
            id="number-narrowed-to-integer",
        ),
        pytest.param(
            lambda s: s["properties"]["name"].update(maxLength=5),
            {("narrowed", "$.name")},
            id="string-bound-tightened",
        ),
        pytest.param(
            lambda s: s["properties"]["count"].update(minimum=1),
            {("narrowed", "$.count")},
            id="number-bound-tightened",
        ),
        pytest.param(
            lambda s: s["$defs"]["Kind"].update(enum=["a"]),
            {("narrowed", "$.kind")},  # not $.code: it is open (any string is accepted)
            id="enum-value-removed",
        ),
        pytest.param(
            lambda s: s["properties"].update(email={"type": "string"}),
            {("narrowed", "$.email")},
            id="null-no-longer-accepted",
        ),
        pytest.param(
            lambda s: s["properties"]["id"].update(format="date-time"),
            {("narrowed", "$.id"), ("widened", "$.id")},
            id="format-changed",
        ),
        pytest.param(
            lambda s: s["properties"].update(name={"type": "integer"}),
            {("narrowed", "$.name"), ("widened", "$.name")},
            id="type-changed",
        ),
        pytest.param(
            lambda s: s["$defs"]["Tag"]["properties"].update(label={"type": "integer"}),
            {("narrowed", "$.tags[].label"), ("widened", "$.tags[].label")},
            id="type-changed-inside-array-items-behind-a-ref",
        ),
        pytest.param(
            lambda s: s["$defs"]["Kind"].update(enum=["a", "b", "c"]),
            {("widened", "$.kind")},
            id="closed-enum-gains-a-value",
        ),
        pytest.param(
            lambda s: s["properties"]["count"].update(type=["number", "string"]),
            {("widened", "$.count")},
            id="type-widened",
        ),
    ],
)
def test_each_kind_of_break_is_found(change: Any, expected: set[tuple[str, str]]) -> None:
    breaks = breaking_changes(BEFORE, _after(change))

    assert _kinds(breaks) == expected, [str(b) for b in breaks]
    assert all(b.detail for b in breaks)


def test_breaks_name_the_schema_and_read_as_one_line() -> None:
    (found,) = breaking_changes(
        BEFORE, _after(lambda s: s["properties"].pop("count")), name="ClassCreatedV1"
    )

    assert str(found) == "ClassCreatedV1.count: removed: field removed or renamed"


def test_a_removed_schema_is_a_break_and_a_new_one_is_not() -> None:
    old = {"A": BEFORE, "B": BEFORE}
    new = {"A": copy.deepcopy(BEFORE), "C": BEFORE}

    assert breaking_changes_between_sets(old, new) == [
        Break("removed", "B", "the event's schema is gone")
    ]


def test_a_remote_ref_is_refused() -> None:
    with pytest.raises(ValueError, match="only local"):
        breaking_changes({"$ref": "https://example.com/x.json"}, BEFORE)
