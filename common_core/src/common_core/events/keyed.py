"""The base of every event: frozen, with the Kafka key taken from one of its id fields."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ClassKeyed", "KeyedEvent", "StudentKeyed"]


class KeyedEvent(BaseModel):
    """An event whose Kafka key is the value of its ``KEY_FIELD`` (the aggregate's id)."""

    model_config = ConfigDict(frozen=True)

    KEY_FIELD: ClassVar[str]
    """The name of the field whose value, as a string, is the message's Kafka key."""

    @property
    def aggregate_id(self) -> str:
        """The Kafka key: the aggregate's id as a string, so that one aggregate's messages
        share a partition."""
        return str(getattr(self, self.KEY_FIELD))


class ClassKeyed(KeyedEvent):
    """An event of a class, keyed by ``class_id``."""

    KEY_FIELD: ClassVar[str] = "class_id"

    class_id: UUID = Field(description="The class's id; the Kafka key.")


class StudentKeyed(KeyedEvent):
    """An event of a student, keyed by ``student_id``."""

    KEY_FIELD: ClassVar[str] = "student_id"

    student_id: UUID = Field(description="The student's id; the Kafka key.")
