"""Mailbox progress: how far each IMAP folder was read, and which Maildir messages were settled.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-02

Written by hand and frozen, like 0001.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mailbox_state",
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_mailbox_state"),
    )
    op.create_table(
        "mailbox_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("msg_key", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("settled_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_mailbox_keys"),
        sa.UniqueConstraint("source", "msg_key", name="uq_mailbox_keys_source_msg_key"),
    )


def downgrade() -> None:
    # Only for developing the migrations: forgetting this state makes the bot re-read every
    # message, which the store's dedupe then absorbs.
    op.drop_table("mailbox_keys")
    op.drop_table("mailbox_state")
