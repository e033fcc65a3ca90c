"""A tenant's version follows its stream, policy changes included.

Revision ID: 0008_tenant_versions
Revises: 0007_provider_kinds
"""

from alembic import op

from migrations import SQL_DIR, split_statements

revision = "0008_tenant_versions"
down_revision = "0007_provider_kinds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in split_statements((SQL_DIR / "0008_tenant_versions.sql").read_text()):
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
