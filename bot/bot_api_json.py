"""Bot API answers parsed without the keyboards they echo back.

Telegram returns every sent or edited message, and delivers every button
press, with the message's whole inline keyboard. aiogram turns each button of
it into a pydantic model (a Python call per object, for its private
attributes): for a question with twenty choices, most of the objects built
per update. Nothing in the bot reads a keyboard back from Telegram (it always
knows what it showed), so the keyboards are dropped before validation
(docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

JsonLoads = Callable[..., Any]

#: Where a message sits in a Bot API result or in an update.
_MESSAGE_KEYS = ("message", "edited_message", "channel_post", "edited_channel_post")


def drop_keyboards(value: Any) -> Any:
    """``value`` (a parsed Bot API answer or update) without messages' ``reply_markup``."""
    if isinstance(value, dict):
        if "result" in value:
            drop_keyboards(value["result"])
        _drop_from_message(value)
        for key in _MESSAGE_KEYS:
            _drop_from_message(value.get(key))
        query = value.get("callback_query")
        if isinstance(query, dict):
            _drop_from_message(query.get("message"))
    elif isinstance(value, list):
        for item in value:
            drop_keyboards(item)
    return value


def _drop_from_message(message: Any) -> None:
    if isinstance(message, dict) and "message_id" in message:
        message.pop("reply_markup", None)


def loads_without_keyboards(loads: JsonLoads) -> JsonLoads:
    def parse(content: Any, *args: Any, **kwargs: Any) -> Any:
        return drop_keyboards(loads(content, *args, **kwargs))

    return parse
