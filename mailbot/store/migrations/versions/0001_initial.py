"""The initial schema: messages, attachments, submissions, outbox, failures.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Written by hand and frozen: the values in the CHECK constraints are spelled out here rather
than imported from mailbot.store, so a later change there needs a new migration.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(998), nullable=False),
        sa.Column("raw_sha256", sa.String(64), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("from_addr", sa.Text(), nullable=False),
        sa.Column("from_name", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("section", sa.String(100), nullable=True),
        sa.Column("section_evidence", sa.JSON(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("receipt_no", sa.String(32), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.UniqueConstraint("message_id", "raw_sha256", name="uq_messages_message_id_raw_sha256"),
        sa.UniqueConstraint("receipt_no", name="uq_messages_receipt_no"),
        sa.CheckConstraint(
            "outcome IN ('accepted', 'partially_accepted', 'rejected', 'ignored', 'quarantined', 'failed')",
            name="ck_messages_outcome"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_messages_raw_sha256", "messages", ["raw_sha256"])
    op.create_index("ix_messages_received_at", "messages", ["received_at"])

    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_ref", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("filename", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("origin", sa.JSON(), nullable=False),
        sa.Column("declared_type", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_attachments"),
        sa.ForeignKeyConstraint(["message_ref"], ["messages.id"], name="fk_attachments_message_ref_messages"),
    )
    op.create_index("ix_attachments_message_ref", "attachments", ["message_ref"])
    op.create_index("ix_attachments_sha256", "attachments", ["sha256"])

    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_ref", sa.Integer(), nullable=False),
        sa.Column("attachment_ref", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("section", sa.String(100), nullable=True),
        sa.Column("task", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("sheets", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("due", sa.Date(), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("superseded_by", sa.Integer(), nullable=True),
        sa.Column("duplicate_of", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_submissions"),
        sa.ForeignKeyConstraint(["message_ref"], ["messages.id"], name="fk_submissions_message_ref_messages"),
        sa.ForeignKeyConstraint(["attachment_ref"], ["attachments.id"],
                                name="fk_submissions_attachment_ref_attachments"),
        sa.ForeignKeyConstraint(["superseded_by"], ["submissions.id"],
                                name="fk_submissions_superseded_by_submissions"),
        sa.ForeignKeyConstraint(["duplicate_of"], ["submissions.id"],
                                name="fk_submissions_duplicate_of_submissions"),
        sa.CheckConstraint("status IN ('accepted', 'rejected')", name="ck_submissions_status"),
    )
    op.create_index("ix_submissions_section_task_period", "submissions", ["section", "task", "period"])
    op.create_index("ix_submissions_sha256", "submissions", ["sha256"])
    op.create_index("ix_submissions_message_ref", "submissions", ["message_ref"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_ref", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("mail_message_id", sa.String(998), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("server_reply", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.Column("dedupe_key", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(["message_ref"], ["messages.id"], name="fk_outbox_message_ref_messages"),
        sa.UniqueConstraint("mail_message_id", name="uq_outbox_mail_message_id"),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed_temporary', 'failed_permanent')",
                           name="ck_outbox_status"),
    )
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_message_ref", "outbox", ["message_ref"])

    op.create_table(
        "failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("raw_sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("stage", sa.String(64), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("traceback", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=False),
        sa.Column("resolved_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_failures"),
    )
    op.create_index("ix_failures_raw_sha256", "failures", ["raw_sha256"])
    op.create_index("ix_failures_resolved", "failures", ["resolved"])


def downgrade() -> None:
    # Only for developing the migrations: the bureau's records are never dropped in service.
    for table in ("failures", "outbox", "submissions", "attachments", "messages"):
        op.drop_table(table)
