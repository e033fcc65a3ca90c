"""Hourly usage roll-ups.

Revision ID: 0005_usage_hourly
Revises: 0004_usage
"""

from alembic import op

from migrations import SQL_DIR, split_statements

revision = "0005_usage_hourly"
down_revision = "0004_usage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in split_statements((SQL_DIR / "0005_usage_hourly.sql").read_text()):
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
