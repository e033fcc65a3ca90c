"""Snapshots of the folded state, and the tables of the PostgreSQL job queue (pgqueuer).

Revision ID: 0002_snapshots
Revises: 0001_initial
"""

from alembic import op
from pgqueuer.adapters.persistence.qb import QueryBuilderEnvironment

from migrations import SQL_DIR, split_statements

revision = "0002_snapshots"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in split_statements((SQL_DIR / "0002_snapshots.sql").read_text()):
        op.execute(statement)
    # The job queue's own schema, as the pinned pgqueuer release defines it.
    install = QueryBuilderEnvironment().build_install_query(create_schema=False)
    for statement in split_statements(install):
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
