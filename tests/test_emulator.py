"""Tests of the fake Telegram Bot API server and the simulated user."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ContentType
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandObject
from aiogram.methods import SendMessage
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler

from devkit.emulator import FakeTelegramServer, SimulatedUser, UploadedFile

TOKEN = "123456789:AAEmulatorTestToken_abcdefghijklmno"
USER_ID = 1001


def make_bot(server: FakeTelegramServer, token: str = TOKEN) -> Bot:
    # The plain aiogram session, exactly as production code builds it.
    session = AiohttpSession(api=TelegramAPIServer.from_base(server.url))
    return Bot(token, session=session)


@pytest.fixture
async def server() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer(token=TOKEN, bot_username="intake_test_bot") as srv:
        yield srv


@pytest.fixture
async def bot(server: FakeTelegramServer) -> AsyncIterator[Bot]:
    # EmulatorSession skips AiohttpSession.close()'s 250 ms SSL grace sleep.
    bot = server.make_bot()
    try:
        yield bot
    finally:
        await bot.session.close()


@pytest.fixture
def user(server: FakeTelegramServer) -> SimulatedUser:
    return SimulatedUser(server, user_id=USER_ID, first_name="Test", language_code="ru")


def keyboard(*labels_and_data: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=label, callback_data=data)]
            for label, data in labels_and_data
        ]
    )


async def test_get_me(server: FakeTelegramServer) -> None:
    bot = make_bot(server)
    try:
        me = await bot.get_me()
    finally:
        await bot.session.close()
    assert me.id == 123456789
    assert me.is_bot
    assert me.username == "intake_test_bot"
    assert [call.method for call in server.calls] == ["getMe"]
    assert server.url.startswith("http://127.0.0.1:")


async def test_send_message_round_trip(
    server: FakeTelegramServer, bot: Bot, user: SimulatedUser
) -> None:
    sent = await bot.send_message(
        USER_ID,
        "<b>Hello</b>",
        parse_mode="HTML",
        protect_content=True,
        reply_markup=keyboard(("Yes", "answer:yes"), ("No", "answer:no")),
    )
    assert isinstance(sent, Message)
    assert sent.chat.id == USER_ID
    assert sent.chat.type == "private"
    assert sent.from_user is not None
    assert sent.from_user.is_bot
    assert sent.text == "<b>Hello</b>"
    assert sent.has_protected_content
    assert isinstance(sent.reply_markup, InlineKeyboardMarkup)
    assert sent.reply_markup.inline_keyboard[1][0].callback_data == "answer:no"

    record = user.last_bot_message()
    assert record is not None
    assert record.message_id == sent.message_id
    assert record.protect_content
    assert record.parse_mode == "HTML"
    assert record.plain_text == "Hello"
    assert user.buttons() == [["Yes"], ["No"]]
    assert user.last_text() == "<b>Hello</b>"

    (call,) = server.calls_for("sendmessage")
    assert call.chat_id == USER_ID
    assert call.params["protect_content"] is True
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "Yes"

    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999, "nobody here")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(USER_ID, "<script>x</script>", parse_mode="HTML")


async def test_message_ids_shared_by_both_sides(
    server: FakeTelegramServer, bot: Bot, user: SimulatedUser
) -> None:
    user.wait = False
    first = await user.send_text("hi")
    reply = await bot.send_message(USER_ID, "hello")
    second = await user.send_text("again")
    assert (first, reply.message_id, second) == (1, 2, 3)
    assert [m.from_bot for m in user.visible_messages()] == [False, True, False]


async def test_edit_message(server: FakeTelegramServer, bot: Bot, user: SimulatedUser) -> None:
    sent = await bot.send_message(USER_ID, "v1", reply_markup=keyboard(("Go", "go")))
    edited = await bot.edit_message_text(
        text="v2",
        chat_id=USER_ID,
        message_id=sent.message_id,
        reply_markup=keyboard(("Next", "next")),
    )
    assert isinstance(edited, Message)
    assert edited.text == "v2"
    assert edited.edit_date is not None
    assert user.last_text() == "v2"
    assert user.buttons() == [["Next"]]

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            text="v2",
            chat_id=USER_ID,
            message_id=sent.message_id,
            reply_markup=keyboard(("Next", "next")),
        )

    markup_only = await bot.edit_message_reply_markup(
        chat_id=USER_ID, message_id=sent.message_id, reply_markup=None
    )
    assert isinstance(markup_only, Message)
    assert user.buttons() == []

    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(text="x", chat_id=USER_ID, message_id=404)


async def test_delete_messages(server: FakeTelegramServer, bot: Bot, user: SimulatedUser) -> None:
    user.wait = False
    user_msg = await user.send_text("my secret testimony")
    bot_msgs = [(await bot.send_message(USER_ID, f"m{i}")).message_id for i in range(3)]

    assert await bot.delete_messages(USER_ID, [user_msg, bot_msgs[0], 777])
    assert await bot.delete_message(USER_ID, bot_msgs[1])

    visible = [m.message_id for m in user.visible_messages()]
    assert visible == [bot_msgs[2]]
    assert user.deleted_message_ids() == [user_msg, bot_msgs[0], bot_msgs[1]]

    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(USER_ID, bot_msgs[0])


async def test_delete_after_48_hours_fails(
    server: FakeTelegramServer, bot: Bot, user: SimulatedUser
) -> None:
    old = await bot.send_message(USER_ID, "old")
    server.advance_time(48 * 3600 + 1)
    fresh = await bot.send_message(USER_ID, "fresh")
    with pytest.raises(TelegramBadRequest, match="message can't be deleted for everyone"):
        await bot.delete_message(USER_ID, old.message_id)
    # deleteMessages still answers true, deleting only what it can
    assert await bot.delete_messages(USER_ID, [old.message_id, fresh.message_id])
    assert [m.message_id for m in user.visible_messages()] == [old.message_id]


async def test_fault_injection(server: FakeTelegramServer, bot: Bot, user: SimulatedUser) -> None:
    server.inject_fault("sendMessage", "retry_after", retry_after=7)
    with pytest.raises(TelegramRetryAfter) as retry:
        await bot.send_message(USER_ID, "x")
    assert retry.value.retry_after == 7
    assert "Too Many Requests: retry after 7" in retry.value.message

    server.inject_fault("*", "server_error", times=2)
    with pytest.raises(TelegramServerError):
        await bot.get_me()
    with pytest.raises(TelegramServerError):
        await bot.send_message(USER_ID, "x")
    sent = await bot.send_message(USER_ID, "finally")
    assert sent.text == "finally"

    server.inject_fault("sendMessage", "slow", delay=0.2)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await bot.send_message(USER_ID, "slowly")
    assert loop.time() - started >= 0.2

    faults = [call.fault for call in server.calls_for("sendMessage")]
    assert faults == ["retry_after", "server_error", None, "slow"]
    assert [m.text for m in user.bot_messages()] == ["finally", "slowly"]

    server.set_blocked(USER_ID)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(USER_ID, "blocked")


async def test_send_document_and_photo_store_bytes(
    server: FakeTelegramServer, bot: Bot, user: SimulatedUser
) -> None:
    payload = b"%PDF-1.4 encrypted evidence"
    sent = await bot.send_document(
        USER_ID,
        BufferedInputFile(payload, filename="report.pdf"),
        caption="Report",
        protect_content=True,
    )
    assert sent.document is not None
    assert sent.document.file_name == "report.pdf"
    assert sent.document.mime_type == "application/pdf"
    assert sent.document.file_size == len(payload)
    assert sent.caption == "Report"
    assert server.file_bytes(sent.document.file_id) == payload
    call = server.calls_for("sendDocument")[0]
    assert isinstance(call.params["document"], UploadedFile)
    assert call.params["document"].data == payload

    again = await bot.send_document(USER_ID, sent.document.file_id)
    assert again.document is not None
    assert again.document.file_id == sent.document.file_id

    photo = await bot.send_photo(USER_ID, BufferedInputFile(b"\xff\xd8jpeg", filename="p.jpg"))
    assert photo.photo is not None
    assert len(photo.photo) > 1
    assert server.file_bytes(photo.photo[-1].file_id) == b"\xff\xd8jpeg"

    voice = await bot.send_voice(USER_ID, BufferedInputFile(b"OggS", filename="v.ogg"))
    assert voice.voice is not None
    assert voice.voice.duration >= 1

    record = user.last_bot_message()
    assert record is not None
    assert record.kind == "voice"
    assert record.file_id == voice.voice.file_id

    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_document(USER_ID, "no-such-file-id")


async def test_get_file_and_download_user_upload(
    server: FakeTelegramServer, bot: Bot, user: SimulatedUser
) -> None:
    user.wait = False
    data = bytes(range(256)) * 50
    message_id = await user.send_document(data, "scan.pdf", "application/pdf", caption="scan")
    record = server.get_message(USER_ID, message_id)
    assert record is not None
    assert record.file_id is not None

    file = await bot.get_file(record.file_id)
    assert file.file_size == len(data)
    assert file.file_path is not None
    downloaded = await bot.download(record.file_id)
    assert isinstance(downloaded, io.BytesIO)
    assert downloaded.getvalue() == data
    assert server.downloads == [file.file_path]

    photo_id = await user.send_photo(b"photo-bytes", caption="bruise")
    photo = server.get_message(USER_ID, photo_id)
    assert photo is not None
    assert photo.file_id is not None
    assert len(photo.media["photo"]) == 3
    buffer = io.BytesIO()
    await bot.download(photo.file_id, destination=buffer)
    assert buffer.getvalue() == b"photo-bytes"

    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")


async def test_commands_per_scope(
    server: FakeTelegramServer, bot: Bot, user: SimulatedUser
) -> None:
    default = [BotCommand(command="start", description="Start")]
    private = [
        BotCommand(command="start", description="Начать"),
        BotCommand(command="delete", description="Удалить"),
    ]
    assert await bot.set_my_commands(default)
    assert await bot.set_my_commands(
        private, scope=BotCommandScopeChat(chat_id=USER_ID), language_code="ru"
    )

    got = await bot.get_my_commands(scope=BotCommandScopeChat(chat_id=USER_ID), language_code="ru")
    assert [(c.command, c.description) for c in got] == [
        ("start", "Начать"),
        ("delete", "Удалить"),
    ]
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert await bot.get_my_commands(scope=BotCommandScopeChat(chat_id=USER_ID)) == []
    assert server.get_commands({"type": "chat", "chat_id": USER_ID}, "ru")[1]["command"] == "delete"

    assert await bot.delete_my_commands()
    assert await bot.get_my_commands() == []

    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Command", description="x")])


async def test_unauthorized_token(server: FakeTelegramServer) -> None:
    bot = make_bot(server, token="42:wrong-token")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await bot.get_me()
    finally:
        await bot.session.close()
    assert server.calls == []


async def test_raw_http_shapes(server: FakeTelegramServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/bot{TOKEN}/noSuchMethod") as resp:
            assert resp.status == 404
            assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with http.post(f"{server.url}/bot{TOKEN}/GETME", json={}) as resp:
            body = await resp.json()
            assert body["ok"] is True
            assert body["result"]["username"] == "intake_test_bot"
        async with http.get(f"{server.url}/bot{TOKEN}/getUpdates?timeout=0") as resp:
            assert await resp.json() == {"ok": True, "result": []}


async def test_polling_echo_and_callback(
    server: FakeTelegramServer, bot: Bot, user: SimulatedUser
) -> None:
    router = Router()

    @router.message(Command("start"))
    async def on_start(message: Message, command: CommandObject) -> None:
        await message.answer(
            f"start:{command.args}",
            reply_markup=keyboard(("Confirm", "confirm:1"), ("Cancel", "cancel")),
        )

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {message.text}")

    @router.message(F.photo | F.document | F.voice | F.sticker | F.location)
    async def media(message: Message) -> None:
        await message.answer(f"got {ContentType(message.content_type).value}")

    @router.callback_query(F.data.startswith("confirm:"))
    async def on_confirm(callback: CallbackQuery) -> None:
        assert isinstance(callback.message, Message)
        await callback.message.edit_text("confirmed")
        await callback.answer("Done", show_alert=True)

    @router.callback_query()
    async def on_other(callback: CallbackQuery) -> None:
        await callback.answer(f"unknown {callback.data}")

    dp = Dispatcher()
    dp.include_router(router)
    polling = asyncio.create_task(
        dp.start_polling(bot, handle_as_tasks=False, polling_timeout=1, handle_signals=False)
    )
    try:
        await user.send_text("hello")
        assert user.last_text() == "echo: hello"

        await user.send_command("/start", args="deep")
        assert user.last_text() == "start:deep"
        assert user.buttons() == [["Confirm"], ["Cancel"]]

        await user.press("Confirm")
        assert user.last_text() == "confirmed"
        (answer,) = user.answered_callbacks()
        assert answer.text == "Done"
        assert answer.show_alert

        await user.send_location(38.56, 68.78)
        assert user.last_text() == "got location"
        await user.send_sticker()
        assert user.last_text() == "got sticker"

        menu = user.last_bot_message()
        assert menu is not None
        await user.press_data("forged" * 3, menu.message_id)
        assert user.answered_callbacks()[-1].text == "unknown forgedforgedforged"

        with pytest.raises(LookupError, match=r"no inline button .Nonexistent."):
            await user.press("Nonexistent")

        ids = [m.message_id for m in user.visible_messages()]
        assert ids == sorted(ids)
        assert all(server.is_processed(uid) for uid in range(1, server.last_update_id + 1))
    finally:
        await dp.stop_polling()
        with contextlib.suppress(asyncio.CancelledError):
            await polling


async def test_wait_processed_times_out_without_bot(
    server: FakeTelegramServer, user: SimulatedUser
) -> None:
    user.timeout = 0.1
    with pytest.raises(TimeoutError, match="not confirmed"):
        await user.send_text("anyone?")
    assert server.pending_update_count == 1


async def test_wait_for_outbox_style_sender(
    server: FakeTelegramServer, bot: Bot, user: SimulatedUser
) -> None:
    async def delayed_sender() -> None:
        await asyncio.sleep(0.05)
        await bot.send_message(USER_ID, "from outbox")

    task = asyncio.create_task(delayed_sender())
    await server.wait_for(lambda s: len(s.calls_for("sendMessage")) == 1, timeout=2)
    await task
    assert user.last_text() == "from outbox"
    with pytest.raises(TimeoutError):
        await server.wait_for(lambda s: False, timeout=0.05)


async def test_webhook_delivery(server: FakeTelegramServer, bot: Bot, user: SimulatedUser) -> None:
    dp = Dispatcher()
    seen: list[str] = []

    @dp.message(F.text)
    async def reply_in_webhook_response(message: Message) -> SendMessage:
        seen.append(message.text or "")
        # Returned methods travel back in the webhook HTTP response (multipart form).
        return message.answer(f"webhook echo: {message.text}")

    app = aiohttp.web.Application()
    SimpleRequestHandler(
        dispatcher=dp, bot=bot, handle_in_background=False, secret_token="s3cret"
    ).register(app, path="/hook")
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        assert await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        info = await bot.get_webhook_info()
        assert info.url.endswith("/hook")
        with pytest.raises(TelegramConflictError, match="webhook is active"):
            await bot.get_updates()

        await user.send_text("via webhook")
        assert seen == ["via webhook"]
        assert user.last_text() == "webhook echo: via webhook"
        assert server.calls_for("sendMessage")[0].chat_id == USER_ID

        status = await server.deliver_webhook({"message": {}}, secret_token="wrong")
        assert status == 401
        assert seen == ["via webhook"]

        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
    finally:
        await runner.cleanup()
