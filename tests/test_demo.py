"""``make demo``: the terminal chat with the real bot on the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.demo import DemoSession
from bot.i18n import LANGUAGE_NAMES, LANGUAGES
from bot.scripted_reporter import t
from bot.text import N_
from handlers.reporter.render import LANGUAGE_PROMPT

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def demo() -> AsyncIterator[DemoSession]:
    session = DemoSession()
    try:
        yield session
    finally:
        await session.close()


def _numbered(labels: list[str]) -> str:
    return "  ".join(f"[{number}] {label}" for number, label in enumerate(labels, start=1))


async def test_walk_to_the_first_question(demo: DemoSession) -> None:
    screen = await demo.start()
    assert demo.workdir is not None
    assert demo.workdir.is_dir()
    # The bilingual language prompt, its buttons numbered in reading order.
    for line in LANGUAGE_PROMPT.splitlines():
        assert line in screen
    assert _numbered([LANGUAGE_NAMES[code] for code in LANGUAGES]) in screen
    # /start itself is wiped from the chat.
    assert "🗑 the bot deleted 1 message (1 of yours)" in screen

    assert LANGUAGES[0] == "tg"
    intro = await demo.handle("1")
    assert t(N_("Continue"), "tg") in intro
    assert f"[1] {t(N_('Continue'), 'tg')}" in intro
    assert "🗑 the bot deleted 1 message (1 of its own)" in intro

    screens = [await demo.handle("1") for _ in range(4)]  # intro, then three consents
    question = screens[-1]
    assert "1/" in question
    assert "[1] " in question
    assert all("🗑 the bot deleted" in screen for screen in screens)

    # Only the current screen is left in the chat.
    visible = demo.user.visible_messages()
    assert len(visible) == 1
    assert visible[0].from_bot
    assert (visible[0].body or "").splitlines()[0] in question

    workdir = demo.workdir
    await demo.close()
    assert demo.finished
    assert not workdir.exists()


async def test_numbers_text_and_hints(demo: DemoSession) -> None:
    await demo.start()
    hint = await demo.handle("7")
    assert hint.startswith("(!) there is no button 7; choose 1-2")
    assert "\\7" in hint
    # A backslash sends the number as text instead of pressing a button.
    sent = len(demo.user.chat.messages)
    await demo.handle("\\5")
    typed = [m for m in list(demo.user.chat.messages.values())[sent:] if not m.from_bot]
    assert [m.text for m in typed] == ["5"]
    assert await demo.handle("   ") == ""
    assert await demo.handle("/quit") == ""
    assert demo.finished


async def test_edited_message_is_marked(demo: DemoSession) -> None:
    await demo.start()
    message = demo.user.bot_messages()[-1]
    assert message.text is not None
    message.text += "!"
    assert demo.render_changes().startswith("🤖 (edited) ")
    assert demo.render_changes() == ""


def test_piped_stdin_subprocess() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTHONIOENCODING"] = "utf-8"
    result = subprocess.run(
        [sys.executable, "-m", "bot.demo"],
        input="/start\n1\n/quit\n",
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=REPO_ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Тоҷикӣ" in result.stdout
    assert "> /start" in result.stdout  # piped lines are echoed
    assert t(N_("Continue"), "tg") in result.stdout
    assert "Traceback" not in result.stderr
