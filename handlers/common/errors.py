"""When a handler fails anyway: log it without content and tell the person kindly.

The update's transaction was rolled back, so what the person had already
given (and committed) is kept; they are asked to try again. In webhook mode a
passing failure (the database connection, a 5xx or 429 from the Bot API) is
instead left to the webhook, which answers 500 so that Telegram delivers the
update again.
"""

from __future__ import annotations

import contextlib

from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import ErrorEvent

from bot.logs import log_update_error
from bot.webhook_reply import discard_held_answer
from storage.db import is_transient_failure

# Outside any request's language context, so in both languages.
TRY_AGAIN = (
    "Бубахшед, хатогӣ рух дод. Ҷавобҳои Шумо нигоҳ дошта шудаанд; лутфан, боз кӯшиш кунед.\n"
    "Извините, произошла ошибка. Ваши ответы сохранены; пожалуйста, попробуйте ещё раз."
)


def worth_redelivering(exc: BaseException) -> bool:
    """The database or the Bot API failed for a while, not the handler's logic."""
    passing = (TelegramServerError, TelegramRetryAfter, TelegramNetworkError)
    return isinstance(exc, passing) or is_transient_failure(exc)


async def on_error(event: ErrorEvent, redelivered_on_failure: bool = False) -> bool:
    if redelivered_on_failure and worth_redelivering(event.exception):
        # Webhook mode: the webhook answers 500 and Telegram delivers the update
        # again (later, for a 429); nothing was committed, so the person need do
        # nothing. What the failed attempt had sent may show twice.
        raise event.exception
    await log_update_error(event)
    # Webhook mode: an answer the failed handler gave is still held, unsent; it
    # told of work that was rolled back, so this one goes in the response instead.
    discard_held_answer()
    update = event.update
    with contextlib.suppress(TelegramAPIError):
        if update.callback_query is not None:
            await update.callback_query.answer(TRY_AGAIN[:200], show_alert=True)
        elif update.message is not None and update.message.chat.type == "private":
            await update.message.answer(TRY_AGAIN)
    return True
