"""Each record is built from the tuple of columns that selects it, by name.

Adding a column is one edit in implementations/postgres/tables.py (plus the migration): the
SELECTs, the RETURNINGs and the record all follow that one tuple.
"""

from __future__ import annotations

import uuid
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import pytest

from common_core import ClassStatus, CourseCode
from services.class_management_service.domain import (
    ClassRecord,
    EssayLinkRecord,
    RosterEntryRecord,
    StudentRecord,
)
from services.class_management_service.implementations.postgres import students, tables

COLUMNS_OF_RECORDS = [
    (tables.CLASS_COLUMNS, ClassRecord),
    (tables.STUDENT_COLUMNS, StudentRecord),
    (tables.ROSTER_ENTRY_COLUMNS, RosterEntryRecord),
    (tables.ESSAY_LINK_COLUMNS, EssayLinkRecord),
]


@pytest.mark.parametrize(
    ("columns", "record"), COLUMNS_OF_RECORDS, ids=[r.__name__ for _, r in COLUMNS_OF_RECORDS]
)
def test_each_column_tuples_labels_are_its_records_fields_in_order(
    columns: tuple[Any, ...], record: type[Any]
) -> None:
    assert tables.column_names(columns) == tuple(field.name for field in fields(record))


def test_a_student_update_sets_fields_of_the_record_and_columns_of_the_table() -> None:
    """UPDATE_STUDENT binds each of STUDENT_FIELDS from the record after the change."""
    names = {field.name for field in fields(StudentRecord)}
    assert set(students.STUDENT_FIELDS) <= names & set(tables.students.c.keys())


def test_a_record_is_built_from_its_columns_with_their_conversions() -> None:
    now = datetime.now(UTC)
    class_id, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    # A page's row carries its total after the record's columns.
    row_of_class = (class_id, "9A", "ENG5", 3, "u", now, now, 2, "archived", 17)
    klass = tables.class_record(row_of_class)  # type: ignore[arg-type]
    assert klass == ClassRecord(
        class_id, "9A", CourseCode.ENG5, 3, "u", now, now, 2, ClassStatus.ARCHIVED
    )
    assert type(klass.course_code) is CourseCode
    assert type(klass.status) is ClassStatus
    row = (class_id, "Ada", "L", "Ada L", None, [second, first], "u", now, now, 1)
    student = tables.student_record(row)  # type: ignore[arg-type]
    assert student.class_ids == tuple(sorted((first, second)))
    assert tables.student_record((*row[:5], None, *row[6:])).class_ids == ()  # type: ignore[arg-type]


def test_a_record_whose_columns_do_not_match_is_refused_at_import() -> None:
    with pytest.raises(TypeError, match="EssayLinkRecord"):
        tables.record_from(tables.ESSAY_LINK_COLUMNS[::-1], EssayLinkRecord)
