"""In-process fake Telegram Bot API server: lifecycle, HTTP routing, faults.

The real :class:`aiogram.Bot` talks to it over real HTTP::

    async with FakeTelegramServer(token=TOKEN) as server:
        session = AiohttpSession(api=TelegramAPIServer.from_base(server.url))
        bot = Bot(TOKEN, session=session)

The state lives in :mod:`devkit.emulator.state`; each Bot API area has a module of its
own (messages, callbacks, files, commands, updates) whose methods this server routes to.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Self, get_args

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import hdrs, web

from devkit.emulator.callbacks import CallbackMethods
from devkit.emulator.commands import CommandMethods
from devkit.emulator.files import FileMethods
from devkit.emulator.messages import MessageMethods
from devkit.emulator.params import Handler, Params, decode_params, read_multipart
from devkit.emulator.records import ApiError, FaultKind, JsonDict, RecordedCall, bad_request
from devkit.emulator.updates import UpdateMethods

MAX_UPLOAD_SIZE: Final = 50 * 1024 * 1024
SECRET_TOKEN_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105


@dataclass(slots=True)
class _Fault:
    kind: FaultKind
    remaining: int
    retry_after: int
    delay: float


class EmulatorSession(AiohttpSession):
    """aiogram session pointed at a fake server; closes without the 250 ms SSL grace sleep."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(api=TelegramAPIServer.from_base(base_url), **kwargs)

    async def close(self) -> None:
        session = self._session
        if session is not None and not session.closed:
            await session.close()


