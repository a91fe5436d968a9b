"""visit flags: moments of a visit flagged by staff, with a note

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 00:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vvserver.db.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "visit_flags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("at", vvserver.db.types.UTCDateTime(), nullable=False),
        sa.Column("offset_s", sa.Double(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["accounts.id"],
        ),
        sa.ForeignKeyConstraint(
            ["facility_id"],
            ["facilities.id"],
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("visit_flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visit_flags_visit_id"), ["visit_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("visit_flags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visit_flags_visit_id"))

    op.drop_table("visit_flags")
