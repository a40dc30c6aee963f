"""sealed statistics tally

Revision ID: 0002
Revises: 0001

Agency and region counts move out of the answers (and out of the clear
``stats_archive``) into one sealed row. The row is created here, empty, so
that it always exists; the bot fills it from the cases already stored at its
next start (``bot/cases/stats.py`` ``fill_tally``), which needs the key file
and therefore cannot run inside the migration. ``ix_cases_stats`` covers what
/stats reads from ``cases``.

Downgrading drops the tally, and with it the agency and region of shredded
cases; to go back, restore a backup (docs/deployment.md, Upgrading).
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tally = op.create_table(
        "stats_tally",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("kek_id", sa.String(length=64), nullable=False),
        sa.Column("payload_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_stats_tally")),
    )
    assert tally is not None
    # The one row, empty: written at the first count, never deleted.
    op.bulk_insert(
        tally,
        [
            {
                "name": "answers",
                "kek_id": "",
                "payload_sealed": None,
                "updated_at": datetime.now(UTC),
            }
        ],
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cases_stats",
            [
                "stats_consent",
                "shredded_at",
                "status",
                "urgent",
                "outcome",
                "created_at",
                "first_action_at",
            ],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_stats")
    op.drop_table("stats_tally")
