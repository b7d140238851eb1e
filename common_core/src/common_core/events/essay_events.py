"""Essay links: which student an essay belongs to.

An essay belongs to at most one student. The Kafka key is the essay id, so that the link
and unlink events of one essay land on the same partition of their topics. Links carry no
version: of one essay's events, the one with the latest ``linked_at``/``unlinked_at`` says
whether it is linked now.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from pydantic import Field

from common_core.events.fields import UserId, UtcDatetime
from common_core.events.keyed import KeyedEvent

__all__ = ["EssayLinkedV1", "EssayUnlinkedV1"]


class _EssayLinkEvent(KeyedEvent):
    KEY_FIELD: ClassVar[str] = "essay_id"

    essay_id: UUID = Field(description="The essay's id; the Kafka key.")
    student_id: UUID = Field(description="The student the essay belongs (belonged) to.")
    user_id: UserId = Field(description="The teacher who made the change.")


class EssayLinkedV1(_EssayLinkEvent):
    """An essay was linked to a student."""

    linked_at: UtcDatetime = Field(description="When the link was made (UTC).")


class EssayUnlinkedV1(_EssayLinkEvent):
    """An essay was unlinked from its student."""

    unlinked_at: UtcDatetime = Field(description="When the link was removed (UTC).")
