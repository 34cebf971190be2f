"""retention index on settled webhook events

Revision ID: 5e1c0a7d9b42
Revises: 2dcf29ebb6f8
Create Date: 2026-11-22 03:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e1c0a7d9b42'
down_revision = '2dcf29ebb6f8'
branch_labels = None
depends_on = None

SETTLED = sa.text("status <> 'queued'")


def upgrade():
    # Retention finds settled events by age without reading the whole table.
    with op.get_context().autocommit_block():
        op.create_index('ix_webhook_events_settled', 'webhook_events', ['updated_at'], unique=False, postgresql_where=SETTLED, sqlite_where=SETTLED, postgresql_concurrently=True)


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index('ix_webhook_events_settled', table_name='webhook_events', postgresql_concurrently=True)
