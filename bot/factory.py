"""Factories: the Bot, the Dispatcher and everything handed to handlers."""

from __future__ import annotations

import gc
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar, cast

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramBadRequest, TelegramNetworkError
from aiogram.methods import AnswerCallbackQuery
from aiogram.methods.base import Response, TelegramMethod, TelegramType
from aiogram.types import InputFile
from aiohttp import ClientError, ClientTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.background import BackgroundTasks, CommandMenus
from bot.bot_api_json import loads_without_keyboards
from bot.config import Settings
from bot.flood import FloodControl, UpdateDeduplicator
from bot.i18n import CatalogueI18n, UserLanguageMiddleware, create_i18n
from bot.logs import UpdateLogMiddleware
from bot.middlewares import ChatSerializer, DatabaseMiddleware, UserMiddleware
from bot.outbox import OutboxPolicy
from bot.replicas import (
    SharedChatLock,
    SharedDeduplicator,
    SharedFloodControl,
    UpdateConnection,
)
from bot.speedups import json_codec
from bot.staff_lock.pin import PinHasher
from bot.webhook_reply import held_answer
from handlers import build_root_router
from handlers.common.errors import on_error
from handlers.reporter.menu import set_default_commands
from handlers.staff.menu import set_staff_commands
from storage.crypto import KeyRing
from storage.fsm import EncryptedFSMStorage
from storage.models import utcnow

_JSON_CONTENT = {"Content-Type": "application/json"}


class BotApiSession(AiohttpSession):
    """aiohttp session that keeps aiogram's parametrised response models alive.

    aiogram validates every Bot API answer with ``Response[method.__returning__]``.
    Pydantic caches parametrised generic models only through weak references, so
    the class dies between calls and is rebuilt (10-30 ms of CPU for
    ``Response[Message]``) for about one call in three: the largest single cost
    of an update in the benchmarks (docs/performance.md). Holding one strong
    reference per return type, for the life of the process, makes each lookup a
    cache hit; there are a few dozen return types at most.

    In webhook mode the update's first answer to a button press is not sent but
    held for the webhook's response (``bot/webhook_reply.py``).
    """

    _response_models: ClassVar[dict[Any, Any]] = {}

    def check_response(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        status_code: int,
        content: str,
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in self._response_models:
            self._response_models[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)

    def json_body(self, bot: Bot, method: TelegramMethod[TelegramType]) -> bytes | None:
        """The method's parameters as one JSON document, or None when it uploads a file.

        aiogram posts every call as a form, and percent-encoding each byte of a
        Cyrillic text took about a tenth of the bot's CPU (docs/performance.md);
        the Bot API takes JSON as well. Values are prepared as aiogram prepares
        them for a form (defaults filled in, None and empty strings left out).
        """
        files: dict[str, InputFile] = {}
        params: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is not None and prepared != "":
                params[key] = prepared
        if files:
            return None
        return self.json_dumps(params).encode()

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 - aiogram's signature
    ) -> TelegramType:
        if isinstance(method, AnswerCallbackQuery) and (held := held_answer()) is not None:
            if held.take(method):
                return True  # type: ignore[return-value]
            earlier = held.release()
            if earlier is not None:  # Telegram shows the first to arrive: it goes first
                await self._send(bot, earlier, timeout)
        return await self._send(bot, method, timeout)

    async def _send(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None,  # noqa: ASYNC109 - aiogram's
    ) -> TelegramType:
        try:
            body = self.json_body(bot, method)
            if body is None:
                return await super().make_request(bot, method, timeout)
            return await self._post_json(bot, method, body, timeout)
        except TelegramBadRequest:
            if not isinstance(method, AnswerCallbackQuery):
                raise
            # Answered already (the update is handled again after a failure that
            # rolled it back) or too late: the press itself is handled all the same.
            return True  # type: ignore[return-value]

    async def _post_json(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        body: bytes,
        timeout: int | None,  # noqa: ASYNC109 - aiogram's signature
    ) -> TelegramType:
        """``AiohttpSession.make_request`` with a JSON body instead of a form."""
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(
                url,
                data=body,
                headers=_JSON_CONTENT,
                timeout=ClientTimeout(total=self.timeout if timeout is None else timeout),
            ) as response:
                content = await response.text()
        except TimeoutError as exc:
            raise TelegramNetworkError(method=method, message="Request timeout error") from exc
        except ClientError as exc:
            # The class only: aiohttp's message may quote the URL, which holds the token.
            raise TelegramNetworkError(method=method, message=type(exc).__name__) from exc
        checked = self.check_response(
            bot=bot, method=method, status_code=response.status, content=content
        )
        return cast(TelegramType, checked.result)


