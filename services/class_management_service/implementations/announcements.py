"""What a change announces: the outbox rows of one aggregate's change, built from its states
before and after.

Every change of a class or a student writes two rows: its event on the change topic (the
whole state after the change; an update also ``previous``, the changed fields' values
before) and its record on the state topic (the whole state, or a tombstone once deleted).
The repository calls these after it has locked and read the rows, so versions and states
are those the database holds.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from common_core.events import (
    CLASS_STATE_TOPIC,
    STUDENT_STATE_TOPIC,
    ClassCreatedV1,
    ClassDeletedV1,
    ClassPreviousV1,
    ClassStateV1,
    ClassUpdatedV1,
    EssayLinkedV1,
    EssayUnlinkedV1,
    StudentCreatedV1,
    StudentDeletedV1,
    StudentPreviousV1,
    StudentStateV1,
    StudentUpdatedV1,
    make_envelope,
)
from pydantic import BaseModel

from services.class_management_service.config import SERVICE_NAME
from services.class_management_service.domain import (
    ClassRecord,
    EssayLinkRecord,
    OutboxEntry,
    StudentRecord,
)
from services.class_management_service.tracing import trace_metadata


def class_state(record: ClassRecord) -> ClassStateV1:
    """The class's whole state as the state topic carries it."""
    return ClassStateV1(
        class_id=record.id,
        class_designation=record.name,
        course_codes=[record.course_code],
        user_id=record.created_by_user_id,
        version=record.version,
        student_count=record.student_count,
        status=record.status,
    )


def student_state(record: StudentRecord) -> StudentStateV1:
    """The student's whole state as the state topic carries it."""
    return StudentStateV1(
        student_id=record.id,
        first_name=record.first_name,
        last_name=record.last_name,
        legal_full_name=record.legal_full_name,
        student_email=record.email,
        class_ids=sorted(record.class_ids),
        created_by_user_id=record.created_by_user_id,
        version=record.version,
    )


def _changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The fields whose values differ, with their values before."""
    return {name: value for name, value in before.items() if after[name] != value}


class Announcements:
    """The outbox rows of the changes one request makes (its user and correlation id)."""

    def __init__(self, user_id: str, correlation_id: uuid.UUID) -> None:
        self._user_id = user_id
        self._correlation_id = correlation_id
        self._metadata: dict[str, str] | None = None

    def _entry(self, data: BaseModel) -> OutboxEntry:
        # One trace context for every row of the request (outside one, a new trace for all).
        if self._metadata is None:
            self._metadata = trace_metadata()
        return OutboxEntry.of(
            make_envelope(
                data,
                source_service=SERVICE_NAME,
                correlation_id=self._correlation_id,
                metadata=self._metadata,
            )
        )

    def _ended(self, deleted: ClassDeletedV1 | StudentDeletedV1, topic: str) -> list[OutboxEntry]:
        """The deleted event, and the tombstone of the aggregate on its state topic."""
        tombstone = OutboxEntry(uuid.uuid4(), topic, topic, deleted.aggregate_id, None)
        return [self._entry(deleted), tombstone]

    def state(self, record: ClassRecord | StudentRecord) -> OutboxEntry:
        """The state-topic record of ``record`` as it is."""
        if isinstance(record, ClassRecord):
            return self._entry(class_state(record))
        return self._entry(student_state(record))

    def class_changed(
        self, before: ClassRecord | None, after: ClassRecord | None
    ) -> list[OutboxEntry]:
        """The rows of a class created (``before`` None), changed, or deleted (``after``
        None; the deletion's version is one past the last)."""
        if after is None:
            assert before is not None
            return self._ended(
                ClassDeletedV1(
                    class_id=before.id, user_id=self._user_id, version=before.version + 1
                ),
                CLASS_STATE_TOPIC,
            )
        now = class_state(after)
        state = now.model_dump()
        if before is None:
            return [self._entry(ClassCreatedV1(**state)), self._entry(now)]
        previous = _changed(class_state(before).model_dump(exclude={"version"}), state)
        updated = ClassUpdatedV1(
            **{**state, "user_id": self._user_id},
            previous=ClassPreviousV1(**previous),
        )
        return [self._entry(updated), self._entry(now)]

    def student_changed(
        self, before: StudentRecord | None, after: StudentRecord | None
    ) -> list[OutboxEntry]:
        """The rows of a student created (``before`` None), changed, or deleted (``after``
        None; the deletion's version is one past the last)."""
        if after is None:
            assert before is not None
            return self._ended(
                StudentDeletedV1(
                    student_id=before.id, user_id=self._user_id, version=before.version + 1
                ),
                STUDENT_STATE_TOPIC,
            )
        now = student_state(after)
        state = now.model_dump()
        if before is None:
            return [self._entry(StudentCreatedV1(**state)), self._entry(now)]
        old = student_state(before).model_dump(exclude={"version", "created_by_user_id"})
        previous = _changed(old, state)
        added = sorted(set(after.class_ids) - set(before.class_ids))
        removed = sorted(set(before.class_ids) - set(after.class_ids))
        del state["created_by_user_id"]
        updated = StudentUpdatedV1(
            **state,
            updated_by_user_id=self._user_id,
            add_class_ids=added or None,
            remove_class_ids=removed or None,
            previous=StudentPreviousV1(**previous),
        )
        return [self._entry(updated), self._entry(now)]

    def essay_linked(self, link: EssayLinkRecord) -> OutboxEntry:
        """The row announcing that ``link`` was made."""
        return self._entry(
            EssayLinkedV1(
                essay_id=link.essay_id,
                student_id=link.student_id,
                user_id=self._user_id,
                linked_at=link.created_at,
            )
        )

    def essay_unlinked(
        self, essay_id: uuid.UUID, student_id: uuid.UUID, at: datetime
    ) -> OutboxEntry:
        """The row announcing that the essay's link to the student was removed at ``at``."""
        return self._entry(
            EssayUnlinkedV1(
                essay_id=essay_id, student_id=student_id, user_id=self._user_id, unlinked_at=at
            )
        )
