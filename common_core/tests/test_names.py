from __future__ import annotations

import pytest
from common_core.names import MAX_NAME_LENGTH, PersonNameV1
from pydantic import ValidationError

NAME_FIELDS = ["first_name", "last_name", "legal_full_name"]


def _name(**overrides: object) -> PersonNameV1:
    fields: dict[str, object] = {"first_name": "Anna", "last_name": "Svensson", **overrides}
    return PersonNameV1.model_validate(fields)


def test_legal_full_name_defaults_to_first_and_last_name() -> None:
    name = PersonNameV1(first_name="Anna", last_name="Svensson")

    assert name.legal_full_name == "Anna Svensson"


def test_legal_full_name_default_uses_stripped_names() -> None:
    name = PersonNameV1(first_name="  Anna ", last_name="\tSvensson\n")

    assert name.first_name == "Anna"
    assert name.last_name == "Svensson"
    assert name.legal_full_name == "Anna Svensson"


def test_legal_full_name_none_means_default() -> None:
    assert _name(legal_full_name=None).legal_full_name == "Anna Svensson"


def test_explicit_legal_full_name_is_kept_and_stripped() -> None:
    name = _name(legal_full_name="  Anna Maria Svensson  ")

    assert name.legal_full_name == "Anna Maria Svensson"
    assert name.full_name == "Anna Svensson"


def test_full_name_is_first_and_last_name() -> None:
    assert _name(first_name="Erik", last_name="Lind").full_name == "Erik Lind"


@pytest.mark.parametrize("field", NAME_FIELDS)
@pytest.mark.parametrize("blank", ["", " ", "   \t\n "])
def test_blank_names_are_rejected(field: str, blank: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        _name(**{field: blank})

    assert [error["loc"] for error in excinfo.value.errors()] == [(field,)]


@pytest.mark.parametrize("field", NAME_FIELDS)
def test_names_longer_than_the_limit_are_rejected(field: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        _name(**{field: "x" * (MAX_NAME_LENGTH + 1)})

    assert excinfo.value.errors()[0]["type"] == "string_too_long"


@pytest.mark.parametrize("field", NAME_FIELDS)
def test_names_at_the_limit_are_accepted_and_length_counts_after_stripping(field: str) -> None:
    value = "x" * MAX_NAME_LENGTH

    name = _name(**{"legal_full_name": "Anna Svensson", field: f"  {value}  "})

    assert getattr(name, field) == value
    assert MAX_NAME_LENGTH == 255


def test_default_legal_full_name_longer_than_the_limit_is_rejected() -> None:
    # Both parts are valid, but "first last" would not fit: the caller must pass it explicitly.
    with pytest.raises(ValidationError) as excinfo:
        _name(first_name="x" * 200, last_name="y" * 60)

    assert [error["loc"] for error in excinfo.value.errors()] == [("legal_full_name",)]
    explicit = _name(first_name="x" * 200, last_name="y" * 60, legal_full_name="X Y")
    assert explicit.legal_full_name == "X Y"


@pytest.mark.parametrize("field", NAME_FIELDS)
def test_nul_characters_are_rejected(field: str) -> None:
    with pytest.raises(ValidationError, match="NUL"):
        _name(**{field: "An\x00na"})


@pytest.mark.parametrize("value", [123, None, ["Anna"]])
def test_non_string_first_name_is_rejected(value: object) -> None:
    with pytest.raises(ValidationError):
        _name(first_name=value)


def test_missing_last_name_is_rejected() -> None:
    with pytest.raises(ValidationError) as excinfo:
        PersonNameV1.model_validate({"first_name": "Anna"})

    assert ("last_name",) in [error["loc"] for error in excinfo.value.errors()]


def test_person_name_is_frozen() -> None:
    name = _name()

    with pytest.raises(ValidationError):
        name.first_name = "Other"  # type: ignore[misc]
    assert name.first_name == "Anna"


def test_person_name_json_round_trip() -> None:
    name = _name(legal_full_name="Anna Maria Svensson")

    assert PersonNameV1.model_validate_json(name.model_dump_json()) == name
