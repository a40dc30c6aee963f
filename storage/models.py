"""Database tables.

What is stored in clear is deliberately short and listed in
docs/data-at-rest.md: ids, references, status, timestamps, assignee, urgency,
consent flags, questionnaire version, language and role. Everything a person
said, and every Telegram id, is sealed or blind-indexed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both SQLite (which drops the zone) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    """Anyone who has written to the bot: reporters and staff alike."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tg_index: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    chat_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    language: Mapped[str | None] = mapped_column(String(8))
    role: Mapped[str | None] = mapped_column(String(16), index=True)
    # A MAC over (id, role) under a key from the key file (storage/roles.py).
    role_mac: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Staff only: the name they had on Telegram when they joined, so that
    # coordinators can tell lawyers apart. Reporters' names are never stored.
    staff_name_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Set by a coordinator's /ban: the user gets neutral replies, nothing is stored.
    banned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Case(Base):
    __tablename__ = "cases"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    reference: Mapped[str] = mapped_column(String(9), unique=True)
    status: Mapped[str] = mapped_column(String(24), default="new")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    questionnaire_version: Mapped[str] = mapped_column(String(32))
    stats_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    contact_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    reporter_index: Mapped[bytes | None] = mapped_column(LargeBinary(32), index=True)
    reporter_chat_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    answers_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(32))
    first_action_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Retention: a closed case is shredded INTAKE_RETENTION_DAYS after closing,
    # or at retain_until when a lawyer extended it (with a reason, audited).
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retention_warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shredded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_cases_queue", "status", "urgent", "created_at"),
        Index("ix_cases_created_at", "created_at"),
        Index("ix_cases_closed_at", "closed_at"),
    )


# The staff queue's order (urgent first, then oldest) with the status: a page of
# /queue is read off this index instead of sorting every open case.
Index("ix_cases_queue_order", Case.urgent.desc(), Case.created_at, Case.id, Case.status)
# Everything /stats reads from ``cases``: its GROUP BY and median scan this index
# alone. On SQLite the columns after the sealed answers would otherwise mean
# reading every case's overflow pages (4x slower at 100k cases).
Index(
    "ix_cases_stats",
    Case.stats_consent,
    Case.shredded_at,
    Case.status,
    Case.urgent,
    Case.outcome,
    Case.created_at,
    Case.first_action_at,
)


class CaseEvent(Base):
    """A step of the workflow: who moved the case where, and when. No content."""

    __tablename__ = "case_events"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL")
    )
    kind: Mapped[str] = mapped_column(String(24))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str | None] = mapped_column(String(24))
    outcome: Mapped[str | None] = mapped_column(String(32))


class CaseMessage(Base):
    """A lawyer's internal note, a question to the reporter, or the reporter's reply."""

    __tablename__ = "case_messages"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    body_sealed: Mapped[bytes] = mapped_column(LargeBinary)


class Invite(Base):
    """A one-time link that makes whoever opens it a lawyer; only its hash is kept."""

    __tablename__ = "invites"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL")
    )


class AuditEntry(Base):
    """Who did what to which case, chained with an HMAC so edits and gaps show.

    Deliberately without foreign keys: the trail outlives the rows it names.
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    mac: Mapped[bytes] = mapped_column(LargeBinary(32))


class KeyWrap(Base):
    """A case's data key wrapped for one holder; deleting all wraps shreds the case."""

    __tablename__ = "key_wraps"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    holder: Mapped[str] = mapped_column(String(32))
    kek_id: Mapped[str] = mapped_column(String(64), index=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("case_id", "holder", name="uq_key_wraps_case_holder"),)


class FsmRecord(Base):
    """aiogram FSM state and data of one chat, sealed; the key is an HMAC."""

    __tablename__ = "fsm_records"

    key_index: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    payload_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class OutboxMessage(Base):
    """A notification to send; written in the transaction of the change behind it."""

    __tablename__ = "outbox"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    recipient_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    payload_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    kek_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)


