"""staff mfa: TOTP secret and replay step on accounts, recovery codes, pending logins,
and the facility setting that makes officers use a second factor

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 00:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vvserver.db.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("mfa_secret", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("mfa_enrolled_at", vvserver.db.types.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("mfa_last_step", sa.BigInteger(), nullable=True))
    # Existing facilities get the secure default too: their officers enrol at next sign-in.
    with op.batch_alter_table("facilities", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "officer_mfa_required", sa.Boolean(), server_default=sa.true(), nullable=False
            )
        )
    op.create_table(
        "mfa_recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", vvserver.db.types.UTCDateTime(), nullable=False),
        sa.Column("used_at", vvserver.db.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("mfa_recovery_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mfa_recovery_codes_account_id"), ["account_id"], unique=False
        )
    op.create_table(
        "mfa_pending_logins",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=8), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", vvserver.db.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", vvserver.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    with op.batch_alter_table("mfa_pending_logins", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_mfa_pending_logins_account_id"), ["account_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("mfa_pending_logins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mfa_pending_logins_account_id"))
    op.drop_table("mfa_pending_logins")
    with op.batch_alter_table("mfa_recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mfa_recovery_codes_account_id"))
    op.drop_table("mfa_recovery_codes")
    with op.batch_alter_table("facilities", schema=None) as batch_op:
        batch_op.drop_column("officer_mfa_required")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("mfa_last_step")
        batch_op.drop_column("mfa_enrolled_at")
        batch_op.drop_column("mfa_secret")
