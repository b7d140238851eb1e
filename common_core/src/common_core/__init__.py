"""Shared Pydantic v2 contracts of the HuleEdu platform.

Events, the event envelope and topic names live in :mod:`common_core.events`.
"""

from common_core.enums import (
    COURSES,
    ClassStatus,
    CourseCode,
    CourseInfo,
    Language,
    course_display_name,
    course_language,
)
from common_core.names import PersonNameV1

__all__ = [
    "COURSES",
    "ClassStatus",
    "CourseCode",
    "CourseInfo",
    "Language",
    "PersonNameV1",
    "course_display_name",
    "course_language",
]
