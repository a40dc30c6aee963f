"""abuse counters and abuse handles

Revision ID: 0003
Revises: 0002

``abuse_counters`` counts what one sender did in a window (reports a day, a
share of the circuit breaker, evidence bytes a day) under a blind index that
/forget does not touch; ``abuse_handles`` keeps a case's sender sealed under
the case key for a few days, so that ``/ban REF`` works after /forget. Cases
stored before this revision have no handle: they are banned, as before, only
while ``reporter_index`` is set.

Downgrading drops both tables (the limits then count cases again).
"""

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "abuse_counters",
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("key_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("window_start", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "kind", "key_index", "window_start", name=op.f("pk_abuse_counters")
        ),
    )
    with op.batch_alter_table("abuse_counters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_abuse_counters_expires_at"), ["expires_at"], unique=False
        )
    op.create_table(
        "abuse_handles",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("handle_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_abuse_handles_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_abuse_handles")),
    )
    with op.batch_alter_table("abuse_handles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_abuse_handles_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("abuse_handles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_abuse_handles_expires_at"))
    op.drop_table("abuse_handles")
    with op.batch_alter_table("abuse_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_abuse_counters_expires_at"))
    op.drop_table("abuse_counters")
