"""Custody end to end: capture metadata sealed and shown to the lawyer only; a signed
receipt and a custody history for every file."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from bot.capture import CAPTURE_LABELS
from bot.text import N_
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import t
from storage.crypto.receipts import Receipt, ReceiptError, verify
from storage.models import EvidenceFile
from tests.canary import raw_database_bytes, scan
from tests.conftest import Database
from tests.e2e.staff_helpers import STAFF_LANGUAGE
from tests.e2e.test_evidence import JPEG, PLAN, _assign, _at_files
from tests.exif_samples import MAKE, MODEL, jpeg_with_exif


async def test_exif_of_a_document_is_sealed_and_shown_only_to_the_lawyer(
    sandbox: Sandbox, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    document = jpeg_with_exif()
    # Everything from here is logged, DEBUG included (Pillow logs EXIF values there).
    caplog.set_level(logging.DEBUG)
    reporter = await _at_files(sandbox, 741_301)
    await reporter.user.send_document(document, "IMG_0001.jpg", "image/jpeg")
    await reporter.user.send_photo(JPEG)
    await reporter.press(N_("Done"))
    await reporter.fill(PLAN)
    reference = await reporter.submit()

    lawyer = sandbox.user(741_302)
    await _assign(sandbox, reference, lawyer)
    await lawyer.send_command("/case", reference)
    shown = "\n".join(m.body or "" for m in lawyer.bot_messages())
    device = t(CAPTURE_LABELS["device"], STAFF_LANGUAGE)
    assert f"{device} {MAKE} {MODEL}" in shown
    assert "14.03.2026 09:26:53" in shown and "38.560000, 68.780000" in shown
    # The ordinary photo says why it has none.
    assert (
        t(N_("Capture metadata: none (a photo sent the ordinary way loses it)"), STAFF_LANGUAGE)
        in shown
    )

    # Never to the reporter, never in a log line.
    reporter_saw = "\n".join(m.body or "" for m in reporter.user.bot_messages())
    assert MAKE not in reporter_saw and "38.56" not in reporter_saw
    assert MAKE not in caplog.text and MODEL not in caplog.text and "38.56" not in caplog.text

    await sandbox.stop_bot()
    blob = await raw_database_bytes(database)
    assert scan(blob, [MAKE, MODEL, "38.560000, 68.780000", "09:26:53"]) == []
    assert scan(blob, [reference]), "the scan does not see this test's database"


async def test_each_file_has_a_signed_receipt_and_a_custody_history(
    sandbox: Sandbox, database: Database
) -> None:
    document = jpeg_with_exif()
    reporter = await _at_files(sandbox, 741_311)
    await reporter.user.send_document(document, "IMG_0002.jpg", "image/jpeg")
    await reporter.press(N_("Done"))
    await reporter.fill(PLAN)
    reference = await reporter.submit()

    lawyer = sandbox.user(741_312)
    await _assign(sandbox, reference, lawyer)
    await lawyer.send_command("/case", reference)
    for _round in range(2):
        await lawyer.press(t(N_("Receive file {number}"), STAFF_LANGUAGE).format(number=1))
    file_message, details = lawyer.bot_messages()[-2:]
    assert file_message.file_id is not None
    received = sandbox.server.file_bytes(file_message.file_id)
    assert received == document
    body = details.body or ""
    # The whole message, pasted as it is, is a receipt verify-receipt reads.
    receipt = Receipt.parse(body)
    assert receipt.reference == reference
    # Checked as a lawyer would, with nothing but the published public keys.
    verify(receipt, sandbox.keyring.verify_keys, received)
    with pytest.raises(ReceiptError):
        verify(receipt, sandbox.keyring.verify_keys, received + b"\x00")
    history = body.split(t(N_("Custody history:"), STAFF_LANGUAGE))[1]
    assert history.count(t(N_("custody receipt signed"), STAFF_LANGUAGE)) == 1
    assert history.count(t(N_("received a file"), STAFF_LANGUAGE)) == 2

    # The receipt is sealed: neither it nor its signature is in the database in clear.
    async with sandbox.sessionmaker() as session:
        row = (await session.scalars(select(EvidenceFile))).one()
    assert row.receipt_sealed is not None
    await sandbox.stop_bot()
    blob = await raw_database_bytes(database)
    assert scan(blob, [receipt.text().splitlines()[-1], f"case: {reference}"]) == []
