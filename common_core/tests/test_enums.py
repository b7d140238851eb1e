from __future__ import annotations

import dataclasses

import pytest
from common_core.enums import (
    COURSES,
    ClassStatus,
    CourseCode,
    CourseInfo,
    Language,
    course_display_name,
    course_language,
)


def test_course_codes_are_exactly_the_supported_courses_with_value_equal_to_name() -> None:
    assert [code.value for code in CourseCode] == ["ENG5", "ENG6", "ENG7", "SV1", "SV2", "SV3"]
    assert all(code.value == code.name for code in CourseCode)
    assert CourseCode("SV2") is CourseCode.SV2


def test_class_statuses() -> None:
    assert [status.value for status in ClassStatus] == ["active", "archived"]


def test_languages() -> None:
    assert {language.name: language.value for language in Language} == {"EN": "en", "SV": "sv"}


def test_courses_mapping_covers_every_course_code_exactly() -> None:
    assert set(COURSES) == set(CourseCode)
    assert len(COURSES) == len(CourseCode)
    assert all(info.code is code for code, info in COURSES.items())


@pytest.mark.parametrize(
    ("code", "language", "display_name"),
    [
        (CourseCode.ENG5, Language.EN, "English 5"),
        (CourseCode.ENG6, Language.EN, "English 6"),
        (CourseCode.ENG7, Language.EN, "English 7"),
        (CourseCode.SV1, Language.SV, "Svenska 1"),
        (CourseCode.SV2, Language.SV, "Svenska 2"),
        (CourseCode.SV3, Language.SV, "Svenska 3"),
    ],
)
def test_course_language_and_display_name(
    code: CourseCode, language: Language, display_name: str
) -> None:
    assert COURSES[code] == CourseInfo(code, language, display_name)
    assert course_language(code) is language
    assert course_display_name(code) == display_name
    # Raw strings, e.g. read from a database, work too.
    assert course_language(code.value) is language
    assert course_display_name(code.value) == display_name


@pytest.mark.parametrize("bad", ["ENG8", "eng5", "", "SV"])
def test_unknown_course_codes_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        course_language(bad)
    with pytest.raises(ValueError):
        course_display_name(bad)


def test_courses_mapping_is_read_only() -> None:
    with pytest.raises(TypeError):
        COURSES[CourseCode.ENG5] = CourseInfo(CourseCode.ENG5, Language.SV, "x")  # type: ignore[index]
    assert COURSES[CourseCode.ENG5].language is Language.EN


def test_course_info_is_frozen() -> None:
    info = COURSES[CourseCode.SV1]

    with pytest.raises(dataclasses.FrozenInstanceError):
        info.display_name = "Changed"  # type: ignore[misc]
    assert info.display_name == "Svenska 1"
