"""Factories: the Bot, the Dispatcher and everything handed to handlers."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from datetime import datetime, timedelta

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.api_session import BotApiSession, loads_without_keyboards
from bot.background import BackgroundTasks, CommandMenus
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
from bot.staff_lock.pin import PinHasher
from handlers import build_root_router
from handlers.common.errors import on_error
from handlers.reporter.menu import set_default_commands
from handlers.staff.menu import set_staff_commands
from storage.crypto import KeyRing
from storage.fsm import EncryptedFSMStorage
from storage.models import utcnow


def create_bot(settings: Settings) -> Bot:
    if settings.bot_token is None:
        raise ValueError("INTAKE_BOT_TOKEN is not set")
    session = BotApiSession(
        api=TelegramAPIServer.from_base(settings.telegram_api_url),
        json_loads=loads_without_keyboards(json.loads),
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
