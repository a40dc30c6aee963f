"""Logging without personal data.

Log lines carry update ids, case references and actions only. aiogram's own
loggers print user and chat ids at INFO level, so they are raised to WARNING,
and every message passes a scrubber that masks long digit runs (Telegram ids)
and bot tokens as a second line of defence.
"""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{20,}\b")
_LONG_NUMBER = re.compile(r"(?<![\w-])-?\d{6,}(?![\w-])")


def scrub(text: str) -> str:
    return _LONG_NUMBER.sub("[id]", _TOKEN.sub("[token]", text))


class ScrubbingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.exc_text = f"{type(exc).__name__}: {scrub(str(exc))}"
            record.exc_info = None
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(ScrubbingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in (
        "aiogram.event",
        "aiogram.dispatcher",
        "sqlalchemy.engine",
        "aiohttp.access",
        "alembic",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
