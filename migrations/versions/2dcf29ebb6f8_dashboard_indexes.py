"""dashboard indexes

Revision ID: 2dcf29ebb6f8
Revises: 0cfd68cd5513
Create Date: 2026-11-22 02:28:31.037986

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '2dcf29ebb6f8'
down_revision = '0cfd68cd5513'
branch_labels = None
depends_on = None

FAILED = sa.text("status = 'failed'")


def upgrade():
    # CONCURRENTLY on Postgres: tables with millions of rows keep taking sends while the
    # indexes build. It cannot run inside a transaction, hence the autocommit block.
    with op.get_context().autocommit_block():
        op.create_index('ix_notifications_created_at', 'notifications', ['created_at'], unique=False, postgresql_concurrently=True)
        op.create_index('ix_deliveries_created_at', 'deliveries', ['created_at'], unique=False, postgresql_concurrently=True)
        op.create_index('ix_deliveries_failed', 'deliveries', ['updated_at'], unique=False, postgresql_where=FAILED, sqlite_where=FAILED, postgresql_concurrently=True)


def downgrade():
    with op.get_context().autocommit_block():
        op.drop_index('ix_deliveries_failed', table_name='deliveries', postgresql_concurrently=True)
        op.drop_index('ix_deliveries_created_at', table_name='deliveries', postgresql_concurrently=True)
        op.drop_index('ix_notifications_created_at', table_name='notifications', postgresql_concurrently=True)