class FakeTelegramServer(
    MessageMethods, CallbackMethods, FileMethods, CommandMethods, UpdateMethods
):
    """A fake Telegram Bot API server running inside the test's event loop."""

    def __init__(
        self,
        token: str = "123456:TEST-token",  # noqa: S107
        *,
        bot_username: str = "intake_test_bot",
        bot_name: str = "Intake Test Bot",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
        record_calls: bool = True,
        strict_html: bool = True,
    ) -> None:
        bot_id_text, sep, _ = token.partition(":")
        if not sep or not bot_id_text.isdigit():
            msg = f"token must look like '<digits>:<secret>', got {token!r}"
            raise ValueError(msg)
        self.token = token
        self.bot_id = int(bot_id_text)
        self.bot_username = bot_username
        self.bot_name = bot_name
        self.host = host
        self.port = port
        super().__init__(
            bot_user={
                "id": self.bot_id,
                "is_bot": True,
                "first_name": bot_name,
                "username": bot_username,
            },
            clock=clock,
            record_calls=record_calls,
            strict_html=strict_html,
        )
        self._faults: dict[str, deque[_Fault]] = {}
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._client: aiohttp.ClientSession | None = None

        self._methods: dict[str, tuple[str, Handler]] = {}
        self._register_methods()

    @property
    def url(self) -> str:
        """Base URL for ``TelegramAPIServer.from_base``."""
        if self._url is None:
            msg = "FakeTelegramServer is not started"
            raise RuntimeError(msg)
        return self._url

    @property
    def running(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        if self._runner is not None:
            return
        self._closing.clear()
        app = web.Application(client_max_size=MAX_UPLOAD_SIZE + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_download)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self._url = f"http://{self.host}:{address[1]}"

    async def stop(self) -> None:
        self._closing.set()
        self._update_event.set()
        self._notify()
        if self._client is not None:
            await self._client.close()
            self._client = None
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._url = None

    def make_bot(self, token: str | None = None, **bot_kwargs: Any) -> Bot:
        """A real aiogram Bot talking to this server (caller closes ``bot.session``)."""
        return Bot(token or self.token, session=EmulatorSession(self.url), **bot_kwargs)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def inject_fault(
        self,
        method: str,
        kind: FaultKind,
        times: int = 1,
        retry_after: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``times`` calls of ``method`` ("*" = any but getUpdates) fail/slow."""
        if kind not in get_args(FaultKind):
            msg = f"unknown fault kind {kind!r}; expected one of {get_args(FaultKind)}"
            raise ValueError(msg)
        if times < 1:
            msg = "times must be >= 1"
            raise ValueError(msg)
        key = method.lower()
        if key != "*" and key not in self._methods:
            msg = f"unknown Bot API method {method!r}"
            raise ValueError(msg)
        self._faults.setdefault(key, deque()).append(
            _Fault(kind=kind, remaining=times, retry_after=retry_after, delay=delay)
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    def _take_fault(self, key: str) -> _Fault | None:
        for fault_key in (key, "*"):
            if fault_key == "*" and key == "getupdates":
                continue
            queue = self._faults.get(fault_key)
            if not queue:
                continue
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.popleft()
            return fault
        return None

    async def deliver_webhook(
        self,
        update: JsonDict,
        *,
        secret_token: str | None = None,
        execute_reply: bool = True,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> int:
        """POST an update to the webhook URL; returns the HTTP status.

        ``secret_token`` overrides the header value (to test rejection). When the bot
        answers with a method in the response body (aiogram's webhook reply), that
        method is executed like a normal call, as Telegram does.
        """
        if not self.webhook.url:
            msg = "no webhook is set; the bot must call setWebhook first"
            raise RuntimeError(msg)
        _, stored = self._prepare_update(update)
        headers: dict[str, str] = {hdrs.CONTENT_TYPE: "application/json"}
        header_value = secret_token if secret_token is not None else self.webhook.secret_token
        if header_value is not None:
            headers[SECRET_TOKEN_HEADER] = header_value
        if self._client is None or self._client.closed:
            self._client = aiohttp.ClientSession()
        try:
            async with self._client.post(
                self.webhook.url,
                data=json.dumps(stored),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                status = response.status
                if status != 200:
                    self.webhook.last_error_date = int(self.now())
                    self.webhook.last_error_message = f"Wrong response from the webhook: {status}"
                elif execute_reply:
                    await self._execute_webhook_reply(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.webhook.last_error_date = int(self.now())
            self.webhook.last_error_message = f"Connection failed: {exc}"
            raise
        return status

    async def _execute_webhook_reply(self, response: aiohttp.ClientResponse) -> None:
        raw: JsonDict
        if response.content_type == "multipart/form-data":
            raw = await read_multipart(aiohttp.MultipartReader(response.headers, response.content))
        elif response.content_type == "application/json":
            body = await response.json()
            raw = body if isinstance(body, dict) else {}
        else:
            return
        method = raw.pop("method", None)
        if not isinstance(method, str):
            return
        entry = self._methods.get(method.lower())
        if entry is None:
            return
        name, handler = entry
        # Telegram sends the webhook no result: an error here is recorded, nothing more.
        await self._execute(name, handler, decode_params(raw), self.now(), webhook_reply=True)

    @staticmethod
    def _json(payload: JsonDict, status: int = 200) -> web.Response:
        return web.json_response(payload, status=status)

    async def _read_request_params(self, request: web.Request) -> JsonDict:
        raw: JsonDict = dict(request.query)
        if request.content_type == "multipart/form-data":
            raw.update(await read_multipart(await request.multipart()))
        elif request.content_type == "application/x-www-form-urlencoded":
            form = await request.post()
            raw.update({key: value for key, value in form.items() if isinstance(value, str)})
        elif request.content_type == "application/json" and request.can_read_body:
            body = await request.json()
            if not isinstance(body, dict):
                raise bad_request("request body must be a JSON object")
            raw.update(body)
        return raw

    async def _handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._json(ApiError(401, "Unauthorized").payload(), 401)
        entry = self._methods.get(request.match_info["method"].lower())
        if entry is None:
            return self._json(ApiError(404, "Not Found").payload(), 404)
        name, handler = entry
        at = self.now()
        try:
            params = decode_params(await self._read_request_params(request))
        except ApiError as exc:
            return self._json(exc.payload(), exc.code)
        except (ValueError, aiohttp.ClientError) as exc:
            error = bad_request(f"can't parse request: {exc}")
            return self._json(error.payload(), error.code)
        status, payload = await self._execute(name, handler, params, at)
        return self._json(payload, status)

    async def _execute(
        self,
        name: str,
        handler: Handler,
        params: JsonDict,
        at: float,
        *,
        webhook_reply: bool = False,
    ) -> tuple[int, JsonDict]:
        fault = self._take_fault(name.lower())
        status = 200
        payload: JsonDict
        try:
            if fault is not None:
                if fault.kind == "slow":
                    await self._sleep(fault.delay)
                elif fault.kind == "retry_after":
                    raise ApiError(
                        429,
                        f"Too Many Requests: retry after {fault.retry_after}",
                        retry_after=fault.retry_after,
                    )
                else:
                    raise ApiError(500, "Internal Server Error")
            payload = {"ok": True, "result": await handler(Params(params))}
        except ApiError as exc:
            status = exc.code
            payload = exc.payload()
        if self.record_calls:
            call = RecordedCall(
                method=name,
                params=params,
                at=at,
                chat_id=self._call_chat_id(params),
                ok=status == 200,
                error=None if status == 200 else str(payload.get("description")),
                fault=None if fault is None else fault.kind,
                webhook_reply=webhook_reply,
            )
            self.calls.append(call)
            self._calls_by_method.setdefault(name.lower(), []).append(call)
        self._notify()
        return status, payload

    def _call_chat_id(self, params: JsonDict) -> int | None:
        chat_id = params.get("chat_id")
        if isinstance(chat_id, int) and not isinstance(chat_id, bool):
            return chat_id
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            return self._chats_by_username.get(chat_id[1:].lower())
        callback_id = params.get("callback_query_id")
        if isinstance(callback_id, str):
            state = self._callback_queries.get(callback_id)
            if state is not None:
                return state.user_id
        return None

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), delay)

    async def _handle_download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._json(ApiError(401, "Unauthorized").payload(), 401)
        file_path = request.match_info["file_path"]
        record = self._files_by_path.get(file_path)
        if record is None:
            return self._json(ApiError(404, "Not Found").payload(), 404)
        self.downloads.append(file_path)
        return web.Response(
            body=record.data, content_type=record.mime_type or "application/octet-stream"
        )

    def _register_methods(self) -> None:
        table: dict[str, Handler] = {
            "getMe": self._m_get_me,
            "getUpdates": self._m_get_updates,
            "sendMessage": self._m_send_message,
            "editMessageText": self._m_edit_message_text,
            "editMessageCaption": self._m_edit_message_caption,
            "editMessageReplyMarkup": self._m_edit_message_reply_markup,
            "answerCallbackQuery": self._m_answer_callback_query,
            "deleteMessage": self._m_delete_message,
            "deleteMessages": self._m_delete_messages,
            "setMyCommands": self._m_set_my_commands,
            "deleteMyCommands": self._m_delete_my_commands,
            "getMyCommands": self._m_get_my_commands,
            "sendDocument": self._media_sender("document", "documents"),
            "sendPhoto": self._media_sender("photo", "photos"),
            "sendVoice": self._media_sender("voice", "voice"),
            "sendAudio": self._media_sender("audio", "music"),
            "sendVideo": self._media_sender("video", "videos"),
            "sendSticker": self._media_sender("sticker", "stickers"),
            "sendChatAction": self._m_send_chat_action,
            "getFile": self._m_get_file,
            "setWebhook": self._m_set_webhook,
            "deleteWebhook": self._m_delete_webhook,
            "getWebhookInfo": self._m_get_webhook_info,
            "close": self._m_true,
            "logOut": self._m_true,
            "setMyDescription": self._description_setter("description"),
            "setMyShortDescription": self._description_setter("short_description"),
            "setMyName": self._description_setter("name"),
            "setChatMenuButton": self._m_true,
        }
        self._methods = {name.lower(): (name, handler) for name, handler in table.items()}

    async def _m_true(self, params: Params) -> Any:
        return True
