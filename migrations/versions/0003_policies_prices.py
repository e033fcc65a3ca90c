"""Policies, prices and providers' default prices.

Revision ID: 0003_policies_prices
Revises: 0002_snapshots
"""

from alembic import op

from migrations import SQL_DIR, split_statements

revision = "0003_policies_prices"
down_revision = "0002_snapshots"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in split_statements((SQL_DIR / "0003_policies_prices.sql").read_text()):
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
