"""staff PIN lock and disappearing case views

Revision ID: 0005
Revises: 0004

Two new tables: ``staff_pins`` (scrypt hashes of staff PINs and the
lock's state) and ``staff_views`` (case messages in staff chats, to delete when
due). Existing staff have no row: they are asked to choose a PIN at their
next command. Downgrading drops both; the recorded views are then no longer
deleted by the bot (Telegram keeps them until someone deletes them by hand).
"""

import sqlalchemy as sa
from alembic import op

import storage.models

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_pins",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=16), nullable=False),
        sa.Column("scrypt_n", sa.Integer(), nullable=False),
        sa.Column("pin_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("duress_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("stage", sa.String(length=16), nullable=True),
        sa.Column("pending_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("unlocked_until", storage.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("suspended", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_staff_pins_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_staff_pins")),
    )
    op.create_table(
        "staff_views",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("due_at", storage.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_staff_views_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_views")),
    )
    with op.batch_alter_table("staff_views", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_views_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_staff_views_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_views", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_views_user_id"))
        batch_op.drop_index(batch_op.f("ix_staff_views_due_at"))

    op.drop_table("staff_views")
    op.drop_table("staff_pins")
