"""Outbox: the bare address of each mail's first recipient, indexed with the time it was queued.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

The reply cap (replies per sender per hour) counts in SQL on this column instead of reading
every recent row's recipient list, which made a backlog of mail quadratic. Rows queued before
this revision keep NULL: they are older than any hour that matters by the time it runs.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("first_recipient", sa.String(320), nullable=True))
    op.create_index("ix_outbox_first_recipient_created_at", "outbox", ["first_recipient", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_first_recipient_created_at", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("first_recipient")
