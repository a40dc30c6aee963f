"""/dossier end to end: a DOCX of the case, read back with python-docx."""

from __future__ import annotations

import hashlib
import io

from docx import Document
from sqlalchemy import func, select

from bot.text import N_
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import t
from handlers.staff.cases import NOT_AVAILABLE
from storage.models import AuditEntry
from tests.conftest import Database
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.staff_helpers import STAFF_LANGUAGE, join_staff
from tests.e2e.test_evidence import PLAN, _assign, _at_files
from tests.exif_samples import MAKE, jpeg_with_exif


def _docx_text(data: bytes) -> str:
    return "\n".join(paragraph.text for paragraph in Document(io.BytesIO(data)).paragraphs)


async def _exports(sandbox: Sandbox) -> int:
    async with sandbox.sessionmaker() as session:
        found = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "dossier_export")
        )
    return int(found or 0)


async def test_dossier_holds_the_answers_and_hashes_and_refuses_others(
    sandbox: Sandbox, database: Database
) -> None:
    photo = jpeg_with_exif()
    reporter = await _at_files(sandbox, 741_401)
    await reporter.user.send_document(photo, "IMG_0003.jpg", "image/jpeg")
    await reporter.press(N_("Done"))
    await reporter.fill(PLAN)
    reference = await reporter.submit()
    lawyer = sandbox.user(741_402)
    await _assign(sandbox, reference, lawyer)

    await lawyer.send_command("/dossier", f"{reference} complaint")
    sent = lawyer.last_bot_message()
    assert sent is not None and sent.kind == "document" and sent.protect_content
    assert sent.file_id is not None
    data = sandbox.server.file_bytes(sent.file_id)
    text = _docx_text(data)
    assert reference in text
    assert PLAN["account"] in text  # the reporter's own words
    assert hashlib.sha256(photo).hexdigest() in text
    assert "intake-bot custody receipt v1" in text and MAKE in text
    # In the lawyer's language (Russian here), with the Istanbul Protocol's headings.
    assert "Стамбульского протокола" in text and "Досье дела" in text
    assert "143¹" in text  # the draft complaint, asked for
    assert await _exports(sandbox) == 1
    # Without "complaint": no draft complaint.
    await lawyer.send_command("/dossier", reference)
    plain = lawyer.last_bot_message()
    assert plain is not None and plain.file_id is not None
    assert "143¹" not in _docx_text(sandbox.server.file_bytes(plain.file_id))
    assert await _exports(sandbox) == 2

    # Another lawyer (the case is assigned) and the reporter get no document.
    other = sandbox.user(741_403)
    await join_staff(sandbox, sandbox.user(COORDINATOR_ID), other)
    await other.send_command("/dossier", reference)
    assert other.last_text() == t(NOT_AVAILABLE, STAFF_LANGUAGE)
    await reporter.user.send_command("/dossier", reference)
    for intruder in (other, reporter.user):
        assert not [
            call
            for call in sandbox.server.calls
            if call.method == "sendDocument" and call.chat_id == intruder.chat_id
        ]
    assert await _exports(sandbox) == 2

    # A coordinator may; a malformed or unknown reference is a clear answer.
    coordinator = sandbox.user(COORDINATOR_ID)
    await coordinator.send_command("/dossier", reference)
    assert (coordinator.last_bot_message() or sent).kind == "document"
    await coordinator.send_command("/dossier", "NOPE-0000")
    assert coordinator.last_text() == t(NOT_AVAILABLE, STAFF_LANGUAGE)
    await coordinator.send_command("/dossier")
    assert "/dossier" in (coordinator.last_text() or "")
