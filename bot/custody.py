"""Chain of custody of evidence files: signed receipts and each file's history.

A file becomes a case's at submission (or when it arrives as a reply); then a
receipt is signed over the case reference, the file's SHA-256, the time
received and the bot's version, sealed beside the file, and the signing is
the first entry of the file's custody history in the audit chain. Every
delivery to staff, every dossier that lists it, and the deletion of its case
follow there. No Telegram types. See docs/evidence.md.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Final

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import audit
from storage.crypto import DataKey, KeyRing
from storage.crypto.receipts import issue
from storage.evidence import EvidenceRepository
from storage.models import AuditEntry, Case, EvidenceFile

log = logging.getLogger("intake.custody")

#: Entries about the whole case that are part of every file's history: the
#: case's files left the bot in a dossier, or were deleted with the case.
CASE_WIDE_ACTIONS: Final = frozenset(
    {
        "dossier_export",
        "case_shred_retention",
        "case_withdraw",
        "reporter_forget",
    }
)


def bot_version() -> str:
    try:
        return f"intake-bot {version('intake-bot')}"
    except PackageNotFoundError:
        return "intake-bot (not installed)"


async def issue_receipts(
    session: AsyncSession,
    keyring: KeyRing,
    case: Case,
    data_key: DataKey,
    rows: Iterable[EvidenceFile],
) -> None:
    """Sign and seal a receipt for each file, each signing audited, in the caller's
    transaction (the case must have its reference)."""
    if not keyring.can_sign:
        # A read-only key file from before receipts (storage/keys.py
        # ensure_key_file): the file is kept, unsigned; nothing about it is logged.
        log.warning("custody receipts off: the key file has no signing key")
        return
    for row in rows:
        digest = EvidenceRepository.custody_hash(row, data_key)
        receipt = issue(keyring, case.reference, digest, row.received_at, bot_version())
        EvidenceRepository.seal_receipt(row, data_key, receipt.text())
        await audit.record(
            session, keyring, "evidence_receipt", actor_id=None, case_id=case.id, subject_id=row.id
        )


async def file_history(session: AsyncSession, row: EvidenceFile) -> Sequence[AuditEntry]:
    """The audit entries about one file, oldest first: its receipt, deliveries,
    dossiers listing it, the deletion of its case."""
    found = await session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.case_id == row.case_id,
            or_(AuditEntry.subject_id == row.id, AuditEntry.action.in_(CASE_WIDE_ACTIONS)),
        )
        .order_by(AuditEntry.seq)
    )
    return found.all()
