"""Webhook mode answers a button press in the webhook's HTTP response.

The emulator delivers each update to the real dispatcher behind
``build_webhook_app`` and, as Telegram does, executes a method found in the
response, recording it as a call (``webhook_reply``). No sleeps: every wait is
for a response or an emulator state.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiogram import BaseMiddleware
from aiogram.methods import AnswerCallbackQuery, SendMessage
from aiogram.types import TelegramObject, Update
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.exc import OperationalError

from bot.factory import create_bot, create_dispatcher
from bot.webhook import build_webhook_app, webhook_path
from bot.webhook_reply import HeldAnswer, holding_answer
from devkit.emulator import FakeTelegramServer, SimulatedUser
from devkit.emulator.records import RecordedCall
from devkit.replicas import ReplicaCluster
from devkit.sandbox import FAST_OUTBOX, Sandbox
from handlers.common.errors import TRY_AGAIN
from storage.crypto import KeyRing
from storage.repositories import UserRepository
from tests.conftest import Database
from tests.test_webhook import CHAT_ID, SECRET, SECRET_HEADER, webhook_settings

Inner = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class Endpoint:
    """The webhook app on a test server, set as the emulator's webhook."""

    def __init__(self, server: FakeTelegramServer, client: TestClient[Any, Any], path: str):
        self.server = server
        self.client = client
        self.path = path

    async def post(self, update: dict[str, Any]) -> tuple[int, str]:
        """Posted by hand, not by the emulator: the response is read, not executed."""
        headers = {SECRET_HEADER: SECRET}
        async with self.client.post(self.path, json=update, headers=headers) as response:
            return response.status, await response.text()


@contextlib.asynccontextmanager
async def webhook_bot(
    server: FakeTelegramServer,
    database: Database,
    keyring: KeyRing,
    *,
    answer_in_response: bool = True,
    inner: BaseMiddleware | None = None,
) -> AsyncIterator[Endpoint]:
    """``inner`` runs inside the update's transaction, around the handler."""
    settings = webhook_settings(server, database)
    bot = create_bot(settings)
    dispatcher = create_dispatcher(
        settings, database.sessionmaker, keyring, outbox_policy=FAST_OUTBOX
    )
    if inner is not None:
        dispatcher.update.outer_middleware(inner)
    app = build_webhook_app(settings, bot, dispatcher, answer_in_response=answer_in_response)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    path = webhook_path(settings)
    try:
        await bot.set_webhook(str(client.make_url(path)), secret_token=SECRET)
        yield Endpoint(server, client, path)
    finally:
        await client.close()
        await bot.session.close()


def _answers(server: FakeTelegramServer) -> list[RecordedCall]:
    return server.calls_for("answerCallbackQuery")


async def _language_screen(server: FakeTelegramServer) -> SimulatedUser:
    """A person who sent /start and sees the language buttons."""
    user = SimulatedUser(server, user_id=CHAT_ID, language_code="ru")
    await user.send_command("/start")
    assert ["Тоҷикӣ", "Русский"] in user.buttons()
    assert _answers(server) == []
    return user


@pytest.mark.parametrize("in_response", [True, False], ids=["in-response", "as-a-call"])
async def test_a_press_is_answered_in_the_webhook_response(
    database: Database, keyring: KeyRing, in_response: bool
) -> None:
    async with (
        FakeTelegramServer() as server,
        webhook_bot(server, database, keyring, answer_in_response=in_response),
    ):
        user = await _language_screen(server)
        press = await user.press("Русский")
        # One answer, executed by the emulator; in the response, no request of its own.
        [call] = _answers(server)
        assert (call.webhook_reply, call.ok, call.chat_id) == (in_response, True, CHAT_ID)
        assert call.params == {"callback_query_id": press}
        [answer] = user.answered_callbacks()
        assert (answer.callback_query_id, answer.text) == (press, None)
        assert "Продолжить" in str(user.buttons())  # the press was handled: the next screen


class FailsOnceAfterTheHandler(BaseMiddleware):
    """The first press's transaction fails after its handler answered it."""

    def __init__(self) -> None:
        self.failed = False

    async def __call__(self, handler: Inner, event: TelegramObject, data: dict[str, Any]) -> Any:
        result = await handler(event, data)
        if not self.failed and isinstance(event, Update) and event.callback_query is not None:
            self.failed = True
            raise OperationalError("COMMIT", {}, ConnectionResetError("connection lost"))
        return result


def _press_update(user: SimulatedUser, update_id: int, label: str) -> dict[str, Any]:
    [screen] = [m for m in user.bot_messages() if m.find_button(label) is not None]
    button = screen.find_button(label)
    assert button is not None
    return {
        "update_id": update_id,
        "callback_query": {
            "id": "press-4711",
            "from": user.user_dict,
            "message": user.server.render_message(screen),
            "chat_instance": "4711",
            "data": button["callback_data"],
        },
    }


async def test_a_failed_press_answers_nothing_and_its_redelivery_answers_it(
    database: Database, keyring: KeyRing
) -> None:
    failing = FailsOnceAfterTheHandler()
    async with (
        FakeTelegramServer() as server,
        webhook_bot(server, database, keyring, inner=failing) as endpoint,
    ):
        update = _press_update(await _language_screen(server), 9001, "Русский")
        status, body = await endpoint.post(update)
        assert failing.failed  # the handler had answered: the answer was held, then dropped
        assert (status, body) == (500, "Internal Server Error")
        assert _answers(server) == []
        status, body = await endpoint.post(update)  # Telegram delivers it again
        assert status == 200
        assert body == '{"method": "answerCallbackQuery", "callback_query_id": "press-4711"}'
        assert _answers(server) == []  # no request of its own
        status, body = await endpoint.post(update)  # once more: dropped as a duplicate,
        assert status == 200  # and the press answered again, in case the first answer was lost
        assert body == '{"method": "answerCallbackQuery", "callback_query_id": "press-4711"}'
        assert _answers(server) == []


