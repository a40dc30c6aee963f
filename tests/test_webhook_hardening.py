"""Webhook mode under attack and under load (issue 11, items 7-9).

* At most as many updates in flight as polling mode allows, and Telegram is
  told to open no more connections than that.
* A bad secret header, whatever its bytes, is a 401 and not an error.
* Updates that do not validate leave nothing of their content in the log:
  the real process runs, and its whole output is scanned for a canary.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiogram import BaseMiddleware
from aiogram.types import TelegramObject
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.config import UPDATE_CONCURRENCY, RunMode, Settings
from bot.factory import create_bot, create_dispatcher
from bot.webhook import build_webhook_app, serve_webhook, webhook_path
from devkit.emulator import FakeTelegramServer
from devkit.sandbox import FAST_OUTBOX
from storage.crypto import KeyRing
from tests.canary import new_canary
from tests.conftest import Database
from tests.test_webhook import SECRET, SECRET_HEADER, Webhook, _message_update, webhook  # noqa: F401

REPO = Path(__file__).resolve().parents[1]


class Gate(BaseMiddleware):
    """Holds every update until opened; counts how many are inside at once."""

    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.opened = asyncio.Event()

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            await self.opened.wait()
            return await handler(event, data)
        finally:
            self.inside -= 1


def _settings(server: FakeTelegramServer, database_url: str, **extra: Any) -> Settings:
    return Settings(
        bot_token=SecretStr(server.token),
        telegram_api_url=server.url,
        database_url=database_url,
        mode=RunMode.WEBHOOK,
        webhook_url="https://bot.example.org/tg/updates",
        webhook_secret=SecretStr(SECRET),
        rate_limit=0,
        **extra,
    )


@contextlib.asynccontextmanager
async def _gated_webhook(
    database: Database, keyring: KeyRing, gate: Gate
) -> AsyncIterator[Webhook]:
    async with FakeTelegramServer() as server:
        settings = _settings(server, database.url)
        bot = create_bot(settings)
        dispatcher = create_dispatcher(
            settings, database.sessionmaker, keyring, outbox_policy=FAST_OUTBOX
        )
        # Outermost, so that the held updates hold no database connection.
        outer = dispatcher.update.outer_middleware
        existing = list(outer)
        for middleware in existing:
            outer.unregister(middleware)
        for middleware in (gate, *existing):
            outer.register(middleware)
        client: TestClient[Any, Any] = TestClient(
            TestServer(build_webhook_app(settings, bot, dispatcher))
        )
        await client.start_server()
        try:
            yield Webhook(server, client, webhook_path(settings))
        finally:
            await client.close()
            await bot.session.close()


def _start_from(server: FakeTelegramServer, chat_id: int) -> dict[str, Any]:
    """/start from a chat of its own (one chat's updates wait for each other anyway)."""
    server.ensure_chat(chat_id, first_name="Шаҳло", language_code="ru")
    entities = [{"type": "bot_command", "offset": 0, "length": 6}]
    message = server.add_user_message(chat_id, kind="text", text="/start", entities=entities)
    return {"update_id": chat_id, "message": server.render_message(message)}


async def test_webhook_mode_has_the_concurrency_limit_of_polling(
    database: Database, keyring: KeyRing
) -> None:
    gate = Gate()
    many = 3 * UPDATE_CONCURRENCY
    async with _gated_webhook(database, keyring, gate) as hook:
        posts = [
            asyncio.create_task(hook.post(_start_from(hook.server, 800_000 + n)))
            for n in range(many)
        ]
        await hook.server.wait_for(lambda _s: gate.inside >= UPDATE_CONCURRENCY, timeout=20)
        for _ in range(100):  # let every arrived request run as far as it may
            await asyncio.sleep(0)
        assert gate.inside == UPDATE_CONCURRENCY
        gate.opened.set()
        statuses = await asyncio.gather(*posts)
    assert statuses == [200] * many
    assert gate.most_inside == UPDATE_CONCURRENCY


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_set_webhook_asks_for_no_more_connections_than_the_limit(
    database: Database, keyring: KeyRing
) -> None:
    async with FakeTelegramServer() as server:
        settings = _settings(server, database.url, webhook_port=_free_port())
        bot = create_bot(settings)
        dispatcher = create_dispatcher(
            settings, database.sessionmaker, keyring, outbox_policy=FAST_OUTBOX
        )
        serving = asyncio.create_task(serve_webhook(settings, bot, dispatcher))
        try:
            await server.wait_for(lambda s: bool(s.calls_for("setWebhook")), timeout=20)
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
            await bot.session.close()
    assert server.webhook.max_connections == UPDATE_CONCURRENCY


async def _raw_post(port: int, path: str, header_value: bytes, body: bytes) -> int:
    """A POST with the secret header's bytes exactly as given (clients refuse some)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            b"POST " + path.encode() + b" HTTP/1.1\r\nHost: bot\r\n"
            b"Content-Type: application/json\r\n"
            + SECRET_HEADER.encode()
            + b": "
            + header_value
            + b"\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
        await writer.drain()
        status_line = await reader.readline()
        return int(status_line.split()[1])
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.mark.parametrize(
    "header_value",
    [
        "секрет".encode(),
        (SECRET + "é").encode(),
        SECRET.encode()[:-1] + "ӣ".encode(),
        "é".encode("latin-1") * 40,
        SECRET.encode() + b" x",
        b"A" * 300,
    ],
    ids=["cyrillic", "secret+accent", "tajik-letter", "latin-1", "secret+space", "long"],
)
async def test_any_bad_secret_header_is_a_401_and_no_error(
    webhook: Webhook,  # noqa: F811 - the fixture of tests/test_webhook.py
    header_value: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    update = _message_update(webhook.server, 1, "/start")
    port = webhook.client.server.port
    assert port is not None
    status = await _raw_post(port, webhook.path, header_value, json.dumps(update).encode())
    assert status == 401
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert webhook.sends_to_chat() == []


def _invalid_updates(canary: str) -> list[bytes]:
    """Bodies Telegram never sends, each holding the canary where validation looks."""
    message = {"message_id": 1, "date": 1, "chat": {"id": 5, "type": "private"}}
    bodies: list[object] = [
        {"update_id": 1, "message": {"text": canary}},
        {"update_id": canary},
        {"update_id": 2, "message": {**message, "date": canary}},
        {"update_id": 3, "message": {**message, "chat": canary}},
        {"update_id": 4, "callback_query": {"id": canary, "data": 5}},
        [canary],
    ]
    as_json = [json.dumps(body, ensure_ascii=False).encode() for body in bodies]
    return [*as_json, canary.encode()]


async def _wait_listening(port: int, timeout: float = 90.0) -> None:  # noqa: ASYNC109
    """Until the process accepts connections (it starts listening after migrating)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)
        else:
            writer.close()
            return


