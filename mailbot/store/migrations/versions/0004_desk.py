"""The credit section's desk: the audit log, holiday schedules loaded by mail, closed months;
messages may now be commands or forwarded replies.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = ("accepted", "partially_accepted", "rejected", "ignored", "quarantined", "failed")
_NEW = _OLD + ("command", "forwarded")


def _outcomes(values: tuple[str, ...]) -> str:
    return f"outcome IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("ck_messages_outcome", type_="check")
        batch.create_check_constraint("ck_messages_outcome", _outcomes(_NEW))
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("section", sa.String(100), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("ref", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
        sa.UniqueConstraint("ref", name="uq_audit_ref"),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_table(
        "loaded_calendars",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("days_off", sa.JSON(), nullable=False),
        sa.Column("workdays", sa.JSON(), nullable=False),
        sa.Column("notice", sa.Text(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("loaded_by", sa.String(320), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_loaded_calendars"),
    )
    op.create_index("ix_loaded_calendars_year", "loaded_calendars", ["year"])
    op.create_table(
        "closed_periods",
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by", sa.String(320), nullable=False),
        sa.PrimaryKeyConstraint("period", name="pk_closed_periods"),
    )


def downgrade() -> None:
    op.drop_table("closed_periods")
    op.drop_index("ix_loaded_calendars_year", table_name="loaded_calendars")
    op.drop_table("loaded_calendars")
    op.drop_index("ix_audit_at", table_name="audit")
    op.drop_table("audit")
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("ck_messages_outcome", type_="check")
        batch.create_check_constraint("ck_messages_outcome", _outcomes(_OLD))
