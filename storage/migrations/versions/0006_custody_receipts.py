"""custody receipts: each evidence file's signed receipt, sealed

Revision ID: 0006
Revises: 0005

A custody receipt (``storage/crypto/receipts.py``) is signed when a file
becomes a case's: at submission, or when it arrives as a reply. It names the
case and the file's hash, so it is sealed under the case's data key like the
hash itself. Files stored before have none (NULL): the migration cannot sign,
and a receipt signed later would claim a custody the bot cannot vouch for.

Downgrading drops the column and the receipts in it; the receipts already
handed to lawyers still verify, as they carry their own signature.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evidence_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("receipt_sealed", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("evidence_files", schema=None) as batch_op:
        batch_op.drop_column("receipt_sealed")
