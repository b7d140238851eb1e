"""The outbox holds only what is still to be sent: published rows are deleted, not marked.

Rows already published are deleted here; ``published_at`` goes, and the pending index
now covers every row that is not parked.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM event_outbox WHERE published_at IS NOT NULL")
    op.drop_index("ix_event_outbox_pending", table_name="event_outbox")
    op.drop_column("event_outbox", "published_at")
    op.create_index(
        "ix_event_outbox_pending",
        "event_outbox",
        ["id"],
        postgresql_where=sa.text("parked_at IS NULL"),
    )


def downgrade() -> None:
    # Rows published after the upgrade are gone; every row left is pending or parked.
    op.drop_index("ix_event_outbox_pending", table_name="event_outbox")
    op.add_column(
        "event_outbox",
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_event_outbox_pending",
        "event_outbox",
        ["id"],
        postgresql_where=sa.text("published_at IS NULL AND parked_at IS NULL"),
    )
