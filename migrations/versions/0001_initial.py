"""The event store and the admin API's projections.

Revision ID: 0001_initial
Revises:
"""

from alembic import op

from migrations import SQL_DIR, split_statements

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in split_statements((SQL_DIR / "0001_initial.sql").read_text()):
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
