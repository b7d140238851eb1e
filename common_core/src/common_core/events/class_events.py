"""Change events of classes and students, published by the Class Management Service.

Every event is frozen and carries ``version``: the version of its aggregate (the class or the
student) *after* the change, starting at 1. ``aggregate_id`` is the aggregate's id as a
string, used as the Kafka key so that all events of one aggregate land on the same partition.

Created and updated events carry the aggregate's whole state after the change, and updated
events say what changed in ``previous``. A consumer that keeps, per aggregate id, the event
with the highest ``version`` (a deleted event as a tombstone) ends with the producer's state,
whatever order and duplicates it read the topics in.

Fields added within v1 have defaults, so that messages of older producers still parse: a
``None`` in one of them means "not sent by that producer", never a value.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from common_core.enums import ClassStatus
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

__all__ = [
    "AggregateVersion",
    "ClassCreatedV1",
    "ClassDeletedV1",
    "ClassPreviousV1",
    "ClassUpdatedV1",
    "StudentCreatedV1",
    "StudentDeletedV1",
    "StudentPreviousV1",
    "StudentUpdatedV1",
    "UserId",
]

_EVENT_CONFIG = ConfigDict(frozen=True)


class _ChangedFields(BaseModel):
    """The values some fields had before a change; only the fields that changed are present.

    A field that is absent did not change; a field present with ``null`` was null before
    (e.g. a student without an e-mail address). Serialised without the absent fields.
    """

    model_config = _EVENT_CONFIG

    @model_serializer(mode="wrap")
    def _only_changed(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        return {name: value for name, value in dumped.items() if name in self.model_fields_set}

    @property
    def changed_fields(self) -> frozenset[str]:
        """The names of the fields that changed (those present in this object)."""
        return frozenset(self.model_fields_set)


class ClassPreviousV1(_ChangedFields):
    """What a class's changed fields were before the change (absent: did not change)."""

    class_designation: ClassDesignation | None = None
    course_codes: list[EventCourseCode] | None = None
    student_count: StudentCount | None = None
    status: EventClassStatus | None = None


class StudentPreviousV1(_ChangedFields):
    """What a student's changed fields were before the change (absent: did not change)."""

    first_name: NameStr | None = None
    last_name: NameStr | None = None
    legal_full_name: NameStr | None = None
    student_email: str | None = None
    class_ids: SortedIds | None = None


class ClassCreatedV1(ClassKeyed):
    """A class was created: its whole state, at ``version`` 1."""

    class_designation: ClassDesignation = Field(description="The class's name.")
    course_codes: list[EventCourseCode] = Field(description="The class's course (one code).")
    user_id: UserId = Field(description="The teacher who created, and owns, the class.")
    version: AggregateVersion = Field(description="The class's version after the change.")
    student_count: StudentCount = Field(
        default=0, description="How many students the class has (0 for a new class)."
    )
    status: EventClassStatus = Field(default=ClassStatus.ACTIVE, description="The class's status.")


class ClassUpdatedV1(ClassKeyed):
    """A class was changed: its whole state after the change, and in ``previous`` the
    values its changed fields had before.

    Events of older producers carried only the changed fields (``None``: unchanged) and
    neither ``student_count`` nor ``previous`` (``None``: not sent).
    """

    class_designation: ClassDesignation | None = Field(
        default=None, description="The class's name after the change."
    )
    course_codes: list[EventCourseCode] | None = Field(
        default=None, description="The class's course (one code) after the change."
    )
    user_id: UserId = Field(description="The teacher who made the change.")
    version: AggregateVersion = Field(description="The class's version after the change.")
    student_count: StudentCount | None = Field(
        default=None, description="How many students the class has after the change."
    )
    status: EventClassStatus = Field(
        default=ClassStatus.ACTIVE, description="The class's status after the change."
    )
    previous: ClassPreviousV1 | None = Field(
        default=None,
        description="The changed fields' values before the change, keyed by field name.",
    )


class ClassDeletedV1(ClassKeyed):
    """A class was deleted: a tombstone for its id at ``version``."""

    user_id: UserId = Field(description="The teacher who deleted the class.")
    version: AggregateVersion = Field(description="The class's version of the deletion.")


class StudentCreatedV1(StudentKeyed):
    """A student was created, optionally enrolled in some classes: its whole state."""

    first_name: NameStr
    last_name: NameStr
    student_email: str | None = Field(
        default=None, description="The student's e-mail address, lower case; null when none."
    )
    class_ids: SortedIds = Field(
        default_factory=list, description="Every class the student is in, sorted."
    )
    created_by_user_id: UserId = Field(description="The teacher who created the student.")
    version: AggregateVersion = Field(description="The student's version after the change.")
    legal_full_name: NameStr | None = Field(
        default=None,
        description="The student's legal name (null: not sent, by an older producer).",
    )


class StudentUpdatedV1(StudentKeyed):
    """A student was changed: its whole state after the change; ``add_class_ids`` and
    ``remove_class_ids`` when memberships changed; in ``previous`` the values its changed
    fields had before.

    Events of older producers carried only the changed fields (``None``: unchanged) and
    neither ``legal_full_name``, ``class_ids`` nor ``previous`` (``None``: not sent).
    """

    first_name: NameStr | None = None
    last_name: NameStr | None = None
    student_email: str | None = Field(
        default=None, description="The student's e-mail address after the change; null: none."
    )
    add_class_ids: list[UUID] | None = Field(
        default=None, description="Classes the student was added to by this change."
    )
    remove_class_ids: list[UUID] | None = Field(
        default=None, description="Classes the student was removed from by this change."
    )
    updated_by_user_id: UserId = Field(description="The teacher who made the change.")
    version: AggregateVersion = Field(description="The student's version after the change.")
    legal_full_name: NameStr | None = Field(
        default=None, description="The student's legal name after the change."
    )
    class_ids: SortedIds | None = Field(
        default=None, description="Every class the student is in after the change, sorted."
    )
    previous: StudentPreviousV1 | None = Field(
        default=None,
        description="The changed fields' values before the change, keyed by field name.",
    )


class StudentDeletedV1(StudentKeyed):
    """A student was deleted: a tombstone for its id at ``version``."""

    user_id: UserId = Field(description="The teacher who deleted the student.")
    version: AggregateVersion = Field(description="The student's version of the deletion.")
