"""Usage records (partitioned by day), spend, and the fleet's limit counters.

Revision ID: 0004_usage
Revises: 0003_policies_prices
"""

from alembic import op

from migrations import SQL_DIR, split_statements

revision = "0004_usage"
down_revision = "0003_policies_prices"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in split_statements((SQL_DIR / "0004_usage.sql").read_text()):
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
