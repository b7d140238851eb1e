"""Person names shared by every service.

A name is stored stripped of surrounding whitespace. It must be non-empty after stripping, at
most :data:`MAX_NAME_LENGTH` characters long, and may not contain NUL characters (which
PostgreSQL text columns cannot store).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, model_validator

__all__ = ["MAX_NAME_LENGTH", "NameStr", "PersonNameV1"]

MAX_NAME_LENGTH = 255


def _reject_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NameStr = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH),
    AfterValidator(_reject_nul),
]
"""A name component: stripped, non-empty, at most 255 characters, no NUL characters."""


class PersonNameV1(BaseModel):
    """A person's name. ``legal_full_name`` defaults to ``"<first_name> <last_name>"``."""

    model_config = ConfigDict(frozen=True)

    first_name: NameStr
    last_name: NameStr
    # The default is only a placeholder for type checkers: the validator below always fills a
    # missing (or None) legal_full_name from the stripped first and last names.
    legal_full_name: NameStr = ""

    @model_validator(mode="before")
    @classmethod
    def _default_legal_full_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("legal_full_name") is None:
            first, last = data.get("first_name"), data.get("last_name")
            if isinstance(first, str) and isinstance(last, str):
                return {**data, "legal_full_name": f"{first.strip()} {last.strip()}"}
        return data

    @property
    def full_name(self) -> str:
        """The display name, ``"<first_name> <last_name>"``."""
        return f"{self.first_name} {self.last_name}"
