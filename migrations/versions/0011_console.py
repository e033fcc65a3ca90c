"""The console's sessions; replicas report their snapshot position.

Revision ID: 0011_console
Revises: 0010_event_schemas
"""

from alembic import op

from migrations import SQL_DIR, split_statements

revision = "0011_console"
down_revision = "0010_event_schemas"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in split_statements((SQL_DIR / "0011_console.sql").read_text()):
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("migrations are forward-only")
