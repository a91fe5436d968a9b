"""visit now: on-demand visits, their ringing state and its deadline

A visit started on demand (``on_demand``: who started it, ``visitor`` or ``kiosk``) is a real
visit row from the first ring, in the new active state ``ringing`` until it is answered: the
kiosk-and-start backstop index must count that state as active too.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 00:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vvserver.db.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_OLD_ACTIVE = "state IN ('scheduled', 'ready', 'live')"
_NEW_ACTIVE = "state IN ('ringing', 'scheduled', 'ready', 'live')"


def _backstop(batch_op: object, where: str) -> None:
    batch_op.create_index(  # type: ignore[attr-defined]
        "uq_visits_kiosk_start_active",
        ["kiosk_id", "start_at"],
        unique=True,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("on_demand", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("ring_until", vvserver.db.types.UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("limit_exempt", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.drop_index("uq_visits_kiosk_start_active")
        _backstop(batch_op, _NEW_ACTIVE)


def downgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("uq_visits_kiosk_start_active")
        _backstop(batch_op, _OLD_ACTIVE)
        batch_op.drop_column("limit_exempt")
        batch_op.drop_column("ring_until")
        batch_op.drop_column("on_demand")
