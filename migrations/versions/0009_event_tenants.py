"""Events record their tenant; every event names its actor.

Revision ID: 0009_event_tenants
Revises: 0008_tenant_versions
"""

from alembic import op

from migrations import SQL_DIR, split_statements

revision = "0009_event_tenants"
down_revision = "0008_tenant_versions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in split_statements((SQL_DIR / "0009_event_tenants.sql").read_text()):
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
