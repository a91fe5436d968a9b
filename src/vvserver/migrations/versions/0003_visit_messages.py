"""visit messages: in-call text chat, kept with the visit

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 00:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vvserver.db.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "visit_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", vvserver.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["facility_id"], ["facilities.id"]),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("visit_messages", schema=None) as batch_op:
        batch_op.create_index("ix_visit_messages_visit_id", ["visit_id", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_visit_messages_facility_id"), ["facility_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("visit_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visit_messages_facility_id"))
        batch_op.drop_index("ix_visit_messages_visit_id")

    op.drop_table("visit_messages")
