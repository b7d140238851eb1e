"""Student search bounded by the teacher: one GIN index of (owner, trigram) keys.

``q`` is always looked for among one teacher's students. 0004's trigram index held every
teacher's trigrams together: a search read the platform's entries of each of its trigrams
(tens of thousands for a common one in a platform of a million students) and intersected
them with the teacher's owner entries, so its cost grew with the platform, not the teacher.
Here each key is a trigram *of one owner*: ``owner_search_keys(owner, text)`` is the hash of
owner and trigram for each trigram of the search text that lies inside a word (pg_trgm's
``show_trgm`` pads words with blanks: a trigram with a blank marks a word's start or end,
which a substring pattern does not). A search asks for every key of its pattern's inner
trigrams, and reads only that teacher's entries. The keys are a filter, not the match: a
hash shared by two (owner, trigram) pairs only adds a candidate, and the owner and the LIKE
of the search text are still checked on each row.

``hashtext`` is IMMUTABLE in PostgreSQL; were a major upgrade to change it, this index
would need a REINDEX, as any index over it.

Creating the index reads every student: on a platform of a million students, a minute or
two, during which writes of students wait.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH_TEXT = "student_search_text(first_name, last_name, legal_full_name, email)"


def upgrade() -> None:
    # SQL-standard body, as 0004's functions: resolved once, here.
    op.execute(
        "CREATE FUNCTION owner_search_keys(owner text, search_text text) RETURNS integer[]"
        " LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE"
        " RETURN ARRAY(SELECT hashtext(owner || ' ' || trigram)"
        " FROM unnest(show_trgm(search_text)) AS trigram WHERE strpos(trigram, ' ') = 0)"
    )
    op.execute(
        "CREATE INDEX ix_students_owner_search ON students"
        f" USING gin (owner_search_keys(created_by_user_id, {SEARCH_TEXT}))"
    )
    op.drop_index("ix_students_search", table_name="students")


def downgrade() -> None:
    op.execute(f"CREATE INDEX ix_students_search ON students USING gin ({SEARCH_TEXT} gin_trgm_ops)")
    op.drop_index("ix_students_owner_search", table_name="students")
    op.execute("DROP FUNCTION owner_search_keys(text, text)")
