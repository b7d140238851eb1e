"""A class's status: ``active`` (every class so far) or ``archived``.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The values of common_core's ClassStatus when this revision was written.
CLASS_STATUSES = ("active", "archived")


def upgrade() -> None:
    class_status_enum = postgresql.ENUM(*CLASS_STATUSES, name="class_status_enum")
    class_status_enum.create(op.get_bind(), checkfirst=False)
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        "classes",
        sa.Column(
            "status",
            postgresql.ENUM(name="class_status_enum", create_type=False),
            nullable=False,
            server_default="active",
        ),
    )


def downgrade() -> None:
    op.drop_column("classes", "status")
    postgresql.ENUM(name="class_status_enum").drop(op.get_bind(), checkfirst=False)
