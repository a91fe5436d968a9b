"""standing weekly visits (series and their occurrences) and legal holds on recordings

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 00:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import vvserver.db.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "visit_series",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visitor_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("local_time", sa.String(length=5), nullable=False),
        sa.Column("minors", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("next_date", sa.Date(), nullable=False),
        sa.Column("next_start_at", vvserver.db.types.UTCDateTime(), nullable=False),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("created_at", vvserver.db.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", vvserver.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"]),
        sa.ForeignKeyConstraint(["visitor_id"], ["accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_visit_series_state_next", "visit_series", ["state", "next_start_at"])
    op.create_index("ix_visit_series_person_id", "visit_series", ["person_id"])
    op.create_index("ix_visit_series_visitor_id", "visit_series", ["visitor_id"])
    op.create_table(
        "series_occurrences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("start_at", vvserver.db.types.UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("reason_code", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("alternatives", sa.JSON(), nullable=False),
        sa.Column("created_at", vvserver.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["series_id"], ["visit_series.id"]),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("series_id", "local_date", name="uq_series_occurrences_date"),
    )
    op.create_index("ix_series_occurrences_visit_id", "series_occurrences", ["visit_id"])
    op.create_table(
        "recording_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_by", sa.Integer(), nullable=False),
        sa.Column("placed_at", vvserver.db.types.UTCDateTime(), nullable=False),
        sa.Column("lifted_by", sa.Integer(), nullable=True),
        sa.Column("lifted_at", vvserver.db.types.UTCDateTime(), nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["facility_id"], ["facilities.id"]),
        sa.ForeignKeyConstraint(["lifted_by"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["placed_by"], ["accounts.id"]),
        sa.ForeignKeyConstraint(["visit_id"], ["visits.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_recording_holds_visit_id", "recording_holds", ["visit_id"])
    # At most one hold in force per visit (a lifted hold stays as history).
    op.create_index(
        "uq_recording_holds_active",
        "recording_holds",
        ["visit_id"],
        unique=True,
        sqlite_where=sa.text("lifted_at IS NULL"),
        postgresql_where=sa.text("lifted_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_recording_holds_active", table_name="recording_holds")
    op.drop_index("ix_recording_holds_visit_id", table_name="recording_holds")
    op.drop_table("recording_holds")
    op.drop_index("ix_series_occurrences_visit_id", table_name="series_occurrences")
    op.drop_table("series_occurrences")
    op.drop_index("ix_visit_series_visitor_id", table_name="visit_series")
    op.drop_index("ix_visit_series_person_id", table_name="visit_series")
    op.drop_index("ix_visit_series_state_next", table_name="visit_series")
    op.drop_table("visit_series")
