"""Deployments per route, usage per deployment, replica health.

Revision ID: 0006_deployments
Revises: 0005_usage_hourly
"""

from alembic import op

from migrations import SQL_DIR, split_statements

revision = "0006_deployments"
down_revision = "0005_usage_hourly"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in split_statements((SQL_DIR / "0006_deployments.sql").read_text()):
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
