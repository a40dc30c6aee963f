"""The audit log: an append-only trail chained with HMAC-SHA256 (the audit key).

Each entry's MAC covers the previous entry's MAC and the entry's own fields,
so editing an entry, deleting one from the middle or re-ordering them breaks
the chain at that point. Entries name actors, cases and subjects by internal
ids only and never carry case content.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.crypto import KeyRing
from storage.models import AuditEntry, utcnow

GENESIS = b"\x00" * 32
_LOCK_ID = 0x1A7D17  # a fixed PostgreSQL advisory lock number for appending


def _canonical(
    seq: int,
    at: datetime,
    actor_id: uuid.UUID | None,
    action: str,
    case_id: uuid.UUID | None,
    subject_id: uuid.UUID | None,
) -> bytes:
    fields = (
        str(seq),
        at.isoformat(timespec="microseconds"),
        str(actor_id or ""),
        action,
        str(case_id or ""),
        str(subject_id or ""),
    )
    return "\x1f".join(fields).encode()


def entry_mac(keyring: KeyRing, previous: bytes, entry: AuditEntry) -> bytes:
    return keyring.audit_mac(
        previous
        + _canonical(
            entry.seq, entry.at, entry.actor_id, entry.action, entry.case_id, entry.subject_id
        )
    )


async def record(
    session: AsyncSession,
    keyring: KeyRing,
    action: str,
    *,
    actor_id: uuid.UUID | None,
    case_id: uuid.UUID | None = None,
    subject_id: uuid.UUID | None = None,
) -> AuditEntry:
    """Append an entry in the caller's transaction."""
    # Concurrent transactions would otherwise pick the same next number (and the
    # later one fail on the primary key): take the append lock before reading it.
    await _append_lock(session)
    last = (
        await session.execute(
            select(AuditEntry.seq, AuditEntry.mac).order_by(AuditEntry.seq.desc()).limit(1)
        )
    ).first()
    seq, previous = (last[0] + 1, bytes(last[1])) if last else (1, GENESIS)
    entry = AuditEntry(
        seq=seq,
        at=utcnow(),
        actor_id=actor_id,
        action=action,
        case_id=case_id,
        subject_id=subject_id,
        mac=b"",
    )
    entry.mac = entry_mac(keyring, previous, entry)
    session.add(entry)
    await session.flush()
    return entry


async def _append_lock(session: AsyncSession) -> None:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    elif dialect == "sqlite":
        # A write that changes nothing still takes SQLite's write lock, held until
        # the caller's transaction ends; the read below then sees the latest entry.
        await session.execute(text("DELETE FROM audit_log WHERE seq < 0"))


#: Actions done by a reporter: since revision 0003 they name no actor.
REPORTER_ACTIONS = ("reply_received", "evidence_received")


class ChainBroken(Exception):
    """The chain does not verify: nothing is re-chained over a broken entry."""


def _names_a_reporter() -> ColumnElement[bool]:
    return or_(
        AuditEntry.action.in_(REPORTER_ACTIONS) & AuditEntry.actor_id.is_not(None),
        (AuditEntry.action == "reporter_forget") & AuditEntry.case_id.is_not(None),
    )


async def redact_reporters(session: AsyncSession, keyring: KeyRing) -> int:
    """Entries written before revision 0003 name the reporter (their ``users.id``)
    as the actor of replies, and /forget named each case: drop those ids and
    re-chain from the first one. Needs the audit key, so it runs at start-up
    after the migrations (``bot/app.py``); once done, it finds nothing to do.

    The chain is verified first: if it is broken, nothing is changed
    (:class:`ChainBroken`), so re-chaining never hides an edit. Anchors written
    down before the first redacted entry still hold; later ones must be
    written down again. Returns the number of entries changed.
    """
    first = await session.scalar(select(func.min(AuditEntry.seq)).where(_names_a_reporter()))
    if first is None:
        return 0
    await _append_lock(session)
    entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
    previous = GENESIS
    for expected, entry in enumerate(entries, start=1):
        if entry.seq != expected or entry_mac(keyring, previous, entry) != bytes(entry.mac):
            raise ChainBroken(f"audit entry {expected} does not verify")
        previous = bytes(entry.mac)
    previous, changed = GENESIS, 0
    for entry in entries:
        if entry.seq >= first:
            if entry.action in REPORTER_ACTIONS and entry.actor_id is not None:
                entry.actor_id = None
                changed += 1
            elif entry.action == "reporter_forget" and entry.case_id is not None:
                entry.case_id = None
                changed += 1
            entry.mac = entry_mac(keyring, previous, entry)
        previous = bytes(entry.mac)
    await session.flush()
    return changed


async def trail_for_case(session: AsyncSession, case_id: uuid.UUID) -> Sequence[AuditEntry]:
    found = await session.scalars(
        select(AuditEntry).where(AuditEntry.case_id == case_id).order_by(AuditEntry.seq)
    )
    return found.all()


ANCHOR_HEX = 16  # MAC characters in an anchor: 64 bits, enough to be unguessable
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Anchor:
    """An entry's number and the start of its MAC, written down outside the database.

    The chain alone cannot show that its newest entries were cut off; an
    anchor recorded elsewhere (a printout, the coordinators' own notes) can:
    the entry it names must still be there, with the same MAC.
    """

    seq: int
    mac_hex: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.mac_hex}"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        seq, _, mac_hex = text.strip().partition(":")
        hex_digits = len(mac_hex) >= ANCHOR_HEX and all(c in _HEX for c in mac_hex.lower())
        if not seq.isdigit() or int(seq) < 1 or not hex_digits:
            raise ValueError(f"expected SEQ:HEX with at least {ANCHOR_HEX} hex digits")
        return cls(int(seq), mac_hex.lower())


@dataclass(frozen=True, slots=True)
class ChainReport:
    entries: int
    first_broken: int | None
    reason: str | None
    head: Anchor | None = None

    @property
    def intact(self) -> bool:
        return self.first_broken is None


async def verify_chain(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: KeyRing,
    *,
    batch: int = 5000,
    anchor: Anchor | None = None,
) -> ChainReport:
    """Walk the whole log in order; report the first entry that does not verify.

    With an ``anchor``, the entry it names must be reached and match it.
    """
    previous, expected_seq, checked = GENESIS, 1, 0
    async with sessionmaker() as session:
        total = int(await session.scalar(select(func.count()).select_from(AuditEntry)) or 0)
        while True:
            rows = (
                await session.scalars(
                    select(AuditEntry)
                    .where(AuditEntry.seq >= expected_seq)
                    .order_by(AuditEntry.seq)
                    .limit(batch)
                )
            ).all()
            if not rows:
                if checked != total:
                    return ChainReport(checked, expected_seq, "entries out of order")
                if anchor is not None and anchor.seq > checked:
                    return ChainReport(checked, checked + 1, f"cut short before anchor {anchor}")
                head = Anchor(checked, previous.hex()[:ANCHOR_HEX]) if checked else None
                return ChainReport(checked, None, None, head)
            for entry in rows:
                if entry.seq != expected_seq:
                    return ChainReport(checked, expected_seq, "missing entry")
                if entry_mac(keyring, previous, entry) != bytes(entry.mac):
                    return ChainReport(checked, entry.seq, "entry altered")
                if (
                    anchor is not None
                    and entry.seq == anchor.seq
                    and not bytes(entry.mac).hex().startswith(anchor.mac_hex)
                ):
                    return ChainReport(checked, entry.seq, f"does not match anchor {anchor}")
                previous, expected_seq, checked = bytes(entry.mac), expected_seq + 1, checked + 1
