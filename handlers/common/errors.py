"""When a handler fails anyway: log it without content and tell the person kindly.

The update's transaction was rolled back, so what the person had already
given (and committed) is kept; they are asked to try again. In webhook mode a
failure of the database connection is instead left to the webhook, which
answers 500 so that Telegram delivers the update again.
"""

from __future__ import annotations

import contextlib

from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent

from bot.logs import log_update_error
from storage.db import is_transient_failure

# Outside any request's language context, so in both languages.
TRY_AGAIN = (
    "Бубахшед, хатогӣ рух дод. Ҷавобҳои Шумо нигоҳ дошта шудаанд; лутфан, боз кӯшиш кунед.\n"
    "Извините, произошла ошибка. Ваши ответы сохранены; пожалуйста, попробуйте ещё раз."
)


async def on_error(event: ErrorEvent, redelivered_on_failure: bool = False) -> bool:
    if redelivered_on_failure and is_transient_failure(event.exception):
        # Webhook mode: the webhook answers 500 and Telegram delivers the update
        # again; nothing was committed, so the person need do nothing.
        raise event.exception
    await log_update_error(event)
    update = event.update
    with contextlib.suppress(TelegramAPIError):
        if update.callback_query is not None:
            await update.callback_query.answer(TRY_AGAIN[:200], show_alert=True)
        elif update.message is not None and update.message.chat.type == "private":
            await update.message.answer(TRY_AGAIN)
    return True
