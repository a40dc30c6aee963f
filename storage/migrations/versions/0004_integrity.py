"""integrity: no content in dead letters

Revision ID: 0004
Revises: 0002

Dead letters used to keep their sealed notice (a lawyer's question, a
reporter's reply) for 30 days: their content is dropped, as the outbox now
does when a notice dies. Downgrading keeps the schema; the dropped content
cannot come back.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    outbox = sa.table(
        "outbox",
        sa.column("state", sa.String),
        sa.column("payload_sealed", sa.LargeBinary),
        sa.column("kek_id", sa.String),
    )
    op.execute(
        outbox.update().where(outbox.c.state == "dead").values(payload_sealed=b"", kek_id="")
    )


def downgrade() -> None:
    pass
