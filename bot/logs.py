"""Logging without personal data.

Log lines carry update ids, case references and actions only. aiogram's own
loggers print user and chat ids at INFO level, so they are raised to WARNING,
and every message passes a scrubber that masks long digit runs (Telegram ids)
and bot tokens as a second line of defence.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import traceback
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import ErrorEvent, TelegramObject, Update

#: The update being handled, stamped on every log record as ``update=<id>``.
current_update: ContextVar[int | None] = ContextVar("current_update", default=None)

_TOKEN = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{20,}\b")
_LONG_NUMBER = re.compile(r"(?<![\w-])-?\d{6,}(?![\w-])")


def scrub(text: str) -> str:
    return _LONG_NUMBER.sub("[id]", _TOKEN.sub("[token]", text))


def describe_exception(exc: BaseException) -> str:
    """Type and code locations only: an exception's message may quote user input."""
    frames = traceback.extract_tb(exc.__traceback__)[-6:]
    where = " <- ".join(
        f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} {frame.name}"
        for frame in reversed(frames)
    )
    return f"{type(exc).__module__}.{type(exc).__qualname__} at {where or '?'}"


def _without_exception_text(record: logging.LogRecord) -> str:
    """The record's message with no exception's message or value in it.

    An exception passed as an argument (aiogram: "Cause exception ... %s: %s")
    is printed as its type; the text of the record's own exception is cut out
    wherever the message repeats it; asyncio's messages keep their first line
    only (the rest is the repr of a task or callback, and of what it raised).
    """
    args = record.args
    if isinstance(args, tuple):
        record.args = tuple(
            type(arg).__qualname__ if isinstance(arg, BaseException) else arg for arg in args
        )
    message = record.getMessage()
    if record.name == "asyncio":
        message = message.split("\n", 1)[0]
    exc = record.exc_info[1] if record.exc_info else None
    if exc is not None:
        for text in {str(exc), repr(exc)} - {""}:
            message = message.replace(text, "[exception text]")
    return message


def loop_exception_handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Replaces asyncio's handler, which prints the failed task and its exception's text."""
    what = str(context.get("message") or "unhandled error").split("\n", 1)[0]
    what = re.split(r"[\s]*[(<{\[:]", what, maxsplit=1)[0]
    exc = context.get("exception")
    logging.getLogger("intake.loop").error(
        "%s: %s", what, describe_exception(exc) if isinstance(exc, BaseException) else "-"
    )


class ScrubbingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(_without_exception_text(record))
        record.args = None
        record.update = current_update.get() or "-"
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = describe_exception(record.exc_info[1])
            record.exc_info = None
        return True


class UpdateLogMiddleware(BaseMiddleware):
    """Outermost: stamps the update id on log lines and logs each update's handling."""

    def __init__(self) -> None:
        self.log = logging.getLogger("intake.updates")

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        update_id = event.update_id if isinstance(event, Update) else None
        token = current_update.set(update_id)
        started = time.perf_counter()
        try:
            return await handler(event, data)
        finally:
            kind = event.event_type if isinstance(event, Update) else type(event).__name__
            self.log.debug("%s handled in %.1f ms", kind, (time.perf_counter() - started) * 1000)
            current_update.reset(token)


async def log_update_error(event: ErrorEvent) -> bool:
    """The dispatcher's error handler: log the failure by type and place only.

    Without it aiogram logs ``str(exception)``, which may quote what a person
    typed, and outside the update's context (``update=-``).
    """
    token = current_update.set(event.update.update_id)
    try:
        logging.getLogger("intake.errors").error(
            "update failed: %s", describe_exception(event.exception)
        )
    finally:
        current_update.reset(token)
    return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s update=%(update)s %(message)s")
    )
    handler.addFilter(ScrubbingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in (
        "aiosqlite",  # logs every SQL statement with its parameters at DEBUG
        "aiogram.event",
        "aiogram.dispatcher",
        "sqlalchemy.engine",
        "aiohttp.access",
        "alembic",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
