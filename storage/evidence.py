"""Evidence files in the database, sealed under their case's data key.

Every method takes an open ``AsyncSession``; the caller owns the transaction.
The bytes are sealed with AES-256-GCM under the case's data key, with
associated data bound to the case id and the row id, so a blob cannot be
moved to another case or another row. See docs/evidence.md.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import DataKey, FieldContext
from storage.models import EvidenceFile, utcnow

TABLE = "evidence_files"


def _context(column: str, case_id: uuid.UUID, row_id: uuid.UUID) -> FieldContext:
    return FieldContext(TABLE, column, f"{case_id.hex}:{row_id.hex}")


@dataclass(frozen=True, slots=True)
class StoredEvidence:
    """One file as a lawyer sees it in the case view (without the bytes)."""

    id: uuid.UUID
    received_at: datetime
    sha256: bytes
    meta: bytes  # the opened metadata JSON (bot/evidence.py EvidenceMeta)
    receipt: str | None = None  # the signed custody receipt's text


class EvidenceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def store(
        self,
        case_id: uuid.UUID,
        data_key: DataKey,
        data: bytes,
        meta: bytes,
        *,
        submitted: bool,
        expires_at: datetime | None,
    ) -> EvidenceFile:
        row_id = uuid.uuid4()
        row = EvidenceFile(
            id=row_id,
            case_id=case_id,
            submitted=submitted,
            received_at=utcnow(),
            expires_at=None if submitted else expires_at,
            sha256_sealed=data_key.seal(
                hashlib.sha256(data).digest(), _context("sha256_sealed", case_id, row_id)
            ),
            blob_sealed=data_key.seal(data, _context("blob_sealed", case_id, row_id)),
            meta_sealed=data_key.seal(meta, _context("meta_sealed", case_id, row_id)),
        )
        self.session.add(row)
        await self.session.flush()
        return row

    async def usage(self, case_id: uuid.UUID) -> tuple[int, int]:
        """(number of files, bytes sealed) of a case or draft; the sealed length is
        a slight over-estimate of the files' size, which is sealed."""
        count, total = (
            await self.session.execute(
                select(
                    func.count(), func.coalesce(func.sum(func.length(EvidenceFile.blob_sealed)), 0)
                )
                .select_from(EvidenceFile)
                .where(EvidenceFile.case_id == case_id)
            )
        ).one()
        return int(count or 0), int(total or 0)

    async def existing_ids(self, case_id: uuid.UUID) -> frozenset[str]:
        found = await self.session.scalars(
            select(EvidenceFile.id).where(EvidenceFile.case_id == case_id)
        )
        return frozenset(row_id.hex for row_id in found)

    async def extend_draft(self, case_id: uuid.UUID, expires_at: datetime) -> None:
        """Keep a draft's files as long as the draft itself."""
        await self.session.execute(
            update(EvidenceFile)
            .where(EvidenceFile.case_id == case_id, EvidenceFile.submitted.is_(False))
            .values(expires_at=expires_at)
            .execution_options(synchronize_session=False)
        )

    async def submit(self, case_id: uuid.UUID, keep: Iterable[str]) -> list[EvidenceFile]:
        """At submission: the draft's files the answers refer to become the case's
        (returned); the others (sent, then skipped or answered otherwise) are deleted."""
        wanted = {uuid.UUID(hex=value) for value in keep}
        rows = await self.session.scalars(
            select(EvidenceFile).where(
                EvidenceFile.case_id == case_id, EvidenceFile.submitted.is_(False)
            )
        )
        kept: list[EvidenceFile] = []
        for row in rows.all():
            if row.id in wanted:
                row.submitted = True
                row.expires_at = None
                kept.append(row)
            else:
                await self.session.delete(row)
        await self.session.flush()
        return kept

    async def delete_draft(self, case_id: uuid.UUID) -> int:
        result = await self.session.execute(
            delete(EvidenceFile).where(
                EvidenceFile.case_id == case_id, EvidenceFile.submitted.is_(False)
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def delete_for_case(self, case_id: uuid.UUID) -> int:
        result = await self.session.execute(
            delete(EvidenceFile).where(EvidenceFile.case_id == case_id)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def list_for_case(self, case_id: uuid.UUID, data_key: DataKey) -> list[StoredEvidence]:
        rows: Sequence[EvidenceFile] = (
            await self.session.scalars(
                select(EvidenceFile)
                .where(EvidenceFile.case_id == case_id, EvidenceFile.submitted.is_(True))
                .order_by(EvidenceFile.received_at)
            )
        ).all()
        return [
            StoredEvidence(
                row.id,
                row.received_at,
                self.custody_hash(row, data_key),
                data_key.open(row.meta_sealed, _context("meta_sealed", case_id, row.id)),
                self.receipt(row, data_key),
            )
            for row in rows
        ]

    @staticmethod
    def custody_hash(row: EvidenceFile, data_key: DataKey, data: bytes | None = None) -> bytes:
        """The SHA-256 of the bytes as received; ``data`` saves opening them again
        for a file stored before its hash was sealed."""
        if row.sha256_sealed is not None:
            context = _context("sha256_sealed", row.case_id, row.id)
            return data_key.open(row.sha256_sealed, context)
        if data is None:
            data = data_key.open(row.blob_sealed, _context("blob_sealed", row.case_id, row.id))
        return hashlib.sha256(data).digest()

    @staticmethod
    def seal_receipt(row: EvidenceFile, data_key: DataKey, receipt_text: str) -> None:
        context = _context("receipt_sealed", row.case_id, row.id)
        row.receipt_sealed = data_key.seal(receipt_text.encode(), context)

    @staticmethod
    def receipt(row: EvidenceFile, data_key: DataKey) -> str | None:
        """The file's custody receipt as handed to lawyers; None before revision 0006."""
        if row.receipt_sealed is None:
            return None
        context = _context("receipt_sealed", row.case_id, row.id)
        return data_key.open(row.receipt_sealed, context).decode()

    async def get(self, case_id: uuid.UUID, evidence_id: uuid.UUID) -> EvidenceFile | None:
        row = await self.session.get(EvidenceFile, evidence_id)
        if row is None or row.case_id != case_id or not row.submitted:
            return None
        return row

    @staticmethod
    def open(row: EvidenceFile, data_key: DataKey) -> tuple[bytes, bytes]:
        """(the file's bytes, its metadata JSON)."""
        data = data_key.open(row.blob_sealed, _context("blob_sealed", row.case_id, row.id))
        meta = data_key.open(row.meta_sealed, _context("meta_sealed", row.case_id, row.id))
        return data, meta


async def delete_expired_drafts(session: AsyncSession, now: datetime | None = None) -> int:
    """Files of drafts that expired (the draft itself is gone by then)."""
    result = await session.execute(
        delete(EvidenceFile).where(
            EvidenceFile.submitted.is_(False), EvidenceFile.expires_at <= (now or utcnow())
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
