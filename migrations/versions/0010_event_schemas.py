"""Events record their schema; replicas report the schema they understand.

Revision ID: 0010_event_schemas
Revises: 0009_event_tenants
"""

from alembic import op

from migrations import SQL_DIR, split_statements

revision = "0010_event_schemas"
down_revision = "0009_event_tenants"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in split_statements((SQL_DIR / "0010_event_schemas.sql").read_text()):
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
