"""What a seized phone or a seized server reveals after reports were sent.

The phone: after a submission only the receipt is left in the chat (unless the
operator turned INTAKE_WIPE_CHAT off). The server: no free-text answer and no
Telegram id appears in the raw database bytes, in any encoding.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from devkit.emulator import SimulatedUser
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import ScriptedReporter
from storage.crypto import KeyRing
from tests.canary import encodings, new_canary, raw_database_bytes, scan
from tests.conftest import Database
from tests.e2e.conftest import COORDINATOR_ID
from tests.e2e.helpers import stored_case

# Text, single, multi, number, date and skipped answers, and one wrong input.
WIPE_PLAN: dict[str, Any] = {
    "reporter": "relative",
    "relation": "sibling",
    "victim_name": "Далер",
    "situation": "detained",
    "held_where": "ИВС Истаравшан",
    "event_date": "02.2025",
    "agency": ["police", "gknb"],
    "officers_count": "4",
    "account": "Ӯро дар ИВС латукӯб карданд.",
    "contact_how": "chat",
    "write_first": "no",
}


async def _submit_with_a_correction(user: SimulatedUser) -> str:
    reporter = ScriptedReporter(user, "tg")
    await reporter.open()
    await reporter.answer(reporter.q.questions[0], "relative")
    await user.send_sticker()  # corrected, and the correction must go too
    await reporter.fill(WIPE_PLAN)
    return await reporter.submit()


def _deleted_ids(sandbox: Sandbox, chat_id: int) -> set[int]:
    deleted: set[int] = set()
    for method in ("deleteMessages", "deleteMessage"):
        for call in sandbox.server.calls_for(method):
            if call.chat_id == chat_id:
                assert call.ok, call.error
                ids = call.params.get("message_ids") or [call.params["message_id"]]
                assert len(ids) <= 100
                deleted.update(ids)
    return deleted


async def test_submission_wipes_every_answer_and_prompt(sandbox: Sandbox) -> None:
    user = sandbox.user(730_001)
    reference = await _submit_with_a_correction(user)

    receipt = user.last_bot_message()
    assert receipt is not None
    assert reference in (receipt.body or "")
    assert user.visible_messages() == [receipt]
    everything_else = {m.message_id for m in user.chat.messages.values()} - {receipt.message_id}
    user_messages = {m.message_id for m in user.chat.messages.values() if not m.from_bot}
    assert len(user_messages) >= 6  # /start, the sticker and the typed answers
    assert everything_else <= _deleted_ids(sandbox, user.chat_id)
    assert receipt.message_id not in _deleted_ids(sandbox, user.chat_id)


@pytest.fixture
async def sandbox_without_wipe(database: Database, keyring: KeyRing) -> AsyncIterator[Sandbox]:
    box = Sandbox(
        sessionmaker=database.sessionmaker,
        keyring=keyring,
        database_url=database.url,
        coordinator_ids=frozenset({COORDINATOR_ID}),
        wipe_chat=False,
    )
    await box.start()
    try:
        yield box
    finally:
        await box.stop()


async def test_nothing_is_deleted_with_wipe_chat_off(sandbox_without_wipe: Sandbox) -> None:
    sandbox = sandbox_without_wipe
    assert sandbox.settings().wipe_chat is False
    user = sandbox.user(730_002)
    reference = await _submit_with_a_correction(user)

    assert sandbox.server.calls_for("deleteMessages") == []
    assert sandbox.server.calls_for("deleteMessage") == []
    assert user.deleted_message_ids() == []
    bodies = [m.body for m in user.visible_messages()]
    assert len(bodies) == len(user.chat.messages)
    for typed in ("Далер", "ИВС Истаравшан", "02.2025", "4", WIPE_PLAN["account"]):
        assert typed in bodies
    _, answers = await stored_case(sandbox, reference)
    assert answers["held_where"] == "ИВС Истаравшан"


# --- canaries in the raw database ------------------------------------------------------

_TEXT_QUESTIONS = ("victim_name", "held_where", "place_town", "officers_info", "account")


def _canary_plan(extra: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    plan: dict[str, Any] = {
        "reporter": "relative",
        "relation": "parent",
        "situation": "detained",
        "contact_how": "trusted",
        **extra,
    }
    canaries: list[str] = []
    for question_id in (*_TEXT_QUESTIONS, "trusted_contact"):
        canary = new_canary()
        canaries.append(canary)
        # The account embeds its canary in a longer text, as people write.
        plan[question_id] = (
            f"Ӯро се рӯз латукӯб карданд. {canary} Баъд ӯро ба СИЗО бурданд."
            if question_id == "account"
            else canary
        )
    return plan, canaries


async def test_no_plaintext_answer_or_telegram_id_in_the_raw_database(
    sandbox: Sandbox, database: Database
) -> None:
    coordinator = sandbox.user(COORDINATOR_ID)
    canaries: list[str] = []
    references: list[str] = []
    # Two sent reports and one draft left on the review, each from its own user.
    for number, language in enumerate(("tg", "ru", "tg")):
        telegram_id = 7_000_000_000 + secrets.randbelow(1_000_000_000)
        canaries.append(str(telegram_id))
        plan, texts = _canary_plan({"officers_count": str(number + 2)})
        canaries.extend(texts)
        reporter = ScriptedReporter(sandbox.user(telegram_id), language)
        await reporter.open()
        await reporter.fill(plan)
        if number == 2:
            break
        reference = await reporter.submit()
        references.append(reference)
        # Positive control: the canaries really are what was stored.
        _, answers = await stored_case(sandbox, reference)
        stored_text = "\n".join(str(answers[q]) for q in (*_TEXT_QUESTIONS, "trusted_contact"))
        assert all(text in stored_text for text in texts)

    await sandbox.server.wait_for(
        lambda _server: len(coordinator.visible_messages()) == len(references), timeout=10
    )
    await sandbox.stop_bot()
    blob = await raw_database_bytes(database)

    assert scan(blob, canaries) == []
    # Positive control: the scan reads the right bytes (references are stored in clear).
    for reference in references:
        assert scan(blob, [reference]), "the scan does not see this test's database"
    # And the encodings are what the scan looks for.
    assert set(encodings(canaries[1])) >= {"utf-8", "utf-16-le", "utf-16-be", "hex", "HEX"}
