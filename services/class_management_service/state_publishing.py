"""``publish-state``: every class's and student's current state onto the state topics.

For existing data, or a broker that lost its topics: the records go through the outbox like
every change's (a running relay sends them, keyed and ordered per aggregate like the rest),
in batches of ``batch_size`` aggregates per transaction.
"""

from __future__ import annotations

import uuid

from services.class_management_service.config import Settings
from services.class_management_service.di import build_engine
from services.class_management_service.implementations.announcements import Announcements
from services.class_management_service.implementations.postgres.repository import (
    PostgreSQLClassRepositoryImpl,
)

# The state records carry no user's request: one correlation id marks the whole run.
PUBLISHER = "publish-state"


async def publish_state(settings: Settings | None = None, batch_size: int = 500) -> int:
    """Write the state record of every class and student to the outbox; returns how many."""
    engine = build_engine(settings or Settings())
    try:
        repository = PostgreSQLClassRepositoryImpl(engine)
        return await repository.publish_state(
            announce=Announcements(PUBLISHER, uuid.uuid4()), batch_size=batch_size
        )
    finally:
        await engine.dispose()
