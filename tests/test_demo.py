"""``make demo``: the terminal chat with the real bot on the emulator."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiogram.types import BufferedInputFile
from docx import Document

from bot.evidence import REFUSAL_TEXTS, Refusal
from bot.i18n import LANGUAGE_NAMES, LANGUAGES
from bot.notifications import Notice, NoticeKind, render_notice
from bot.questionnaire import SKIPPED
from bot.text import N_
from devkit.demo import DEFAULT_COORDINATOR_ID, DEFAULT_LAWYER_ID, DemoSession
from devkit.scripted_reporter import ScriptedReporter, t
from handlers.reporter.render import INTRO_ABOUT, INTRO_RISKS, LANGUAGE_PROMPT
from tests.e2e.staff_helpers import STAFF_LANGUAGE

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


def _number_of(demo: DemoSession, label: str) -> str:
    """What to type to press the button ``label`` of the current keyboard."""
    keyboard = demo.current_keyboard()
    assert keyboard is not None
    labels = [text for row in keyboard.button_labels for text in row]
    return str(labels.index(label) + 1)


async def _submit_report(demo: DemoSession) -> str:
    """A short report, sent quickly by a scripted reporter in the demo's reporter chat."""
    reporter = ScriptedReporter(demo.reporter, "ru")
    await reporter.open()
    await reporter.fill({"reporter": "victim", "account": "Меня били три дня."})
    return await reporter.submit()


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
    # The introduction is two short messages; the language screen gives way to them.
    assert t(INTRO_ABOUT, "tg") in intro and t(INTRO_RISKS, "tg") in intro
    assert "🗑 the bot deleted 1 message" in intro

    screens = [await demo.handle("1") for _ in range(4)]  # Continue, then three consents
    question = screens[-1]
    assert "1/" in question
    assert "[1] " in question
    # A pressed button turns its own message into the next screen; after the
    # introduction only its first message is left to delete.
    assert "🤖 (edited)" in screens[0] and "🗑 the bot deleted 1 message" in screens[0]
    assert all("🤖 (edited)" in screen and "🗑" not in screen for screen in screens[1:])

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
        [sys.executable, "-m", "devkit.demo"],
        input="/start\n1\n/as coordinator\n/staff\n/quit\n",
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
    assert "(demo) lawyer (id 2) joined the staff" in result.stdout
    assert "reporter> /start" in result.stdout  # the prompt names whom you play
    assert "coordinator> /staff" in result.stdout
    assert f"Lawyer ({t(N_('lawyer'), STAFF_LANGUAGE)})" in result.stdout
    assert "Traceback" not in result.stderr


def test_roles_must_be_different_users() -> None:
    with pytest.raises(ValueError, match="different users"):
        DemoSession(user_id=DEFAULT_LAWYER_ID)
    with pytest.raises(ValueError, match="different users"):
        DemoSession(user_id=DEFAULT_COORDINATOR_ID)


async def test_as_switches_between_people(demo: DemoSession) -> None:
    screen = await demo.start()
    assert screen.startswith("(demo) lawyer (id 2) joined the staff")
    # The invitation and the join happened quietly: nothing of it is printed later.
    assert "[to " not in screen
    assert demo.roles == ("reporter", "coordinator", "lawyer")
    assert demo.role == "reporter"

    who = await demo.handle("/as")
    assert "you are the reporter (Telegram id 1001)" in who
    assert "/as coordinator, /as lawyer" in who

    updates = demo.sandbox.server.last_update_id
    switched = await demo.handle("/as coordinator")
    assert demo.role == "coordinator"
    assert demo.user.user_id == DEFAULT_COORDINATOR_ID
    assert "you are now the coordinator (Telegram id 1)" in switched
    assert "👤 /invite" in switched  # the chat as it is now
    assert demo.sandbox.server.last_update_id == updates  # /as never reaches the bot

    staff = await demo.handle("/staff")
    assert staff.startswith("🤖 ")
    assert f"Lawyer ({t(N_('lawyer'), STAFF_LANGUAGE)})" in staff

    assert (await demo.handle("/as l")).startswith("(demo) you are now the lawyer (Telegram id 2)")
    assert demo.user.user_id == DEFAULT_LAWYER_ID
    assert (await demo.handle("/as nobody")).startswith("(!) there is nobody called 'nobody'")
    assert demo.role == "lawyer"

    # Photos (the /stats chart) show as one line with the uploaded name and the size,
    # in the chat being played and in the others.
    bot = demo.sandbox.bot
    assert bot is not None
    chart = b"\x89PNG\r\n\x1a\n" + bytes(23_000)
    await bot.send_photo(DEFAULT_COORDINATOR_ID, BufferedInputFile(chart, filename="stats.png"))
    assert demo.render_changes() == "[to coordinator] 🖼 photo (stats.png, 22 KB)"
    tiny = BufferedInputFile(b"tiny", filename="x.png")
    await bot.send_photo(DEFAULT_LAWYER_ID, tiny, caption="Hi")
    assert demo.render_changes() == "🤖 🖼 photo (x.png, 4 B)\n   Hi"


