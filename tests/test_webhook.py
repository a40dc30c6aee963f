"""Webhook mode: the real dispatcher behind ``build_webhook_app``, served by aiohttp's
test server, with the Bot's API calls going to the Bot API emulator."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.__main__ import main
from bot.config import RunMode, Settings
from bot.factory import create_bot, create_dispatcher
from bot.webhook import HEALTH_PATH, build_webhook_app, webhook_path
from devkit.emulator import FakeTelegramServer
from devkit.sandbox import FAST_OUTBOX
from storage.crypto import KeyRing
from tests.conftest import Database

REPO = Path(__file__).resolve().parents[1]
SECRET = "Webhook-secret_0123456789abcdef_0"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
CHAT_ID = 750_001


def webhook_settings(server: FakeTelegramServer, database: Database) -> Settings:
    """A webhook replica's settings against the emulator, flood control off."""
    return Settings(
        bot_token=SecretStr(server.token),
        telegram_api_url=server.url,
        database_url=database.url,
        mode=RunMode.WEBHOOK,
        webhook_url="https://bot.example.org/tg/updates",
        webhook_secret=SecretStr(SECRET),
        rate_limit=0,
    )


@dataclass
class Webhook:
    server: FakeTelegramServer
    client: TestClient[Any, Any]
    path: str

    async def post(self, update: dict[str, Any], secret: str | None = SECRET) -> int:
        headers = {} if secret is None else {SECRET_HEADER: secret}
        async with self.client.post(self.path, json=update, headers=headers) as response:
            await response.read()
            return response.status

    def sends_to_chat(self) -> list[str]:
        return [
            str(call.params.get("text"))
            for call in self.server.calls_for("sendMessage")
            if call.chat_id == CHAT_ID
        ]


@pytest.fixture
async def webhook(database: Database, keyring: KeyRing) -> AsyncIterator[Webhook]:
    server = FakeTelegramServer()
    await server.start()
    settings = webhook_settings(server, database)
    bot = create_bot(settings)
    dispatcher = create_dispatcher(
        settings, database.sessionmaker, keyring, outbox_policy=FAST_OUTBOX
    )
    app = build_webhook_app(settings, bot, dispatcher)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()  # runs the dispatcher's startup: outbox, sweeper...
    try:
        yield Webhook(server, client, webhook_path(settings))
    finally:
        await client.close()
        await bot.session.close()
        await server.stop()


def _message_update(server: FakeTelegramServer, update_id: int, text: str) -> dict[str, Any]:
    server.ensure_chat(CHAT_ID, first_name="Зарина", language_code="ru")
    entities = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    message = server.add_user_message(
        CHAT_ID, kind="text", text=text, entities=entities if text.startswith("/") else None
    )
    return {"update_id": update_id, "message": server.render_message(message)}


class _LogSeen(logging.Handler):
    """Sets an event when a record containing ``text`` is logged."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


async def test_updates_need_the_secret_token(webhook: Webhook) -> None:
    update = _message_update(webhook.server, 1, "/start")
    assert webhook.path == "/tg/updates"
    assert await webhook.post(update, secret=None) == 401
    assert await webhook.post(update, secret=SECRET[:-1] + "X") == 401
    assert await webhook.post(update, secret="") == 401
    await asyncio.sleep(0.1)
    assert webhook.sends_to_chat() == []

    assert await webhook.post(update) == 200
    await webhook.server.wait_for(lambda _s: len(webhook.sends_to_chat()) == 1, timeout=10)
    # The answer to /start: the language choice, both languages on its buttons.
    [screen] = [m for m in webhook.server.chat(CHAT_ID).visible() if m.from_bot]
    assert {"Тоҷикӣ", "Русский"} <= {label for row in screen.button_labels for label in row}


async def test_a_redelivered_update_is_handled_once(
    webhook: Webhook, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="intake")
    dropped = _LogSeen("dropped a redelivered update")
    logging.getLogger("intake").addHandler(dropped)
    update = _message_update(webhook.server, 7, "салом")
    try:
        assert await webhook.post(update) == 200
        await webhook.server.wait_for(lambda _s: len(webhook.sends_to_chat()) == 1, timeout=10)
        assert not dropped.seen.is_set()

        # Telegram re-sends an update when our answer came too late.
        assert await webhook.post(update) == 200
        await asyncio.wait_for(dropped.seen.wait(), timeout=10)
    finally:
        logging.getLogger("intake").removeHandler(dropped)
    assert len(webhook.sends_to_chat()) == 1

    # A new update from the same person is answered as usual.
    assert await webhook.post(_message_update(webhook.server, 8, "салом")) == 200
    await webhook.server.wait_for(lambda _s: len(webhook.sends_to_chat()) == 2, timeout=10)


async def test_health_check(webhook: Webhook) -> None:
    async with webhook.client.get(HEALTH_PATH) as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


def test_build_webhook_app_refuses_to_run_without_a_secret() -> None:
    settings = Settings.model_construct(webhook_secret=None, webhook_url="https://x.org/h")
    with pytest.raises(ValueError, match="INTAKE_WEBHOOK_SECRET"):
        build_webhook_app(settings, None, None)  # type: ignore[arg-type]


def test_run_in_webhook_mode_without_a_secret_exits_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env.update(
        PYTHONPATH=str(REPO),
        INTAKE_BOT_TOKEN="123456:TEST-token",
        INTAKE_MODE="webhook",
        INTAKE_WEBHOOK_URL="https://bot.example.org/tg/updates",
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "INTAKE_WEBHOOK_SECRET" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


def test_an_empty_webhook_secret_is_refused_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INTAKE_BOT_TOKEN", "123456:TEST-token")
    monkeypatch.setenv("INTAKE_MODE", "webhook")
    monkeypatch.setenv("INTAKE_WEBHOOK_URL", "https://bot.example.org/tg/updates")
    monkeypatch.setenv("INTAKE_WEBHOOK_SECRET", "")
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("intake-bot: INTAKE_WEBHOOK_SECRET:") and "\n" not in err
