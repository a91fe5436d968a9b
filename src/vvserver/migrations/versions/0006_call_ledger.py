"""call ledger: where a visit's open call was last accounted, and which sides were in it

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 00:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vvserver.db.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ledger_at", vvserver.db.types.UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("visitor_in_call", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("kiosk_in_call", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_column("kiosk_in_call")
        batch_op.drop_column("visitor_in_call")
        batch_op.drop_column("ledger_at")