def create_bot(settings: Settings) -> Bot:
    if settings.bot_token is None:
        raise ValueError("INTAKE_BOT_TOKEN is not set")
    loads, dumps = json_codec(settings.json_codec)
    session = BotApiSession(
        api=TelegramAPIServer.from_base(settings.telegram_api_url),
        json_loads=loads_without_keyboards(loads),
        json_dumps=dumps,
    )
    # protect_content on everything: what the bot shows cannot be forwarded
    # or saved from the official apps (a camera still can).
    return Bot(
        token=settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(protect_content=True, link_preview_is_disabled=True),
    )


def freeze_startup_objects() -> None:
    """Keep what the started bot holds for good out of the collector's full passes.

    After start-up the process holds about 250,000 long-lived objects
    (aiogram's pydantic models, SQLAlchemy's mappers, the catalogues). A full
    collection walks them all: about 150 ms here, a pause that every update in
    flight waits for, and the tail of the latency figures (docs/performance.md).
    Frozen, they are never walked again.
    """
    gc.collect()
    gc.freeze()


def create_dispatcher(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: KeyRing,
    *,
    i18n: CatalogueI18n | None = None,
    outbox_policy: OutboxPolicy | None = None,
    pin_hasher: PinHasher | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Dispatcher:
    """``pin_hasher`` and ``clock`` are for tests (a cheaper scrypt, a clock they move)."""
    storage = EncryptedFSMStorage(
        sessionmaker, keyring, ttl=timedelta(seconds=settings.draft_ttl_seconds)
    )
    # aiogram's FSM middleware is registered by hand, inside the update's
    # transaction; ChatSerializer (one process, SQLite) or the chat's advisory
    # lock (replicas, PostgreSQL) does the per-chat isolation it would have done.
    dispatcher = Dispatcher(storage=storage, disable_fsm=True)
    i18n = i18n or create_i18n()
    shared = settings.database_url.startswith("postgresql")
    dispatcher.update.outer_middleware(UpdateLogMiddleware())
    if shared:
        engine = sessionmaker.kw["bind"]
        dispatcher.update.outer_middleware(UpdateConnection(engine))
        dispatcher.update.outer_middleware(
            SharedFloodControl(engine, keyring, settings.rate_limit, settings.rate_window_seconds)
        )
        dispatcher.update.outer_middleware(SharedChatLock(keyring))
    else:
        dispatcher.update.outer_middleware(UpdateDeduplicator())
        dispatcher.update.outer_middleware(
            FloodControl(settings.rate_limit, settings.rate_window_seconds)
        )
        dispatcher.update.outer_middleware(ChatSerializer())
    dispatcher.update.outer_middleware(
        DatabaseMiddleware(
            sessionmaker,
            keyring,
            self_assign=settings.self_assign,
            retention_days=settings.retention_days,
        )
    )
    if shared:
        dispatcher.update.outer_middleware(SharedDeduplicator())
    dispatcher.update.outer_middleware(dispatcher.fsm)
    dispatcher.update.outer_middleware(UserMiddleware())
    UserLanguageMiddleware(i18n).setup(dispatcher)
    dispatcher.errors.register(on_error)

    background = BackgroundTasks(
        settings,
        sessionmaker,
        keyring,
        i18n,
        storage,
        CommandMenus(set_default=set_default_commands, set_staff=set_staff_commands),
        outbox_policy,
        clock=clock,
    )
    dispatcher.startup.register(background.on_startup)
    dispatcher.startup.register(freeze_startup_objects)
    dispatcher.shutdown.register(background.on_shutdown)
    dispatcher.shutdown.register(gc.unfreeze)

    dispatcher["background"] = background
    dispatcher["i18n_core"] = i18n
    dispatcher["settings"] = settings
    dispatcher["keyring"] = keyring
    dispatcher["sessionmaker"] = sessionmaker
    dispatcher["fsm_storage"] = storage
    dispatcher["pin_hasher"] = pin_hasher or PinHasher()
    dispatcher["staff_clock"] = clock
    dispatcher.include_router(build_root_router())
    return dispatcher
