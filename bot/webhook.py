"""Webhook mode: an aiohttp server that Telegram (or a reverse proxy) posts updates to.

Every request must carry the secret token in ``X-Telegram-Bot-Api-Secret-Token``;
anything else, whatever its bytes, is a 401. At most ``UPDATE_CONCURRENCY``
updates are handled at once, as in polling mode (unbounded update tasks lost
reports, docs/performance.md), and Telegram is asked for no more connections
than that. The answer comes after the update's transaction has committed; when
handling failed with the database (a dropped connection, a restart) it is a
500, and Telegram delivers the update again (no update is lost to a crash or a
fault; deduplication makes the redelivery harmless). The update's first
answer to a button press travels in the response body rather than as a call
of its own (``bot/webhook_reply.py``). A body that is not an
update is a 400, logged by its type of error only: validation errors quote the
input, which may be a person's words.
``/healthz`` serves the orchestrator's health check.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from urllib.parse import urlparse

from aiogram import Bot, Dispatcher
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import setup_application
from aiohttp import web
from pydantic import ValidationError

from bot.config import UPDATE_CONCURRENCY, Settings
from bot.logs import current_update, describe_exception
from bot.webhook_reply import holding_answer, response_body

HEALTH_PATH = "/healthz"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name

log = logging.getLogger("intake.webhook")


def webhook_path(settings: Settings) -> str:
    return urlparse(settings.webhook_url or "").path or "/webhook"


class UpdateEndpoint:
    """The POST handler: check the secret, parse the update, handle it within the limit."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        bot: Bot,
        secret: str,
        concurrency: int = UPDATE_CONCURRENCY,
        *,
        answer_in_response: bool = True,
    ) -> None:
        self.dispatcher = dispatcher
        self.bot = bot
        self.answer_in_response = answer_in_response
        self._secret = secret.encode("utf-8")
        self._slots = asyncio.Semaphore(concurrency)

    def authorised(self, request: web.Request) -> bool:
        # Bytes, compared in constant time: comparing str raises on non-ASCII text,
        # which was a 500 and an ERROR line. "replace" makes "?", which no secret has.
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        return hmac.compare_digest(given, self._secret)

    async def handle(self, request: web.Request) -> web.Response:
        if not self.authorised(request):
            return web.Response(status=401, text="Unauthorized")
        try:
            # The session's parser drops the keyboards Telegram echoes back, as
            # for every Bot API answer (bot/api_session.py).
            body = self.bot.session.json_loads(await request.read())
            update = Update.model_validate(body, context={"bot": self.bot})
        except ValidationError as exc:
            log.warning("refused a body that is not an update: %d errors", exc.error_count())
            return web.Response(status=400, text="Bad Request")
        except ValueError:  # not JSON at all
            log.warning("refused a body that is not JSON")
            return web.Response(status=400, text="Bad Request")
        async with self._slots:
            with holding_answer(self.answer_in_response) as held:
                handled = await self._feed(update)
        if not handled:
            # What the failed attempt held is dropped: the redelivery answers.
            return web.Response(status=500, text="Internal Server Error")
        answer = None if held is None else held.method
        return web.json_response({} if answer is None else response_body(answer))

    async def _feed(self, update: Update) -> bool:
        """Handle the update; True once its transaction has committed (or it was dropped)."""
        token = current_update.set(update.update_id)
        try:
            result = await self.dispatcher.feed_update(
                self.bot, update, redelivered_on_failure=True
            )
            if isinstance(result, TelegramMethod):
                # Through the session: an answer to the press is held like any other.
                await self.dispatcher.silent_call_request(self.bot, result)
        except Exception as exc:  # Telegram will deliver it again
            log.warning("update failed, to be delivered again: %s", describe_exception(exc))
            return False
        finally:
            current_update.reset(token)
        return True


def build_webhook_app(
    settings: Settings, bot: Bot, dispatcher: Dispatcher, *, answer_in_response: bool = True
) -> web.Application:
    """``answer_in_response=False``: every answer to a press is a call (a baseline)."""
    if settings.webhook_secret is None:
        raise ValueError("INTAKE_WEBHOOK_SECRET is required in webhook mode")
    endpoint = UpdateEndpoint(
        dispatcher,
        bot,
        settings.webhook_secret.get_secret_value(),
        answer_in_response=answer_in_response,
    )
    app = web.Application()
    app.router.add_post(webhook_path(settings), endpoint.handle)

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get(HEALTH_PATH, health)
    setup_application(app, dispatcher, bot=bot)  # the dispatcher's startup and shutdown
    return app


async def serve_webhook(settings: Settings, bot: Bot, dispatcher: Dispatcher) -> None:
    app = build_webhook_app(settings, bot, dispatcher)
    assert settings.webhook_url is not None and settings.webhook_secret is not None
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.webhook_host, settings.webhook_port)
    await site.start()
    try:
        # Listening first: Telegram may deliver as soon as the webhook is set.
        await bot.set_webhook(
            settings.webhook_url,
            secret_token=settings.webhook_secret.get_secret_value(),
            allowed_updates=dispatcher.resolve_used_update_types(),
            max_connections=settings.webhook_max_connections,
        )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
