"""The `speed` extra (uvloop when installed), and Bot API calls sent as JSON."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.methods import SendDocument, SendMessage
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup
from pydantic import SecretStr

from bot import speedups
from bot.api_session import BotApiSession, loads_without_keyboards
from bot.config import Settings, SettingsError, load_settings
from bot.factory import create_bot
from devkit.emulator import FakeTelegramServer, SimulatedUser

TAJIK = "Писари ман ҳабс шуд; ӯ ҳоло дар куҷост? «ғ ӣ қ ӯ ҳ ҷ»"


def test_naming_uvloop_when_it_is_not_installed_is_a_one_line_settings_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("bot.config.installed", lambda _module: False)
    monkeypatch.setenv("INTAKE_EVENT_LOOP", "uvloop")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith("INTAKE_EVENT_LOOP:")
    assert "intake-bot[speed]" in str(caught.value)


def test_auto_takes_uvloop_when_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    assert speedups.event_loop_name("auto") == "uvloop"  # the dev lock has the extra
    assert speedups.loop_factory("auto") is not asyncio.new_event_loop
    monkeypatch.setattr(speedups, "installed", lambda _module: False)
    assert speedups.event_loop_name("auto") == "asyncio"
    assert speedups.loop_factory("auto") is asyncio.new_event_loop


@pytest.mark.parametrize("choice", ["asyncio", "uvloop"])
def test_each_event_loop_runs_the_bot_s_coroutines(choice: speedups.EventLoopChoice) -> None:
    async def answer() -> str:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__

    with asyncio.Runner(loop_factory=speedups.loop_factory(choice)) as runner:
        module = runner.run(answer())
    assert module.startswith("uvloop" if choice == "uvloop" else "asyncio")


def _session() -> tuple[BotApiSession, Bot]:
    settings = Settings(_env_file=None, bot_token=SecretStr("42:" + "a" * 35))
    bot = create_bot(settings)
    assert isinstance(bot.session, BotApiSession)
    return bot.session, bot


def test_a_call_without_files_is_one_json_document_with_the_bot_s_defaults() -> None:
    session, bot = _session()
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Ҳа", callback_data="yes")]]
    )
    body = session.json_body(bot, SendMessage(chat_id=7, text=TAJIK, reply_markup=markup))
    assert body is not None
    params = json.loads(body)
    assert params["text"] == TAJIK
    assert params["chat_id"] == 7
    assert params["reply_markup"] == {"inline_keyboard": [[{"text": "Ҳа", "callback_data": "yes"}]]}
    assert params["protect_content"] is True  # DefaultBotProperties, filled in
    assert None not in params.values()


def test_a_call_with_a_file_stays_multipart() -> None:
    session, bot = _session()
    document = BufferedInputFile(b"%PDF-1.4", filename="dossier.pdf")
    assert session.json_body(bot, SendDocument(chat_id=7, document=document)) is None


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer() as fake:
        yield fake


async def test_telegram_receives_exactly_what_was_sent_as_json(
    server: FakeTelegramServer,
) -> None:
    user = SimulatedUser(server, user_id=1234)
    settings = Settings(
        _env_file=None, bot_token=SecretStr(server.token), telegram_api_url=server.url
    )
    async with create_bot(settings) as bot:
        markup = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Не", callback_data="no")]]
        )
        sent = await bot.send_message(user.chat_id, TAJIK, reply_markup=markup)
        document = BufferedInputFile(b"report", filename="report.txt")
        await bot.send_document(user.chat_id, document, caption=TAJIK)
    assert sent.text == TAJIK
    call = server.calls_for("sendMessage")[-1]
    assert call.params["text"] == TAJIK
    assert call.params["protect_content"] is True
    assert server.calls_for("sendDocument")[-1].params["caption"] == TAJIK


def test_keyboards_echoed_by_telegram_are_dropped_before_validation() -> None:
    keyboard = {"inline_keyboard": [[{"text": "Ҳа", "callback_data": "yes"}]]}
    message = {"message_id": 5, "chat": {"id": 7, "type": "private"}, "date": 1, "text": "x"}
    sent = {"ok": True, "result": {**message, "reply_markup": keyboard}}
    updates = {
        "ok": True,
        "result": [
            {"update_id": 1, "message": {**message, "reply_markup": keyboard}},
            {
                "update_id": 2,
                "callback_query": {
                    "id": "q",
                    "data": "yes",
                    "message": {**message, "reply_markup": keyboard},
                },
            },
        ],
    }
    loads = loads_without_keyboards(json.loads)
    assert loads(json.dumps(sent))["result"] == message
    parsed = loads(json.dumps(updates))["result"]
    assert parsed[0]["message"] == message
    assert parsed[1]["callback_query"]["message"] == message
    assert parsed[1]["callback_query"]["data"] == "yes"
    assert loads('{"ok": true, "result": true}') == {"ok": True, "result": True}


async def test_what_the_bot_sends_keeps_its_keyboard(server: FakeTelegramServer) -> None:
    user = SimulatedUser(server, user_id=4321)
    settings = Settings(
        _env_file=None, bot_token=SecretStr(server.token), telegram_api_url=server.url
    )
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Ҳа", callback_data="yes")]]
    )
    async with create_bot(settings) as bot:
        sent = await bot.send_message(user.chat_id, TAJIK, reply_markup=markup)
    assert sent.reply_markup is None  # not read back
    assert user.buttons() == [["Ҳа"]]  # but shown
