"""The states on the compacted topics: one record per aggregate, its latest whole state.

On ``huleedu.class.state.v1`` and ``huleedu.class.student.state.v1`` the Kafka key is the
aggregate's id and the value an envelope whose ``data`` is one of these models, or a
tombstone (a null value) once the aggregate is deleted. Reading a state topic from the
beginning gives every live aggregate's latest state; read records with
:func:`common_core.events.parsing.parse_state_record`.
"""

from __future__ import annotations

from pydantic import Field

from common_core.events.fields import (
    AggregateVersion,
    ClassDesignation,
    EventClassStatus,
    EventCourseCode,
    SortedIds,
    StudentCount,
    UserId,
)
from common_core.events.keyed import ClassKeyed, StudentKeyed
from common_core.names import NameStr

__all__ = ["ClassStateV1", "StudentStateV1"]


class ClassStateV1(ClassKeyed):
    """A class's whole state at ``version`` (the fields of ``ClassCreatedV1``)."""

    class_designation: ClassDesignation = Field(description="The class's name.")
    course_codes: list[EventCourseCode] = Field(description="The class's course (one code).")
    user_id: UserId = Field(description="The teacher who owns the class.")
    version: AggregateVersion = Field(description="The class's version.")
    student_count: StudentCount = Field(description="How many students the class has.")
    status: EventClassStatus = Field(description="The class's status.")


class StudentStateV1(StudentKeyed):
    """A student's whole state at ``version`` (the fields of ``StudentCreatedV1``)."""

    first_name: NameStr
    last_name: NameStr
    legal_full_name: NameStr = Field(description="The student's legal name.")
    student_email: str | None = Field(
        description="The student's e-mail address, lower case; null when none."
    )
    class_ids: SortedIds = Field(description="Every class the student is in, sorted.")
    created_by_user_id: UserId = Field(description="The teacher who created the student.")
    version: AggregateVersion = Field(description="The student's version.")
