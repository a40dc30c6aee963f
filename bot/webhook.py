"""Webhook mode: an aiohttp server that Telegram (or a reverse proxy) posts updates to.

The secret token Telegram sends in ``X-Telegram-Bot-Api-Secret-Token`` is
checked on every request (aiogram answers 401 on a mismatch); ``/healthz``
serves the orchestrator's health check.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.config import Settings

HEALTH_PATH = "/healthz"


def webhook_path(settings: Settings) -> str:
    return urlparse(settings.webhook_url or "").path or "/webhook"


def build_webhook_app(settings: Settings, bot: Bot, dispatcher: Dispatcher) -> web.Application:
    if settings.webhook_secret is None:
        raise ValueError("INTAKE_WEBHOOK_SECRET is required in webhook mode")
    app = web.Application()
    SimpleRequestHandler(
        dispatcher=dispatcher,
        bot=bot,
        secret_token=settings.webhook_secret.get_secret_value(),
    ).register(app, path=webhook_path(settings))

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get(HEALTH_PATH, health)
    setup_application(app, dispatcher, bot=bot)
    return app


async def serve_webhook(settings: Settings, bot: Bot, dispatcher: Dispatcher) -> None:
    app = build_webhook_app(settings, bot, dispatcher)
    assert settings.webhook_url is not None and settings.webhook_secret is not None
    await bot.set_webhook(
        settings.webhook_url,
        secret_token=settings.webhook_secret.get_secret_value(),
        allowed_updates=dispatcher.resolve_used_update_types(),
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.webhook_host, settings.webhook_port)
    await site.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
