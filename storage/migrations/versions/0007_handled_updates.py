"""handled updates and flood counters, for webhook replicas on PostgreSQL

Revision ID: 0007
Revises: 0002

``handled_updates``: one row per Telegram update handled, written in the
update's transaction and expired after two days. ``flood_counters``: updates
per sender in a fixed window (``bot/replicas.py``). New tables, no data to move.
"""

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0007"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "handled_updates",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("handled_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_handled_updates")),
    )
    with op.batch_alter_table("handled_updates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_handled_updates_handled_at"), ["handled_at"], unique=False
        )

    op.create_table(
        "flood_counters",
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("key_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("window_start", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "kind", "key_index", "window_start", name=op.f("pk_flood_counters")
        ),
    )
    with op.batch_alter_table("flood_counters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_flood_counters_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("flood_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flood_counters_expires_at"))
    op.drop_table("flood_counters")
    with op.batch_alter_table("handled_updates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handled_updates_handled_at"))
    op.drop_table("handled_updates")
