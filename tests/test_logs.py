"""Logs carry no personal data: the real bot at DEBUG, with canaries in the answers,
a large Telegram id and a realistic bot token, must log none of them."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bot.logs import ScrubbingFilter, configure_logging, describe_exception, scrub
from devkit.emulator import FakeTelegramServer
from devkit.sandbox import Sandbox
from devkit.scripted_reporter import ScriptedReporter
from storage.crypto import KeyRing
from storage.repositories import CaseRepository
from tests.canary import new_canary, scan
from tests.conftest import Database
from tests.e2e.conftest import COORDINATOR_ID

_SQL = re.compile(r"\b(INSERT INTO|SELECT .+ FROM|UPDATE \w+ SET|DELETE FROM)\b")
REPORTER_ID = 987_654_321_012
TOKEN = "7493018265:AAHk3v9QeT_xW2bZr8LmN4pYc6Ud1Fs0gJo"
NOISY = (
    "aiosqlite",
    "aiogram.event",
    "aiogram.dispatcher",
    "sqlalchemy.engine",
    "aiohttp.access",
    "alembic",
)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """``configure_logging("DEBUG")`` exactly as the bot runs it, writing to a buffer."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {name: logging.getLogger(name).level for name in NOISY}
    configure_logging("DEBUG")
    buffer = io.StringIO()
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
async def token_sandbox(database: Database, keyring: KeyRing) -> AsyncIterator[Sandbox]:
    box = Sandbox(
        sessionmaker=database.sessionmaker,
        keyring=keyring,
        database_url=database.url,
        server=FakeTelegramServer(token=TOKEN),
        coordinator_ids=frozenset({COORDINATOR_ID}),
    )
    await box.start()
    try:
        yield box
    finally:
        await box.stop()


def _forbidden(text: str, canaries: list[str]) -> list[str]:
    found = scan(text.encode(), canaries)
    for needle in (str(REPORTER_ID), str(COORDINATOR_ID), TOKEN, TOKEN.split(":")[1], "/file/bot"):
        if needle in text:
            found.append(f"{needle!r} at {text.index(needle)}")
    return found


async def test_a_whole_report_and_a_staff_view_log_no_personal_data(
    token_sandbox: Sandbox, captured_logs: io.StringIO
) -> None:
    sandbox = token_sandbox
    canaries = [new_canary() for _ in range(4)]
    plan: dict[str, Any] = {
        "reporter": "relative",
        "relation": "parent",
        "victim_name": canaries[0],
        "situation": "detained",
        "held_where": canaries[1],
        "officers_info": canaries[2],
        "account": f"Ӯро латукӯб карданд. {canaries[3]}",
    }
    user = sandbox.user(REPORTER_ID, first_name="Гулнора", username="gulnora_tj")
    reporter = ScriptedReporter(user, "tg")
    await reporter.open()
    await user.send_photo(b"\x89PNG fake photo bytes")  # the wrong kind of answer
    await reporter.fill(plan)
    reference = await reporter.submit()

    coordinator = sandbox.user(COORDINATOR_ID)
    await sandbox.give_pin(COORDINATOR_ID)
    await sandbox.server.wait_for(
        lambda _s: any(reference in (m.body or "") for m in coordinator.bot_messages()), timeout=10
    )
    await coordinator.send_command("/case", reference)
    view = "\n".join(m.body or "" for m in coordinator.bot_messages())
    assert canaries[3] in view  # positive control: the canaries were really shown
    await sandbox.stop_bot()

    output = captured_logs.getvalue()
    # Positive controls: the handler really captured the bot's DEBUG lines.
    handled = re.findall(r" update=(\d+) .*handled in", output)
    assert len(handled) >= 20, output[-2000:]
    assert _forbidden(output, [*canaries, "Гулнора", "gulnora_tj"]) == []
    # No SQL statements or parameters either (the database drivers log them at DEBUG).
    assert _SQL.search(output) is None, _SQL.search(output)


async def test_an_exception_is_logged_by_type_and_place_without_its_message(
    token_sandbox: Sandbox, captured_logs: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = new_canary()

    async def failing_lookup(self: CaseRepository, reporter_index: bytes) -> Any:
        raise RuntimeError(f"no reports for {canary} ({REPORTER_ID})")

    monkeypatch.setattr(CaseRepository, "for_reporter", failing_lookup)
    user = token_sandbox.user(REPORTER_ID)
    await user.send_command("/status")
    update_id = user.last_update_id

    output = captured_logs.getvalue()
    errors = [line for line in output.splitlines() if " ERROR " in line]
    assert errors, output[-2000:]
    assert any(f"update={update_id} " in line for line in errors), errors
    assert "builtins.RuntimeError" in output
    assert "status_command" in output and "commands.py" in output
    assert _forbidden(output, [canary]) == []


def test_describe_exception_names_type_and_frames_only() -> None:
    canary = new_canary()

    def inner() -> None:
        raise ValueError(f"bad input {canary}")

    try:
        inner()
    except ValueError as exc:
        described = describe_exception(exc)
    assert described.startswith("builtins.ValueError at test_logs.py:")
    assert "inner <- " in described and "test_describe_exception_names_type_and_frames_only" in (
        described
    )
    assert canary not in described


def test_the_filter_masks_ids_and_tokens_and_stamps_the_update() -> None:
    from bot.logs import current_update

    record = logging.LogRecord(
        "intake.test", logging.INFO, __file__, 1, "chat %s token %s", (REPORTER_ID, TOKEN), None
    )
    marker = current_update.set(42)
    try:
        assert ScrubbingFilter().filter(record)
    finally:
        current_update.reset(marker)
    assert record.getMessage() == "chat [id] token [token]"
    assert record.update == 42  # type: ignore[attr-defined]
    assert scrub("chat -1001234567890 and 12345") == "chat [id] and 12345"
