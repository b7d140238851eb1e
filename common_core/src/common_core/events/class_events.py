"""Events published by the Class Management Service.

Every event is frozen and carries ``version``: the version of its aggregate (the class or the
student) *after* the change, starting at 1. Consumers order events of one aggregate by it and
drop stale ones. ``aggregate_id`` is the aggregate's id as a string, used as the Kafka key so
that all events of one aggregate land on the same partition, in order.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from common_core.enums import CourseCode
from common_core.names import MAX_NAME_LENGTH, NameStr

__all__ = [
    "AggregateVersion",
    "ClassCreatedV1",
    "ClassDeletedV1",
    "ClassUpdatedV1",
    "StudentCreatedV1",
    "StudentDeletedV1",
    "StudentUpdatedV1",
    "UserId",
]

UserId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
"""Id of the acting user: a non-empty string (stripped)."""

AggregateVersion = Annotated[int, Strict(), Field(ge=1)]
"""Version of an aggregate after a change: an integer >= 1 (booleans and strings rejected)."""

ClassDesignation = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NAME_LENGTH)
]

_EVENT_CONFIG = ConfigDict(frozen=True)


class ClassCreatedV1(BaseModel):
    """A class was created."""

    model_config = _EVENT_CONFIG

    class_id: UUID
    class_designation: ClassDesignation
    course_codes: list[CourseCode]
    user_id: UserId
    version: AggregateVersion

    @property
    def aggregate_id(self) -> str:
        """The Kafka key: the class id."""
        return str(self.class_id)


class ClassUpdatedV1(BaseModel):
    """A class was changed. A field left as ``None`` did not change."""

    model_config = _EVENT_CONFIG

    class_id: UUID
    class_designation: ClassDesignation | None = None
    course_codes: list[CourseCode] | None = None
    user_id: UserId
    version: AggregateVersion

    @property
    def aggregate_id(self) -> str:
        """The Kafka key: the class id."""
        return str(self.class_id)


class ClassDeletedV1(BaseModel):
    """A class was deleted."""

    model_config = _EVENT_CONFIG

    class_id: UUID
    user_id: UserId
    version: AggregateVersion

    @property
    def aggregate_id(self) -> str:
        """The Kafka key: the class id."""
        return str(self.class_id)


class StudentCreatedV1(BaseModel):
    """A student was created, optionally enrolled in some classes."""

    model_config = _EVENT_CONFIG

    student_id: UUID
    first_name: NameStr
    last_name: NameStr
    student_email: str | None = None
    class_ids: list[UUID] = Field(default_factory=list)
    created_by_user_id: UserId
    version: AggregateVersion

    @property
    def aggregate_id(self) -> str:
        """The Kafka key: the student id."""
        return str(self.student_id)


class StudentUpdatedV1(BaseModel):
    """A student was changed. A field left as ``None`` did not change."""

    model_config = _EVENT_CONFIG

    student_id: UUID
    first_name: NameStr | None = None
    last_name: NameStr | None = None
    student_email: str | None = None
    add_class_ids: list[UUID] | None = None
    remove_class_ids: list[UUID] | None = None
    updated_by_user_id: UserId
    version: AggregateVersion

    @property
    def aggregate_id(self) -> str:
        """The Kafka key: the student id."""
        return str(self.student_id)


class StudentDeletedV1(BaseModel):
    """A student was deleted."""

    model_config = _EVENT_CONFIG

    student_id: UUID
    user_id: UserId
    version: AggregateVersion

    @property
    def aggregate_id(self) -> str:
        """The Kafka key: the student id."""
        return str(self.student_id)
