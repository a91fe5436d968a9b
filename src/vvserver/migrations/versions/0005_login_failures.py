"""login failures: lockout of sign-ins for e-mail addresses without an active account

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 00:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vvserver.db.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", vvserver.db.types.UTCDateTime(), nullable=True),
        sa.Column("last_failed_at", vvserver.db.types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("email_hash"),
    )
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_failures_last_failed_at"), ["last_failed_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("login_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_login_failures_last_failed_at"))

    op.drop_table("login_failures")