async def test_assign_ask_and_reply(demo: DemoSession) -> None:
    await demo.start()
    reference = await _submit_report(demo)

    switched = await demo.handle("/as coordinator")
    # The receipt, left unprinted in the reporter's chat, comes first, compactly.
    assert switched.startswith("[to reporter] ")
    assert reference in switched.splitlines()[0]
    new_case = render_notice(Notice(NoticeKind.NEW_CASE, reference), lambda m: t(m, STAFF_LANGUAGE))
    assert new_case.splitlines()[0] in switched

    choice = await demo.handle(f"/assign {reference}")
    assert "[1] " in choice
    assigned = await demo.handle(_number_of(demo, "Lawyer"))
    notice = render_notice(
        Notice(NoticeKind.ASSIGNED_TO_YOU, reference), lambda m: t(m, STAFF_LANGUAGE)
    )
    assert f"[to lawyer] {notice}" in assigned
    assert "[to reporter] " in assigned

    switched = await demo.handle("/as lawyer")
    assert f"🤖 {notice}" in switched
    case = await demo.handle(f"/case {reference}")
    assert case.startswith(f"🤖 {reference} · ")
    ask = t(N_("Ask the reporter"), STAFF_LANGUAGE)
    assert f"] {ask}" in case
    await demo.handle(_number_of(demo, ask))
    sent = await demo.handle("Когда это было?")
    assert "[to reporter] " in sent
    assert "Когда это было?" in sent
    assert f"[·] {t(N_('Reply'), 'ru')}" in sent

    switched = await demo.handle("/as reporter")
    assert f"[1] {t(N_('Reply'), 'ru')}" in switched
    await demo.handle("1")
    replied = await demo.handle("Вчера вечером.")
    assert "[to lawyer] " in replied
    assert "Вчера вечером." in replied


async def _reach_evidence_files(demo: DemoSession) -> ScriptedReporter:
    """Answer the questionnaire quickly (Skip mostly) up to the evidence files question."""
    reporter = ScriptedReporter(demo.reporter, "ru")
    await reporter.open()
    plan = {"reporter": "victim", "account": "Меня били три дня."}
    for _ in range(100):
        question = reporter.question_on_screen()
        assert question is not None, reporter.user.last_text()
        if question.id == "evidence_files":
            demo.render_changes()  # what the scripted reporter did is not under test
            return reporter
        await reporter.answer(question, plan.get(question.id, SKIPPED))
    raise AssertionError("the questionnaire never asked for evidence files")


async def test_files_sent_and_received(demo: DemoSession, tmp_path: Path) -> None:
    await demo.start()
    reporter = await _reach_evidence_files(demo)
    photo = b"\x89PNG\r\n\x1a\n" + os.urandom(300)
    voice = b"OggS" + os.urandom(200)
    (tmp_path / "injury.png").write_bytes(photo)
    (tmp_path / "note.ogg").write_bytes(voice)
    (tmp_path / "tool.exe").write_bytes(b"MZ")

    sent = await demo.handle(f"/file {tmp_path / 'injury.png'} the bruise")
    assert sent.startswith("(demo) you sent 🖼 photo (injury.png, 308 B)")
    sent = await demo.handle(str(tmp_path / "note.ogg"))  # a bare path works too
    assert sent.startswith("(demo) you sent 🎤 voice (note.ogg, 204 B, audio/ogg)")
    refused = await demo.handle(f"/file {tmp_path / 'tool.exe'}")
    assert refused.startswith("(demo) you sent 📄 document (tool.exe, 2 B,")
    assert t(REFUSAL_TEXTS[Refusal.TYPE], "ru") in refused
    assert (await demo.handle(f"/file {tmp_path / 'missing.png'}")).startswith("(!) ")
    assert (await demo.handle("/file")).startswith("(!) usage: /file")

    await reporter.press(N_("Done"))
    await reporter.fill({})
    reference = await reporter.submit()

    await demo.handle("/as coordinator")
    await demo.handle(f"/assign {reference}")
    await demo.handle(_number_of(demo, "Lawyer"))
    await demo.handle("/as lawyer")
    case = await demo.handle(f"/case {reference}")
    receive = t(N_("Receive file {number}"), STAFF_LANGUAGE).format(number=1)
    assert f"] {receive}" in case
    received = await demo.handle(_number_of(demo, receive))
    assert "📄 document (" in received
    digest = hashlib.sha256(photo).hexdigest()
    assert f"received: SHA-256 {digest} (matches the caption)" in received

    saved = await demo.handle(f"/save {tmp_path / 'out'}")
    assert saved.startswith("(demo) saved document ")
    files = list((tmp_path / "out").iterdir())
    assert [path.read_bytes() for path in files] == [photo]

    # The case dossier: shown as its outline, saved as a Word file.
    dossier = await demo.handle(f"/dossier {reference}")
    assert f"📄 document ({reference}.docx" in dossier and "§ Досье дела" in dossier
    saved = await demo.handle(f"/save {tmp_path / 'dossier'}")
    [path] = (tmp_path / "dossier").glob("*.docx")
    text = "\n".join(p.text for p in Document(str(path)).paragraphs)
    assert reference in text and digest in text


async def test_the_demo_shows_the_staff_pin_and_the_lock(demo: DemoSession) -> None:
    """Both staff chose the PIN at start; /lock locks, the PIN unlocks (issue 13)."""
    from devkit.demo import DEMO_PIN
    from handlers.staff import gate

    screen = await demo.start()
    assert f"both staff chose the PIN {DEMO_PIN}" in screen
    await demo.handle("/as lawyer")
    locked = await demo.handle("/lock")
    assert t(gate.LOCKED, STAFF_LANGUAGE) in locked
    assert t(gate.ENTER, STAFF_LANGUAGE) in await demo.handle("/queue")
    unlocked = await demo.handle("\\" + DEMO_PIN)  # a number alone would press a button
    assert t(gate.UNLOCKED, STAFF_LANGUAGE) in unlocked
    assert DEMO_PIN not in demo.render_changes()
    assert t(gate.ENTER, STAFF_LANGUAGE) not in await demo.handle("/queue")
