"""The session the bot talks to the Bot API through: aiogram's, made cheaper.

* calls are posted as JSON documents, not forms (``json_body``);
* Telegram's answers and updates are parsed without the inline keyboards they
  echo back (``drop_keyboards``): nothing reads a keyboard back, and each of its
  buttons would be a pydantic model built per update;
* aiogram's parametrised response models are kept alive (``BotApiSession``);
* in webhook mode an update's first answer to a button press is held for the
  webhook's response (``bot/webhook_reply.py``).

Each of these is measured in docs/performance.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, cast

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramBadRequest, TelegramNetworkError
from aiogram.methods import AnswerCallbackQuery
from aiogram.methods.base import Response, TelegramMethod, TelegramType
from aiogram.types import InputFile
from aiohttp import ClientError, ClientTimeout

from bot.webhook_reply import held_answer

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