async def test_invalid_updates_leave_no_content_in_the_log(tmp_path: Path) -> None:
    canary = new_canary("Webhook")
    port = _free_port()
    async with FakeTelegramServer() as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
        env |= {
            "PYTHONPATH": str(REPO),
            "INTAKE_BOT_TOKEN": server.token,
            "INTAKE_TELEGRAM_API_URL": server.url,
            "INTAKE_MODE": "webhook",
            "INTAKE_WEBHOOK_URL": f"http://127.0.0.1:{port}/tg/updates",
            "INTAKE_WEBHOOK_SECRET": SECRET,
            "INTAKE_WEBHOOK_PORT": str(port),
            "INTAKE_LOG_LEVEL": "DEBUG",
            "PYTHONASYNCIODEBUG": "1",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await server.wait_for(lambda s: bool(s.calls_for("setWebhook")), timeout=90)
            await _wait_listening(port)
            statuses = [
                await _raw_post(port, "/tg/updates", SECRET.encode(), body)
                for body in _invalid_updates(canary)
            ]
            # A valid update afterwards is still served: the process is healthy.
            update = _message_update(server, 50, "/start")
            status = await _raw_post(
                port, "/tg/updates", SECRET.encode(), json.dumps(update).encode()
            )
            assert status == 200
            await server.wait_for(lambda s: bool(s.calls_for("sendMessage")), timeout=30)
        finally:
            process.send_signal(signal.SIGINT)
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    log = stderr + stdout
    assert b"update=" in log  # the log is there, and it was scanned
    for needle in (canary, canary.split("-")[-1]):
        assert needle.encode() not in log, log.decode(errors="replace")[-3000:]
    assert b"input_value" not in log
    assert statuses == [400] * len(statuses)  # refused, not redelivered for ever