class StatsArchive(Base):
    """Anonymous counters of shredded cases, so published figures survive deletion.

    Only (dimension, key, count) of the plaintext dimensions (total, urgent,
    status, month, outcome): nothing links a count back to a case. Agency and
    region come from the answers and are counted in the sealed ``stats_tally``.
    """

    __tablename__ = "stats_archive"

    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class StatsTally(Base):
    """Counts that come from the sealed answers (agency, region), sealed themselves.

    One row, ``answers``, created by the migration so that it always exists (an
    empty ``kek_id`` and no payload until the first consenting report). Every
    consenting case ever submitted is counted once, whether it is still live,
    withdrawn or shredded, so /stats never has to open the cases' answers.
    """

    __tablename__ = "stats_tally"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    kek_id: Mapped[str] = mapped_column(String(64), default="")
    payload_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class EvidenceFile(Base):
    """A file the reporter sent (photo, document, voice...), sealed under the case's data key.

    No foreign key to ``cases``: before submission the case does not exist yet
    (the draft holds its future id and data key). Drafts' files expire.
    """

    __tablename__ = "evidence_files"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    submitted: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Only for files of a draft: deleted after this time unless submitted.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # SHA-256 of the bytes as received (custody), sealed under the case's data key:
    # in clear, whoever holds a dump and a copy of the file would find its case.
    # NULL for files stored before revision 0004, whose hash is computed from the
    # sealed bytes (AES-GCM proves they are the bytes received).
    sha256_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The signed custody receipt's text (storage/crypto/receipts.py), sealed: it
    # names the case and the hash. NULL until the file is a case's, and for
    # files stored before revision 0006.
    receipt_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    blob_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # JSON: kind, original file name, MIME type, size, caption.
    meta_sealed: Mapped[bytes] = mapped_column(LargeBinary)


class AbuseCounter(Base):
    """How much one sender (or everyone) did in a fixed time window: abuse limits.

    ``key_index`` is a blind index of the sender made for this ``kind`` only
    (``bot/intake/limits.py``), never their ``users.tg_index``, so /forget does
    not touch it and rows of different kinds cannot be joined. ``amount`` is a
    count or a number of bytes, by kind. Only the window's start is kept (a
    day or a minute boundary), never the time of each step; rows are deleted
    once ``expires_at`` has passed. Incremented with one atomic upsert
    (``storage/counters.py``), safe with several processes.
    """

    __tablename__ = "abuse_counters"

    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    key_index: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)


class HandledUpdate(Base):
    """A Telegram update_id already handled, for replicas sharing PostgreSQL.

    Written in the update's own transaction, so a failed update leaves no row
    and its redelivery is handled; a redelivery after success, to whichever
    replica, finds the row and is dropped. Rows expire after two days (Telegram
    gives up on an update after 24 hours). Not personal data: a counter.
    """

    __tablename__ = "handled_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class AbuseHandle(Base):
    """Who sent a case, sealed under the case's data key, so that ``/ban REF`` still
    works after the reporter used /forget. Kept ``INTAKE_ABUSE_HANDLE_DAYS`` after
    submission, deleted with the case's other content when it is shredded."""

    __tablename__ = "abuse_handles"

    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    handle_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class StaffPin(Base):
    """A staff member's PIN lock, one row per staff user, created on first need.

    Only scrypt hashes of the PINs are kept (``bot/staff_lock/pin.py``), with a
    per-user salt and the cost they were made with. The rest is the lock's
    state: counted wrong PINs, a lock-out, how long the unlock lasts, and a
    suspension ("failures" or "duress") that only a coordinator lifts.
    """

    __tablename__ = "staff_pins"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    salt: Mapped[bytes] = mapped_column(LargeBinary(16))
    scrypt_n: Mapped[int] = mapped_column(Integer)
    pin_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    duress_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    # What the next plain message of digits answers ("choose", "repeat", "old"...),
    # and the hash of a new PIN's first entry until it is repeated.
    stage: Mapped[str | None] = mapped_column(String(16))
    pending_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unlocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspended: Mapped[str | None] = mapped_column(String(16))


class StaffView(Base):
    """A message in a staff chat that carries case content, to delete at ``due_at``.

    The chat is the user's (its id sealed on the user row); the message id alone
    says nothing. Worked by ``bot/staff_lock/views.py``.
    """

    __tablename__ = "staff_views"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[int] = mapped_column(BigInteger)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
