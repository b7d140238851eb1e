"""Field types shared by the event models and the envelope.

Event fields that name something a newer producer may extend within v1 (a course, a class
status) are *open*: a known value parses into its enum member, an unknown one is kept as
the plain string it was, so that an older consumer keeps reading a newer producer's events.
Request models of the services keep using the closed enums and reject unknown values.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, Field, Strict, StringConstraints

from common_core.enums import ClassStatus, CourseCode
from common_core.names import MAX_NAME_LENGTH

__all__ = [
    "AggregateVersion",
    "ClassDesignation",
    "EventClassStatus",
    "EventCourseCode",
    "SortedIds",
    "StudentCount",
    "UserId",
    "UtcDatetime",
]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _sorted_distinct(ids: list[UUID]) -> list[UUID]:
    return sorted(set(ids))


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware datetime, converted to UTC. Naive datetimes are rejected."""

UserId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
"""Id of the acting user: a non-empty string (stripped)."""

AggregateVersion = Annotated[int, Strict(), Field(ge=1)]
"""Version of an aggregate after a change: an integer >= 1 (booleans and strings rejected)."""

StudentCount = Annotated[int, Strict(), Field(ge=0)]
"""How many students a class has: an integer >= 0."""

ClassDesignation = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH)
]
"""A class's name: stripped, non-empty, at most 255 characters."""

_UnknownValue = Annotated[str, StringConstraints(min_length=1)]

EventCourseCode = Annotated[
    CourseCode | _UnknownValue,
    Field(
        union_mode="left_to_right",
        description=(
            "A course code: a CourseCode member when this common_core knows it, else the "
            "code as sent (a newer producer's course), kept rather than rejected."
        ),
    ),
]
"""A :class:`CourseCode`, or the code as a plain string when this version does not know it."""

EventClassStatus = Annotated[
    ClassStatus | _UnknownValue,
    Field(
        union_mode="left_to_right",
        description=(
            "The class's status: a ClassStatus member when this common_core knows it, else "
            "the status as sent (a newer producer's status), kept rather than rejected."
        ),
    ),
]
"""A :class:`ClassStatus`, or the status as a plain string when this version does not know it."""

SortedIds = Annotated[list[UUID], AfterValidator(_sorted_distinct)]
"""A list of UUIDs, kept sorted and without duplicates whatever order it was given in."""