async def test_the_proxy_passes_the_answer_back_after_a_redelivery(
    database: Database, keyring: KeyRing
) -> None:
    async with FakeTelegramServer() as server:
        cluster = ReplicaCluster(server, keyring, database.url, database.schema, FAST_OUTBOX)
        await cluster.start(1)
        try:
            cluster.replicas[0].dispatcher.update.outer_middleware(FailsOnceAfterTheHandler())
            user = await _language_screen(server)
            press = await user.press("Русский")
        finally:
            await cluster.stop()
    assert cluster.proxy.redeliveries == 1
    [call] = _answers(server)
    assert (call.webhook_reply, call.ok, call.params) == (True, True, {"callback_query_id": press})
    assert len(user.answered_callbacks()) == 1


class AnswersFirst(BaseMiddleware):
    """Answers a press before its handler does, which then answers it a second time."""

    async def __call__(self, handler: Inner, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, Update) and event.callback_query is not None:
            await event.callback_query.answer("первый")
        return await handler(event, data)


async def test_a_second_answer_is_a_call_and_the_first_still_goes_first(
    database: Database, keyring: KeyRing
) -> None:
    async with (
        FakeTelegramServer() as server,
        webhook_bot(server, database, keyring, inner=AnswersFirst()),
    ):
        user = await _language_screen(server)
        await user.press("Русский")
        first, second = _answers(server)
    # Telegram shows the answer that arrives first, as when every answer was a call.
    assert (first.params.get("text"), first.ok, first.webhook_reply) == ("первый", True, False)
    assert (second.params.get("text"), second.ok, second.webhook_reply) == (None, False, False)
    [answer] = user.answered_callbacks()
    assert answer.text == "первый"


class FailsAfterTheHandler(BaseMiddleware):
    """A bug after the handler answered: the update's work is rolled back."""

    async def __call__(self, handler: Inner, event: TelegramObject, data: dict[str, Any]) -> Any:
        result = await handler(event, data)
        if isinstance(event, Update) and event.callback_query is not None:
            raise RuntimeError("a bug")
        return result


async def test_a_failed_handler_s_answer_gives_way_to_the_error_alert(
    database: Database, keyring: KeyRing
) -> None:
    async with (
        FakeTelegramServer() as server,
        webhook_bot(server, database, keyring, inner=FailsAfterTheHandler()),
    ):
        user = await _language_screen(server)
        await user.press("Русский")
        [call] = _answers(server)
    assert call.webhook_reply and call.ok
    assert (call.params.get("text"), call.params.get("show_alert")) == (TRY_AGAIN[:200], True)


async def test_a_banned_person_s_press_gets_the_neutral_answer_in_the_response(
    database: Database, keyring: KeyRing
) -> None:
    async with (
        FakeTelegramServer() as server,
        webhook_bot(server, database, keyring),
    ):
        user = await _language_screen(server)
        async with database.sessionmaker() as session:
            row = await UserRepository(session, keyring).by_telegram_id(CHAT_ID)
            assert row is not None
            row.banned = True
            await session.commit()
        messages = len(user.bot_messages())
        press = await user.press("Русский")
        [call] = _answers(server)
    assert (call.webhook_reply, call.ok, call.params) == (True, True, {"callback_query_id": press})
    assert len(user.bot_messages()) == messages  # the language screen stays, nothing new


class ReturnsAMethod(BaseMiddleware):
    """In place of the handlers: returns a method, for the dispatcher to execute."""

    async def __call__(self, handler: Inner, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        if event.callback_query is not None:
            return AnswerCallbackQuery(callback_query_id=event.callback_query.id, text="готово")
        if event.message is not None and event.message.text == "ответ":
            return SendMessage(chat_id=CHAT_ID, text="принято")
        return await handler(event, data)


async def test_a_method_returned_to_the_dispatcher_is_still_executed(
    database: Database, keyring: KeyRing
) -> None:
    async with (
        FakeTelegramServer() as server,
        webhook_bot(server, database, keyring, inner=ReturnsAMethod()),
    ):
        user = await _language_screen(server)
        await user.press("Русский")
        await user.send_text("ответ")
        [call] = _answers(server)
        [sent] = [c for c in server.calls_for("sendMessage") if c.params.get("text") == "принято"]
    assert (call.webhook_reply, call.params.get("text")) == (True, "готово")
    assert not sent.webhook_reply


def test_an_answer_after_the_update_is_a_call() -> None:
    """A task the handler started may answer late: by then the response is gone."""
    with holding_answer() as held:
        assert isinstance(held, HeldAnswer)
        first = AnswerCallbackQuery(callback_query_id="1")
        assert held.take(first)
        assert not held.take(AnswerCallbackQuery(callback_query_id="1", text="again"))
    assert held.method is first  # the response's
    assert not held.take(AnswerCallbackQuery(callback_query_id="1"))
    assert held.release() is None  # not sent a second time
    with holding_answer(enabled=False) as none:
        assert none is None


async def test_polling_answers_a_press_by_a_call(database: Database, keyring: KeyRing) -> None:
    async with Sandbox(
        sessionmaker=database.sessionmaker, keyring=keyring, database_url=database.url
    ) as sandbox:
        user = await _language_screen(sandbox.server)
        press = await user.press("Русский")
        [call] = _answers(sandbox.server)
    assert (call.webhook_reply, call.ok, call.params) == (False, True, {"callback_query_id": press})
