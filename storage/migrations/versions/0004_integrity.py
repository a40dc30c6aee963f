"""integrity: role MACs, no content in dead letters, no evidence hash in clear

Revision ID: 0004
Revises: 0002

``users.role_mac`` binds each staff role to its user under a key from the key
file. The roles held before are given their MAC once, by the bot at its next
start (``bot/app.py`` ``prepare_database``, which sees the column appear):
the migration cannot reach the key file.

Dead letters used to keep their sealed notice (a lawyer's question, a
reporter's reply) for 30 days: their content is dropped, as the outbox now
does when a notice dies.

Evidence files lose their clear SHA-256 (a dump plus a copy of the file found
the case). New files seal it under the case's data key (``sha256_sealed``).
The migration cannot reach the keys, and needs not: for a file stored before,
the hash is computed from its sealed bytes when shown, which AES-GCM proves
are the bytes received, so dropping the clear column loses nothing.

Downgrading is refused while evidence files exist (their clear hash cannot
be written back without the keys); to go back, restore a backup.
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
    with op.batch_alter_table("evidence_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sha256_sealed", sa.LargeBinary(), nullable=True))
        batch_op.drop_column("sha256")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role_mac", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    if op.get_bind().execute(sa.text("SELECT 1 FROM evidence_files LIMIT 1")).first():
        raise RuntimeError(
            "evidence files exist and their hashes are sealed: restore a backup to go back"
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("role_mac")
    with op.batch_alter_table("evidence_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sha256", sa.LargeBinary(length=32), nullable=False))
        batch_op.drop_column("sha256_sealed")
