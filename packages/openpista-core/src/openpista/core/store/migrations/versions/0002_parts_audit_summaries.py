"""Message parts, sender and token usage; the tool-call audit trail; compaction summaries.

Every existing message row stays as it was: the new message columns are nullable and added in
place (SQLite's ALTER TABLE ADD COLUMN, no table copy), and NULL reads back as "none".

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("parts", sa.Text(), nullable=True))
        batch.add_column(sa.Column("sender", sa.Text(), nullable=True))
        batch.add_column(sa.Column("input_tokens", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("output_tokens", sa.Integer(), nullable=True))
    op.create_table(
        "tool_calls_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("channel_id", sa.Text(), nullable=False),
        sa.Column("sender", sa.Text(), nullable=True),
        sa.Column("tool", sa.Text(), nullable=False),
        sa.Column("arguments", sa.Text(), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.Text(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("call_id", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tool_calls_audit"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_tool_calls_audit_at", "tool_calls_audit", ["at"])
    op.create_index("ix_tool_calls_audit_session_id_at", "tool_calls_audit", ["session_id", "at"])
    op.create_table(
        "summaries",
        sa.Column("session_id", sa.Text(), nullable=False),
        sa.Column("covers", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name="fk_summaries_session_id_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name="pk_summaries"),
    )


def downgrade() -> None:
    op.drop_table("summaries")
    op.drop_index("ix_tool_calls_audit_session_id_at", table_name="tool_calls_audit")
    op.drop_index("ix_tool_calls_audit_at", table_name="tool_calls_audit")
    op.drop_table("tool_calls_audit")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("output_tokens")
        batch.drop_column("input_tokens")
        batch.drop_column("sender")
        batch.drop_column("parts")
