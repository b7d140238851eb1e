"""Search and sort: accent-free trigram search of names, Swedish name order, owner-first sorts.

``q`` matches a substring of ``search_folded(...)`` (lower case, accents removed by the
``unaccent`` dictionary), served by pg_trgm GIN indexes over those expressions.
``unaccent()`` is only STABLE (its dictionary could change), which an index expression may
not be: ``search_folded`` names the dictionary and is declared IMMUTABLE. Names sort with the
ICU collation ``sv-x-icu`` whatever the database's own locale: it becomes the collation of
the name columns (equality stays byte-wise: the collation is deterministic), so every
ORDER BY of a name and the owner-first (name, id) indexes share it; the time sorts are served
by owner-first (time, id) indexes.

Both extensions are trusted (PostgreSQL 13+): the database's owner may create them.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME_COLLATION = "sv-x-icu"
# (table, column, length) of the names that sort in NAME_COLLATION.
NAME_COLUMNS = (
    ("classes", "name", 255),
    ("students", "first_name", 255),
    ("students", "last_name", 255),
)
# (name, table, expression) of every index this revision adds.
INDEXES = (
    ("ix_classes_name_search", "classes", "USING gin (search_folded(name) gin_trgm_ops)"),
    ("ix_classes_owner_name", "classes", "(created_by_user_id, name, id)"),
    ("ix_classes_owner_updated_at", "classes", "(created_by_user_id, updated_at, id)"),
    (
        "ix_students_search",
        "students",
        "USING gin (student_search_text(first_name, last_name, legal_full_name, email)"
        " gin_trgm_ops)",
    ),
    (
        "ix_students_owner_name",
        "students",
        "(created_by_user_id, last_name, first_name, id)",
    ),
    ("ix_students_owner_created_at", "students", "(created_by_user_id, created_at, id)"),
    ("ix_students_owner_updated_at", "students", "(created_by_user_id, updated_at, id)"),
)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # SQL-standard bodies: resolved once, here, so no search_path can redirect them later.
    op.execute(
        "CREATE FUNCTION search_folded(value text) RETURNS text"
        " LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE"
        " RETURN lower(unaccent('unaccent'::regdictionary, value))"
    )
    op.execute(
        "CREATE FUNCTION student_search_text("
        "first_name text, last_name text, legal_full_name text, email text) RETURNS text"
        " LANGUAGE sql IMMUTABLE PARALLEL SAFE"
        " RETURN search_folded("
        "first_name || ' ' || last_name || ' ' || legal_full_name || ' ' || coalesce(email, ''))"
    )
    for table, column, length in NAME_COLUMNS:
        op.execute(
            f"ALTER TABLE {table} ALTER COLUMN {column}"
            f' TYPE varchar({length}) COLLATE "{NAME_COLLATION}"'
        )
    # The class list's default order (newest first) gets its tie-breaker in the index too.
    op.drop_index("ix_classes_owner_created_at", table_name="classes")
    op.execute(
        "CREATE INDEX ix_classes_owner_created_at ON classes (created_by_user_id, created_at, id)"
    )
    for name, table, expression in INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} {expression}")


def downgrade() -> None:
    for name, table, _expression in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_index("ix_classes_owner_created_at", table_name="classes")
    op.create_index("ix_classes_owner_created_at", "classes", ["created_by_user_id", "created_at"])
    for table, column, length in NAME_COLUMNS:
        op.execute(
            f'ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar({length}) COLLATE "default"'
        )
    op.execute("DROP FUNCTION student_search_text(text, text, text, text)")
    op.execute("DROP FUNCTION search_folded(text)")
    # The extensions stay: other objects of the database may use them.
