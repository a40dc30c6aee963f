"""Evidence files end to end: received, sealed, counted, refused, delivered, deleted."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from bot.cases.service import CaseService
from bot.evidence import REFUSAL_TEXTS, Refusal
from bot.retention import shred_case
from bot.text import N_
from devkit.emulator import SimulatedUser
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import ScriptedReporter, t
from handlers.staff.callbacks import EvidenceGet
from storage.crypto import DataKey, KeyRing
from storage.crypto.receipts import Receipt, verify
from storage.evidence import EvidenceRepository
from storage.fsm import EncryptedFSMStorage
from storage.models import AuditEntry, Case, EvidenceFile, utcnow
from storage.repositories import CaseRepository, UserRepository
from tests.canary import new_canary, raw_database_bytes, scan
from tests.conftest import Database
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.helpers import stored_case
from tests.e2e.staff_helpers import STAFF_LANGUAGE, drain_outbox, join_staff

PLAN: dict[str, Any] = {"reporter": "relative", "account": "Ӯро латукӯб карданд."}
JPEG = b"\xff\xd8\xff\xe0" + secrets.token_bytes(2000) + b"\xff\xd9"
OGG = b"OggS\x00\x02" + secrets.token_bytes(3000)
SHA_LINE = re.compile(r"SHA-256: ([0-9a-f]{64})")


async def _to_question(reporter: ScriptedReporter, question_id: str, plan: dict[str, Any]) -> None:
    """Answer from ``plan`` (Skip otherwise) until ``question_id`` is on screen."""
    for _ in range(100):
        question = reporter.question_on_screen()
        assert question is not None, reporter.user.last_text()
        if question.id == question_id:
            return
        await reporter.answer(question, plan.get(question.id, "_skip"))
    raise AssertionError(f"{question_id} was never asked")


async def _evidence_rows(sandbox: Sandbox) -> list[EvidenceFile]:
    async with sandbox.sessionmaker() as session:
        return list((await session.scalars(select(EvidenceFile))).all())


async def _at_files(sandbox: Sandbox, telegram_id: int) -> ScriptedReporter:
    reporter = ScriptedReporter(sandbox.user(telegram_id), "ru")
    await reporter.open()
    await _to_question(reporter, "evidence_files", PLAN)
    return reporter


async def _data_key(sandbox: Sandbox, case_id: uuid.UUID) -> DataKey:
    async with sandbox.sessionmaker() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        return await CaseRepository(session, sandbox.keyring).data_key(case)


def _text(msgid: str, limit: int = 0) -> str:
    return t(msgid, "ru").format(limit=limit)


async def _assign(sandbox: Sandbox, reference: str, lawyer: SimulatedUser) -> None:
    lawyer_row = await join_staff(sandbox, sandbox.user(COORDINATOR_ID), lawyer)
    async with sandbox.sessionmaker.begin() as session:
        boss = await UserRepository(session, sandbox.keyring).by_telegram_id(COORDINATOR_ID)
        assert boss is not None
        await CaseService(session, sandbox.keyring, self_assign=True).assign(
            boss, reference, lawyer_row.id
        )
    await drain_outbox(sandbox)


async def test_photo_document_and_voice_are_stored_sealed_and_wiped(
    sandbox: Sandbox, database: Database
) -> None:
    canary = new_canary("Evidence")
    pdf = b"%PDF-1.4\n" + canary.encode() + b"\n%%EOF"
    reporter = await _at_files(sandbox, 741_001)
    user = reporter.user
    photo_message = await user.send_photo(JPEG)
    pdf_message = await user.send_document(
        pdf, file_name=f"{canary}.pdf", mime_type="application/pdf", caption=canary
    )
    voice_message = await user.send_voice(OGG)
    assert t(N_("Files received: {count}"), "ru").format(count=3) in (user.last_text() or "")
    # The files' messages are gone from the phone once stored.
    deleted = set(user.deleted_message_ids())
    assert {photo_message, pdf_message, voice_message} <= deleted

    await reporter.press(N_("Done"))
    await reporter.fill(PLAN)
    reference = await reporter.submit()

    case, answers = await stored_case(sandbox, reference)
    rows = await _evidence_rows(sandbox)
    assert len(rows) == 3 and all(row.submitted and row.case_id == case.id for row in rows)
    assert answers["evidence_files"] == [row.id.hex for row in rows] or sorted(
        answers["evidence_files"]
    ) == sorted(row.id.hex for row in rows)
    data_key = await _data_key(sandbox, case.id)
    assert {EvidenceRepository.custody_hash(row, data_key) for row in rows} == {
        hashlib.sha256(data).digest() for data in (JPEG, pdf, OGG)
    }

    await sandbox.stop_bot()
    blob = await raw_database_bytes(database)
    assert scan(blob, [canary]) == []
    assert JPEG[100:140] not in blob and OGG[100:140] not in blob
    assert scan(blob, [reference]), "the scan does not see this test's database"


async def test_voice_message_answers_the_account_question(sandbox: Sandbox) -> None:
    reporter = ScriptedReporter(sandbox.user(741_002), "ru")
    await reporter.open()
    await _to_question(reporter, "account", PLAN)
    await reporter.user.send_voice(OGG)
    assert reporter.question_on_screen() is not None
    assert reporter.question_on_screen().id != "account"  # type: ignore[union-attr]
    await reporter.fill({})
    reference = await reporter.submit()
    _, answers = await stored_case(sandbox, reference)
    rows = await _evidence_rows(sandbox)
    assert len(rows) == 1 and rows[0].submitted
    assert answers["account"] == {"evidence": rows[0].id.hex}
    assert answers["evidence_files"] == "_skip"


async def test_forbidden_types_are_refused_and_nothing_is_stored(sandbox: Sandbox) -> None:
    reporter = await _at_files(sandbox, 741_003)
    user = reporter.user
    await user.send_document(b"MZ" + bytes(100), "tool.exe", "application/x-msdownload")
    assert user.last_text() == _text(REFUSAL_TEXTS[Refusal.TYPE])
    await user.send_sticker()
    assert user.last_text() == _text(REFUSAL_TEXTS[Refusal.TYPE])
    assert await _evidence_rows(sandbox) == []
    # What was answered is kept, and the question is still the files question.
    assert reporter.question_on_screen().id == "evidence_files"  # type: ignore[union-attr]
    await reporter.press(N_("Done"))
    await reporter.fill({})
    reference = await reporter.submit()
    _, answers = await stored_case(sandbox, reference)
    assert answers["reporter"] == "relative" and answers["evidence_files"] == "_skip"


@pytest.fixture
async def small_sandbox(database: Database, keyring: KeyRing) -> AsyncIterator[Sandbox]:
    box = Sandbox(
        sessionmaker=database.sessionmaker,
        keyring=keyring,
        database_url=database.url,
        coordinator_ids=frozenset({COORDINATOR_ID}),
        max_download_mb=1,
    )
    await box.start()
    try:
        yield box
    finally:
        await box.stop()


async def test_oversize_files_are_refused_before_download(small_sandbox: Sandbox) -> None:
    sandbox = small_sandbox
    reporter = await _at_files(sandbox, 741_004)
    big = secrets.token_bytes(1_500_000)
    await reporter.user.send_document(big, "scan.pdf", "application/pdf")
    assert reporter.user.last_text() == _text(REFUSAL_TEXTS[Refusal.TOO_BIG], 1)
    assert await _evidence_rows(sandbox) == []
    assert sandbox.server.downloads == []
    # A small file still goes through.
    await reporter.user.send_photo(JPEG)
    assert len(await _evidence_rows(sandbox)) == 1


async def test_cancel_deletes_the_draft_files(sandbox: Sandbox) -> None:
    reporter = await _at_files(sandbox, 741_005)
    await reporter.user.send_photo(JPEG)
    await reporter.user.send_voice(OGG)
    assert len(await _evidence_rows(sandbox)) == 2
    await reporter.user.send_command("/cancel")
    await reporter.press(N_("Yes, delete it"))
    assert await _evidence_rows(sandbox) == []


async def test_only_the_assigned_lawyer_receives_identical_files(sandbox: Sandbox) -> None:
    reporter = await _at_files(sandbox, 741_006)
    await reporter.user.send_photo(JPEG)
    await reporter.user.send_voice(OGG)
    await reporter.press(N_("Done"))
    await reporter.fill(PLAN)
    reference = await reporter.submit()
    receipt = reporter.user.last_bot_message()
    assert receipt is not None

    lawyer = sandbox.user(741_100)
    await _assign(sandbox, reference, lawyer)
    await lawyer.send_command("/case", reference)
    shown = "\n".join(m.body or "" for m in lawyer.bot_messages())
    hashes = SHA_LINE.findall(shown)
    assert hashes == [hashlib.sha256(JPEG).hexdigest(), hashlib.sha256(OGG).hexdigest()]

    received: list[bytes] = []
    for number in (1, 2):
        before = len(lawyer.bot_messages())
        await lawyer.press(t(N_("Receive file {number}"), STAFF_LANGUAGE).format(number=number))
        sent = lawyer.bot_messages()[before:]
        # The file, then its receipt and custody history (tests/e2e/test_custody.py).
        assert len(sent) == 2 and sent[0].kind in ("document", "voice"), sent
        assert sent[1].kind == "text" and "custody receipt" in (sent[1].body or "")
        assert sent[0].protect_content
        file_id = sent[0].file_id
        assert file_id is not None
        received.append(sandbox.server.file_bytes(file_id))
        assert hashes[number - 1] in (sent[0].body or "")
    assert received == [JPEG, OGG]
    assert [m.kind for m in lawyer.bot_messages()[-4:]] == ["document", "text", "voice", "text"]

    async with sandbox.sessionmaker() as session:
        deliveries = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "evidence_delivery")
        )
    assert deliveries == 2

    # Forged presses: the reporter and another lawyer get nothing.
    rows = await _evidence_rows(sandbox)
    forged = EvidenceGet(file=rows[0].id.hex).pack()
    other = sandbox.user(741_101)
    await join_staff(sandbox, sandbox.user(COORDINATOR_ID), other)
    for intruder in (reporter.user, other):
        anchor = intruder.last_bot_message()
        assert anchor is not None
        before = len(intruder.bot_messages())
        await intruder.press_data(forged, anchor.message_id)
        assert all(m.kind == "text" for m in intruder.bot_messages()[before:])
        assert not [
            call
            for call in sandbox.server.calls
            if call.method in ("sendDocument", "sendVoice", "sendPhoto")
            and call.chat_id == intruder.chat_id
        ]
    async with sandbox.sessionmaker() as session:
        deliveries = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "evidence_delivery")
        )
    assert deliveries == 2

    # The files are case views: /lock takes them out of the lawyer's chat (issue 13).
    files = [m.message_id for m in lawyer.bot_messages() if m.kind in ("document", "voice")]
    assert len(files) == 2
    await lawyer.send_command("/lock")
    assert set(files) <= set(lawyer.deleted_message_ids())


async def test_a_file_in_reply_to_a_question_joins_the_case(sandbox: Sandbox) -> None:
    reporter = ScriptedReporter(sandbox.user(741_007), "ru")
    await reporter.open()
    await reporter.fill(PLAN)
    reference = await reporter.submit()
    lawyer = sandbox.user(741_200)
    await _assign(sandbox, reference, lawyer)
    await lawyer.send_command("/case", reference)
    await lawyer.press(t(N_("Ask the reporter"), STAFF_LANGUAGE))
    await lawyer.send_text("Есть ли у вас медицинская справка?")
    await drain_outbox(sandbox)
    await reporter.user.press(t(N_("Reply"), "ru"))
    await reporter.user.send_document(b"%PDF-1.4 spravka", "spravka.pdf", "application/pdf")
    await drain_outbox(sandbox)
    rows = await _evidence_rows(sandbox)
    case, _ = await stored_case(sandbox, reference)
    assert len(rows) == 1 and rows[0].submitted and rows[0].case_id == case.id
    # Its custody receipt is signed when it joins the case.
    receipt = EvidenceRepository.receipt(rows[0], await _data_key(sandbox, case.id))
    assert receipt is not None
    verify(Receipt.parse(receipt), sandbox.keyring.verify_keys, b"%PDF-1.4 spravka")
    assert Receipt.parse(receipt).reference == reference
    sent_file = t(
        N_(
            "The reporter of case {reference} sent a file. Open the case to receive it: "
            "/case {reference}"
        ),
        STAFF_LANGUAGE,
    ).format(reference=reference)
    assert any((m.body or "") == sent_file for m in lawyer.bot_messages())


async def test_expired_draft_files_and_shredded_cases_lose_their_files(sandbox: Sandbox) -> None:
    reporter = await _at_files(sandbox, 741_008)
    await reporter.user.send_photo(JPEG)
    await reporter.press(N_("Done"))
    await reporter.fill(PLAN)
    reference = await reporter.submit()
    draft = await _at_files(sandbox, 741_009)
    await draft.user.send_voice(OGG)
    assert len(await _evidence_rows(sandbox)) == 2

    # The sweeper's expiry removes the draft's file, never a sent one.
    assert sandbox.dispatcher is not None
    storage = sandbox.dispatcher.fsm.storage
    assert isinstance(storage, EncryptedFSMStorage)
    await storage.delete_expired(now=utcnow() + timedelta(days=3))
    rows = await _evidence_rows(sandbox)
    assert len(rows) == 1 and rows[0].submitted

    async with sandbox.sessionmaker.begin() as session:
        case = await CaseRepository(session, sandbox.keyring).by_reference(reference)
        assert case is not None
        assert await shred_case(session, sandbox.keyring, case, reason="case_shred_retention")
    assert await _evidence_rows(sandbox) == []


async def test_draft_files_live_as_long_as_the_draft(sandbox: Sandbox) -> None:
    reporter = await _at_files(sandbox, 741_090)
    await reporter.user.send_photo(JPEG)
    # As if the photo had been sent almost a day ago: it would expire in a minute.
    async with sandbox.sessionmaker.begin() as session:
        await session.execute(
            update(EvidenceFile).values(expires_at=utcnow() + timedelta(minutes=1))
        )
    # The reporter is still answering: any saved step keeps the draft's files.
    await reporter.user.send_sticker()
    [row] = await _evidence_rows(sandbox)
    assert row.expires_at is not None
    assert row.expires_at > utcnow() + timedelta(hours=sandbox.settings().draft_ttl_hours - 1)


async def test_forget_deletes_the_files_of_an_open_draft(sandbox: Sandbox) -> None:
    reporter = await _at_files(sandbox, 741_091)
    await reporter.user.send_photo(JPEG)
    assert len(await _evidence_rows(sandbox)) == 1
    await reporter.user.send_command("/forget")
    await reporter.press(N_("Yes, forget me"))
    assert await _evidence_rows(sandbox) == []


async def test_video_notes_and_audio_recordings_are_stored_sealed(
    sandbox: Sandbox, database: Database
) -> None:
    mp4 = b"\x00\x00\x00\x18ftypmp42" + secrets.token_bytes(4000)
    mp3 = b"ID3\x04\x00\x00" + secrets.token_bytes(3000)
    reporter = await _at_files(sandbox, 741_092)
    user = reporter.user
    sent = [await user.send_video_note(mp4), await user.send_audio(mp3)]
    assert t(N_("Files received: {count}"), "ru").format(count=2) in (user.last_text() or "")
    assert set(sent) <= set(user.deleted_message_ids())

    await reporter.press(N_("Done"))
    await reporter.fill(PLAN)
    reference = await reporter.submit()
    case, _ = await stored_case(sandbox, reference)
    rows = await _evidence_rows(sandbox)
    assert all(row.submitted and row.case_id == case.id for row in rows)
    data_key = await _data_key(sandbox, case.id)
    assert sorted(EvidenceRepository.custody_hash(row, data_key) for row in rows) == sorted(
        hashlib.sha256(data).digest() for data in (mp4, mp3)
    )
    await sandbox.stop_bot()
    blob = await raw_database_bytes(database)
    assert mp4[100:140] not in blob and mp3[100:140] not in blob


async def test_a_seized_database_does_not_tell_whether_it_holds_a_known_file(
    sandbox: Sandbox, database: Database
) -> None:
    """A document found on a seized phone, hashed, must not find its case in a dump."""
    document = b"%PDF-1.4\n" + secrets.token_bytes(3000) + b"\n%%EOF"
    digest = hashlib.sha256(document).digest()
    reporter = await _at_files(sandbox, 741_020)
    await reporter.user.send_document(document, file_name="report.pdf", mime_type="application/pdf")
    await reporter.press(N_("Done"))
    await reporter.fill(PLAN)
    reference = await reporter.submit()

    await sandbox.stop_bot()
    blob = await raw_database_bytes(database)
    assert scan(blob, [reference]), "the scan does not see this test's database"
    for needle in (digest, digest.hex().encode(), digest.hex().upper().encode()):
        assert needle not in blob, "the file's SHA-256 is in the database in clear"
