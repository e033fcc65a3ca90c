"""Provider options; the operation and dialect of each usage record.

Revision ID: 0007_provider_kinds
Revises: 0006_deployments
"""

from alembic import op

from migrations import SQL_DIR, split_statements

revision = "0007_provider_kinds"
down_revision = "0006_deployments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in split_statements((SQL_DIR / "0007_provider_kinds.sql").read_text()):
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
