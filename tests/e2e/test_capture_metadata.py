"""Capture metadata end to end: read on arrival, sealed, shown to the lawyer only."""

from __future__ import annotations

import logging

import pytest

from bot.capture import CAPTURE_LABELS
from bot.text import N_
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import t
from tests.canary import raw_database_bytes, scan
from tests.conftest import Database
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
    device = t(CAPTURE_LABELS["device"], "tg")
    assert f"{device} {MAKE} {MODEL}" in shown
    assert "14.03.2026 09:26:53" in shown and "38.560000, 68.780000" in shown
    # The ordinary photo says why it has none.
    assert t(N_("Capture metadata: none (a photo sent the ordinary way loses it)"), "tg") in shown

    # Never to the reporter, never in a log line.
    reporter_saw = "\n".join(m.body or "" for m in reporter.user.bot_messages())
    assert MAKE not in reporter_saw and "38.56" not in reporter_saw
    assert MAKE not in caplog.text and MODEL not in caplog.text and "38.56" not in caplog.text

    await sandbox.stop_bot()
    blob = await raw_database_bytes(database)
    assert scan(blob, [MAKE, MODEL, "38.560000, 68.780000", "09:26:53"]) == []
    assert scan(blob, [reference]), "the scan does not see this test's database"
