"""abuse counters and abuse handles; reporters are no longer actors

Revision ID: 0003
Revises: 0002

``abuse_counters`` counts what one sender did in a window (reports a day, a
share of the circuit breaker, evidence bytes a day) under a blind index that
/forget does not touch; ``abuse_handles`` keeps a case's sender sealed under
the case key for a few days, so that ``/ban REF`` works after /forget. Cases
stored before this revision have no handle: they are banned, as before, only
while ``reporter_index`` is set.

Existing rows stop naming reporters: a reply's status event loses the
reporter's ``users.id`` (and becomes ``reporter_answered``), replies lose their
``author_id``, and the per-case ``reporter_disconnected`` events of /forget
(written in one instant, they told which cases came from one person) go. The
audit log is MAC-chained, so its reporter ids are dropped at the next start,
with the key file (``storage/audit.py`` ``redact_reporters``).

Downgrading drops both tables; the ids removed do not come back.
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

    # The events a reporter's reply caused, found through the reply's audit entry.
    op.execute(
        sa.text(
            "UPDATE case_events SET actor_id = NULL, kind = 'reporter_answered' "
            "WHERE kind = 'status' AND actor_id IS NOT NULL AND EXISTS ("
            " SELECT 1 FROM audit_log WHERE audit_log.case_id = case_events.case_id"
            " AND audit_log.actor_id = case_events.actor_id"
            " AND audit_log.action IN ('reply_received', 'evidence_received'))"
        )
    )
    op.execute(sa.text("UPDATE case_messages SET author_id = NULL WHERE kind = 'reply'"))
    op.execute(sa.text("DELETE FROM case_events WHERE kind = 'reporter_disconnected'"))


def downgrade() -> None:
    with op.batch_alter_table("abuse_handles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_abuse_handles_expires_at"))
    op.drop_table("abuse_handles")
    with op.batch_alter_table("abuse_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_abuse_counters_expires_at"))
    op.drop_table("abuse_counters")
