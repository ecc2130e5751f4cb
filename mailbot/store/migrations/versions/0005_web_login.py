"""The web desk: one-time login links (only the token's hash is kept).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_login_tokens"),
    )
    op.create_index("ix_login_tokens_expires_at", "login_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_login_tokens_expires_at", table_name="login_tokens")
    op.drop_table("login_tokens")
