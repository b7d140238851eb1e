"""Courses and languages. :data:`COURSES` is the single source of truth about each course."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "COURSES",
    "ClassStatus",
    "CourseCode",
    "CourseInfo",
    "Language",
    "course_display_name",
    "course_language",
]


class CourseCode(StrEnum):
    """The courses the platform supports. Each value equals its name."""

    ENG5 = "ENG5"
    ENG6 = "ENG6"
    ENG7 = "ENG7"
    SV1 = "SV1"
    SV2 = "SV2"
    SV3 = "SV3"


class ClassStatus(StrEnum):
    """Whether a class is in use (``active``) or kept only for its history (``archived``)."""

    ACTIVE = "active"
    ARCHIVED = "archived"


class Language(StrEnum):
    """Language of a course, as an ISO 639-1 code."""

    EN = "en"
    SV = "sv"


@dataclass(frozen=True, slots=True)
class CourseInfo:
    """What the platform knows about one course."""

    code: CourseCode
    language: Language
    display_name: str


COURSES: Mapping[CourseCode, CourseInfo] = MappingProxyType(
    {
        info.code: info
        for info in (
            CourseInfo(CourseCode.ENG5, Language.EN, "English 5"),
            CourseInfo(CourseCode.ENG6, Language.EN, "English 6"),
            CourseInfo(CourseCode.ENG7, Language.EN, "English 7"),
            CourseInfo(CourseCode.SV1, Language.SV, "Svenska 1"),
            CourseInfo(CourseCode.SV2, Language.SV, "Svenska 2"),
            CourseInfo(CourseCode.SV3, Language.SV, "Svenska 3"),
        )
    }
)
"""Every :class:`CourseCode` mapped to its :class:`CourseInfo` (read-only)."""


def _info(code: CourseCode | str) -> CourseInfo:
    # CourseCode(...) raises ValueError for an unknown code; accepting str lets callers pass
    # raw values read from a database or a request.
    return COURSES[CourseCode(code)]


def course_language(code: CourseCode | str) -> Language:
    """The language a course is taught in. Raises ``ValueError`` for an unknown code."""
    return _info(code).language


def course_display_name(code: CourseCode | str) -> str:
    """The human-readable course name, e.g. ``"English 5"``. Raises ``ValueError`` if unknown."""
    return _info(code).display_name
