"""In-process fake Telegram Bot API server.

The real :class:`aiogram.Bot` talks to it over real HTTP::

    async with FakeTelegramServer(token=TOKEN) as server:
        session = AiohttpSession(api=TelegramAPIServer.from_base(server.url))
        bot = Bot(TOKEN, session=session)

State is kept per private chat (``chat_id == user_id``) in ordered dicts keyed by
message id, so every API call does O(1)-ish work even with thousands of chats.
Error answers use the descriptions of the real Bot API so that aiogram raises the
same exception classes as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import mimetypes
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Final, Literal, Self, get_args

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiohttp import hdrs, web

JsonDict = dict[str, Any]
FaultKind = Literal["retry_after", "server_error", "slow"]

DELETE_WINDOW_SECONDS: Final = 48 * 3600
MAX_TEXT_LENGTH: Final = 4096
MAX_CAPTION_LENGTH: Final = 1024
MAX_CALLBACK_DATA_BYTES: Final = 64
MAX_CALLBACK_ALERT_LENGTH: Final = 200
MAX_DOWNLOAD_SIZE: Final = 20 * 1024 * 1024
MAX_UPLOAD_SIZE: Final = 50 * 1024 * 1024
SECRET_TOKEN_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105

NOT_MODIFIED: Final = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
CALLBACK_QUERY_INVALID: Final = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
WEBHOOK_CONFLICT: Final = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)

# Parameters that aiogram serialises as JSON strings inside multipart/urlencoded forms.
_JSON_FIELDS: Final = frozenset(
    {
        "reply_markup",
        "message_ids",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "allowed_updates",
        "link_preview_options",
        "reply_parameters",
        "media",
        "menu_button",
        "results",
    }
)
_INT_FIELDS: Final = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "from_chat_id",
        "duration",
        "width",
        "height",
        "cache_time",
        "max_connections",
        "message_thread_id",
        "user_id",
        "reply_to_message_id",
    }
)
_BOOL_FIELDS: Final = frozenset(
    {
        "protect_content",
        "disable_notification",
        "show_alert",
        "drop_pending_updates",
        "disable_web_page_preview",
        "allow_sending_without_reply",
        "has_spoiler",
        "disable_content_type_detection",
        "allow_paid_broadcast",
        "show_caption_above_media",
        "supports_streaming",
    }
)
_INLINE_BUTTON_ACTIONS: Final = frozenset(
    {
        "callback_data",
        "url",
        "login_url",
        "switch_inline_query",
        "switch_inline_query_current_chat",
        "switch_inline_query_chosen_chat",
        "callback_game",
        "pay",
        "web_app",
        "copy_text",
    }
)
_HTML_TAGS: Final = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
        "tg-time",
    }
)
_COMMAND_RE: Final = re.compile(r"^[a-z0-9_]{1,32}$")
_SECRET_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_FOLDER_EXT: Final = {
    "photos": ".jpg",
    "voice": ".oga",
    "stickers": ".webp",
    "videos": ".mp4",
    "music": ".mp3",
    "documents": "",
}


# --------------------------------------------------------------------------- records


@dataclass(slots=True)
class UploadedFile:
    """A multipart file part of a request (``params[...]`` of a :class:`RecordedCall`)."""

    field_name: str
    filename: str | None
    content_type: str | None
    data: bytes = field(repr=False)


@dataclass(slots=True)
class FileRecord:
    """A stored file, downloadable at ``/file/bot{token}/{file_path}``."""

    file_id: str
    file_unique_id: str
    size: int
    data: bytes = field(repr=False)
    mime_type: str | None = None
    file_name: str | None = None
    file_path: str = ""

    def as_file_dict(self, **extra: Any) -> JsonDict:
        """Telegram ``file_id``/``file_unique_id``/``file_size`` dict plus non-None extras."""
        result: JsonDict = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.size,
        }
        result.update({key: value for key, value in extra.items() if value is not None})
        return result


@dataclass(slots=True)
class ChatMessage:
    """One message of a private chat, sent by the user or by the bot."""

    message_id: int
    chat_id: int
    from_bot: bool
    date: int
    sent_at: float
    kind: str = "text"
    text: str | None = None
    caption: str | None = None
    entities: list[JsonDict] | None = None
    parse_mode: str | None = None
    reply_markup: JsonDict | None = None
    protect_content: bool = False
    media: JsonDict = field(default_factory=dict)
    deleted: bool = False
    deleted_at: float | None = None
    edit_date: int | None = None

    @property
    def body(self) -> str | None:
        """The text, or the caption of a media message."""
        return self.text if self.text is not None else self.caption

    @property
    def plain_text(self) -> str | None:
        """:attr:`body` with HTML markup removed when ``parse_mode`` is HTML."""
        body = self.body
        if body is None or (self.parse_mode or "").lower() != "html":
            return body
        return html_to_plain(body)

    @property
    def inline_keyboard(self) -> list[list[JsonDict]]:
        if self.reply_markup is None:
            return []
        rows = self.reply_markup.get("inline_keyboard")
        return rows if isinstance(rows, list) else []

    @property
    def button_labels(self) -> list[list[str]]:
        """Labels of the inline keyboard (or of a reply keyboard sent with this message)."""
        if self.reply_markup is None:
            return []
        rows = self.reply_markup.get("inline_keyboard") or self.reply_markup.get("keyboard")
        if not isinstance(rows, list):
            return []
        return [[button_label(button) for button in row] for row in rows]

    def find_button(self, label: str) -> JsonDict | None:
        """The inline button whose text is exactly ``label``."""
        for row in self.inline_keyboard:
            for button in row:
                if button.get("text") == label:
                    return button
        return None

    @property
    def file_id(self) -> str | None:
        """file_id of the attached media (largest photo size for photos)."""
        value = self.media.get(self.kind)
        if isinstance(value, list) and value:
            value = value[-1]
        if isinstance(value, dict):
            file_id = value.get("file_id")
            return file_id if isinstance(file_id, str) else None
        return None


@dataclass(slots=True)
class CallbackAnswer:
    """An ``answerCallbackQuery`` call."""

    callback_query_id: str
    user_id: int
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None
    at: float


@dataclass(slots=True)
class ChatState:
    """A private chat: the user, its messages (ordered by id) and per-chat UI state."""

    chat_id: int
    user: JsonDict
    messages: dict[int, ChatMessage] = field(default_factory=dict)
    next_message_id: int = 1
    blocked: bool = False
    reply_keyboard: JsonDict | None = None
    callback_answers: list[CallbackAnswer] = field(default_factory=list)
    chat_actions: list[str] = field(default_factory=list)

    def chat_dict(self) -> JsonDict:
        result: JsonDict = {
            "id": self.chat_id,
            "type": "private",
            "first_name": self.user.get("first_name", ""),
        }
        for key in ("last_name", "username"):
            if self.user.get(key):
                result[key] = self.user[key]
        return result

    def visible(self) -> list[ChatMessage]:
        return [message for message in self.messages.values() if not message.deleted]


@dataclass(slots=True)
class RecordedCall:
    """One Bot API call as received by the server (recorded after it was answered)."""

    method: str
    params: JsonDict
    at: float
    chat_id: int | None
    ok: bool = True
    error: str | None = None
    fault: str | None = None


@dataclass(slots=True)
class WebhookState:
    url: str = ""
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    max_connections: int | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(slots=True)
class _Fault:
    kind: FaultKind
    remaining: int
    retry_after: int
    delay: float


@dataclass(slots=True)
class _CallbackState:
    user_id: int
    answered: bool = False


class ApiError(Exception):
    """An error answer of the Bot API (raised inside method handlers)."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> JsonDict:
        result: JsonDict = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            result["parameters"] = {"retry_after": self.retry_after}
        return result


def _bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


# --------------------------------------------------------------------------- helpers


def button_label(button: Any) -> str:
    if isinstance(button, dict):
        return str(button.get("text", ""))
    return str(button)


class _PlainTextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_plain(text: str) -> str:
    """Strip Telegram HTML markup (tags removed, entities unescaped)."""
    parser = _PlainTextExtractor()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


class _TelegramHtmlChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.error is not None:
            return
        if tag not in _HTML_TAGS:
            self.error = f'Unsupported start tag "{tag}"'
            return
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.error is None:
            self.error = f'Unsupported start tag "{tag}"'

    def handle_endtag(self, tag: str) -> None:
        if self.error is not None:
            return
        if not self.stack:
            self.error = f'Unexpected end tag "{tag}"'
        elif self.stack[-1] != tag:
            self.error = f'Unmatched end tag "{tag}", expected "</{self.stack[-1]}>"'
        else:
            self.stack.pop()


def check_html(text: str) -> str | None:
    """Return the Telegram-style parse error of an HTML-formatted text, or None."""
    checker = _TelegramHtmlChecker()
    checker.feed(text)
    checker.close()
    if checker.error is None and checker.stack:
        checker.error = f'Can\'t find end tag corresponding to start tag "{checker.stack[-1]}"'
    return checker.error


def _decode_value(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if name in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    if name in _BOOL_FIELDS:
        lowered = value.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0", ""):
            return False
        return value
    if name in _INT_FIELDS:
        try:
            return int(value)
        except ValueError:
            return value
    if name in ("latitude", "longitude"):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def decode_params(raw: JsonDict) -> JsonDict:
    """Decode form/query string values into Python values (JSON fields, ints, bools)."""
    return {name: _decode_value(name, value) for name, value in raw.items()}


def _attach_files(raw: JsonDict, files: dict[str, UploadedFile]) -> JsonDict:
    referenced: set[str] = set()
    for key, value in list(raw.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            name = value.removeprefix("attach://")
            if name in files:
                raw[key] = files[name]
                referenced.add(name)
    for name, upload in files.items():
        if name not in referenced and name not in raw:
            raw[name] = upload
    return raw


async def _read_multipart(reader: aiohttp.MultipartReader) -> JsonDict:
    raw: JsonDict = {}
    files: dict[str, UploadedFile] = {}
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, aiohttp.BodyPartReader):
            continue
        name = part.name or ""
        if part.filename is not None:
            data = bytes(await part.read(decode=True))
            files[name] = UploadedFile(
                field_name=name,
                filename=part.filename,
                content_type=part.headers.get(hdrs.CONTENT_TYPE),
                data=data,
            )
        else:
            raw[name] = await part.text()
    return _attach_files(raw, files)


class _Params:
    """Typed accessors over decoded parameters, raising Bot-API-style errors."""

    __slots__ = ("data",)

    def __init__(self, data: JsonDict) -> None:
        self.data = data

    def get(self, name: str) -> Any:
        return self.data.get(name)

    def opt_str(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, (dict, list, UploadedFile)):
            raise _bad_request(f"invalid {name} specified")
        return value if isinstance(value, str) else str(value)

    def req_str(self, name: str) -> str:
        value = self.opt_str(name)
        if not value:
            raise _bad_request(f"{name} is empty")
        return value

    def opt_int(self, name: str) -> int | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise _bad_request(f"invalid {name} specified")

    def req_int(self, name: str) -> int:
        value = self.opt_int(name)
        if value is None:
            raise _bad_request(f"{name} is empty")
        return value

    def opt_float(self, name: str) -> float | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise _bad_request(f"invalid {name} specified")

    def opt_bool(self, name: str) -> bool:
        value = self.data.get(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    def opt_list(self, name: str) -> list[Any] | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, list):
            raise _bad_request(f"can't parse {name} JSON array")
        return value

    def opt_dict(self, name: str) -> JsonDict | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise _bad_request(f"can't parse {name} JSON object")
        return value


_Handler = Callable[[_Params], Awaitable[Any]]


class EmulatorSession(AiohttpSession):
    """aiogram session pointed at a fake server; closes without the 250 ms SSL grace sleep."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(api=TelegramAPIServer.from_base(base_url), **kwargs)

    async def close(self) -> None:
        session = self._session
        if session is not None and not session.closed:
            await session.close()


# --------------------------------------------------------------------------- server


class FakeTelegramServer:
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
        self.record_calls = record_calls
        self.strict_html = strict_html
        self.bot_user: JsonDict = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
        }

        self._clock = clock
        self._time_offset = 0.0

        self._chats: dict[int, ChatState] = {}
        self._chats_by_username: dict[str, int] = {}

        self._files: dict[str, FileRecord] = {}
        self._files_by_path: dict[str, FileRecord] = {}
        self._file_seq = itertools.count(1)
        self.downloads: list[str] = []

        self._updates: deque[tuple[int, JsonDict]] = deque()
        self._next_update_id = 1
        self._confirmed_below = 1
        self._processed_waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._update_event = asyncio.Event()
        self.last_poll_at: float | None = None

        self._callback_queries: dict[str, _CallbackState] = {}
        self.callback_answers: dict[str, CallbackAnswer] = {}

        self._commands: dict[tuple[str, str], list[JsonDict]] = {}
        self.webhook = WebhookState()
        self.descriptions: dict[str, JsonDict] = {}

        self.calls: list[RecordedCall] = []
        self._calls_by_method: dict[str, list[RecordedCall]] = {}
        self._changed = asyncio.Event()

        self._faults: dict[str, deque[_Fault]] = {}

        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._client: aiohttp.ClientSession | None = None

        self._methods: dict[str, tuple[str, _Handler]] = {}
        self._register_methods()

    # ------------------------------------------------------------------ lifecycle

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

    # ------------------------------------------------------------------ clock

    def now(self) -> float:
        """Server time: the clock plus everything passed to :meth:`advance_time`."""
        return self._clock() + self._time_offset

    def advance_time(self, seconds: float) -> None:
        self._time_offset += seconds

    # ------------------------------------------------------------------ calls & faults

    def calls_for(self, method: str) -> list[RecordedCall]:
        return list(self._calls_by_method.get(method.lower(), ()))

    def reset_calls(self) -> None:
        self.calls.clear()
        self._calls_by_method.clear()

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

    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_for(
        self,
        predicate: Callable[[Self], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until ``predicate(server)`` holds; re-checked after every recorded call."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self):
            remaining = deadline - loop.time()
            if remaining <= 0:
                last = ", ".join(call.method for call in self.calls[-10:])
                msg = (
                    f"condition {getattr(predicate, '__name__', predicate)!r} not met within "
                    f"{timeout}s (last calls: {last or 'none'})"
                )
                raise TimeoutError(msg)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    # ------------------------------------------------------------------ chats & messages

    def ensure_chat(
        self,
        user_id: int,
        *,
        first_name: str = "Test",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> ChatState:
        """Create (or update) the private chat with a user; chat id == user id."""
        user: JsonDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            user["last_name"] = last_name
        if username:
            user["username"] = username
            self._chats_by_username[username.lower()] = user_id
        if language_code:
            user["language_code"] = language_code
        chat = self._chats.get(user_id)
        if chat is None:
            chat = ChatState(chat_id=user_id, user=user)
            self._chats[user_id] = chat
        else:
            chat.user = user
        return chat

    def chat(self, chat_id: int) -> ChatState:
        try:
            return self._chats[chat_id]
        except KeyError:
            msg = f"no chat {chat_id}; create it with ensure_chat() or a SimulatedUser"
            raise KeyError(msg) from None

    def has_chat(self, chat_id: int) -> bool:
        return chat_id in self._chats

    @property
    def chats(self) -> dict[int, ChatState]:
        return self._chats

    def get_message(self, chat_id: int, message_id: int) -> ChatMessage | None:
        chat = self._chats.get(chat_id)
        return None if chat is None else chat.messages.get(message_id)

    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[ChatMessage]:
        chat = self.chat(chat_id)
        if include_deleted:
            return list(chat.messages.values())
        return chat.visible()

    def set_blocked(self, chat_id: int, blocked: bool = True) -> None:
        """Blocked chats answer bot sends with 403 "Forbidden: bot was blocked by the user"."""
        self.chat(chat_id).blocked = blocked

    def add_user_message(
        self,
        chat_id: int,
        *,
        kind: str = "text",
        text: str | None = None,
        caption: str | None = None,
        entities: list[JsonDict] | None = None,
        media: JsonDict | None = None,
    ) -> ChatMessage:
        """Store a message sent by the user (the caller pushes the update)."""
        return self._new_message(
            self.chat(chat_id),
            from_bot=False,
            kind=kind,
            text=text,
            caption=caption,
            entities=entities,
            media=media,
        )

    def edit_user_message(self, chat_id: int, message_id: int, text: str) -> ChatMessage:
        message = self.get_message(chat_id, message_id)
        if message is None or message.deleted or message.from_bot:
            msg = f"no visible user message {message_id} in chat {chat_id}"
            raise LookupError(msg)
        if message.text is not None:
            message.text = text
        else:
            message.caption = text
        message.edit_date = int(self.now())
        return message

    def _new_message(
        self,
        chat: ChatState,
        *,
        from_bot: bool,
        kind: str,
        text: str | None = None,
        caption: str | None = None,
        entities: list[JsonDict] | None = None,
        parse_mode: str | None = None,
        reply_markup: JsonDict | None = None,
        protect_content: bool = False,
        media: JsonDict | None = None,
    ) -> ChatMessage:
        now = self.now()
        message = ChatMessage(
            message_id=chat.next_message_id,
            chat_id=chat.chat_id,
            from_bot=from_bot,
            date=int(now),
            sent_at=now,
            kind=kind,
            text=text,
            caption=caption,
            entities=entities,
            parse_mode=parse_mode,
            reply_markup=reply_markup,
            protect_content=protect_content,
            media=media or {},
        )
        chat.next_message_id += 1
        chat.messages[message.message_id] = message
        return message

    def render_message(self, message: ChatMessage) -> JsonDict:
        """The Bot API ``Message`` object of a stored message."""
        chat = self._chats[message.chat_id]
        result: JsonDict = {
            "message_id": message.message_id,
            "from": self.bot_user if message.from_bot else chat.user,
            "chat": chat.chat_dict(),
            "date": message.date,
        }
        if message.edit_date is not None:
            result["edit_date"] = message.edit_date
        if message.text is not None:
            result["text"] = message.text
            if message.entities:
                result["entities"] = message.entities
        if message.caption is not None:
            result["caption"] = message.caption
            if message.entities and message.text is None:
                result["caption_entities"] = message.entities
        result.update(message.media)
        if message.protect_content:
            result["has_protected_content"] = True
        if message.reply_markup is not None and "inline_keyboard" in message.reply_markup:
            result["reply_markup"] = message.reply_markup
        return result

    def callback_answers_for(self, user_id: int) -> list[CallbackAnswer]:
        chat = self._chats.get(user_id)
        return [] if chat is None else list(chat.callback_answers)

    # ------------------------------------------------------------------ files

    def add_file(
        self,
        data: bytes,
        *,
        mime_type: str | None = None,
        file_name: str | None = None,
        folder: str = "documents",
    ) -> FileRecord:
        """Store bytes as a Telegram file (used for user uploads and bot uploads)."""
        seq = next(self._file_seq)
        extension = ""
        if file_name and "." in file_name:
            extension = "." + file_name.rsplit(".", 1)[1]
        elif mime_type:
            extension = mimetypes.guess_extension(mime_type) or ""
        if not extension:
            extension = _FOLDER_EXT.get(folder, "")
        record = FileRecord(
            file_id=f"BQACAgIAAx{seq:x}{secrets.token_urlsafe(12)}",
            file_unique_id=f"AgAD{seq:x}{secrets.token_urlsafe(4)}",
            size=len(data),
            data=data,
            mime_type=mime_type,
            file_name=file_name,
            file_path=f"{folder}/file_{seq}{extension}",
        )
        self._files[record.file_id] = record
        self._files_by_path[record.file_path] = record
        return record

    def get_file(self, file_id: str) -> FileRecord | None:
        return self._files.get(file_id)

    def file_bytes(self, file_id: str) -> bytes:
        return self._files[file_id].data

    def make_photo_sizes(self, data: bytes) -> list[JsonDict]:
        """Three PhotoSize dicts (small -> large), each backed by a stored file."""
        sizes: list[JsonDict] = []
        for side in (90, 320, 1280):
            record = self.add_file(data, mime_type="image/jpeg", folder="photos")
            sizes.append(record.as_file_dict(width=side, height=side))
        return sizes

    # ------------------------------------------------------------------ updates

    def push_update(self, update: JsonDict) -> int:
        """Queue an update for getUpdates; returns its (newly assigned) update_id."""
        update_id, stored = self._prepare_update(update)
        self._updates.append((update_id, stored))
        self._update_event.set()
        self._notify()
        return update_id

    @property
    def last_update_id(self) -> int:
        """The update_id assigned most recently (0 before the first update)."""
        return self._next_update_id - 1

    @property
    def pending_update_count(self) -> int:
        return len(self._updates)

    def is_processed(self, update_id: int) -> bool:
        return update_id < self._confirmed_below

    async def wait_processed(self, update_id: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until getUpdates was called with an offset > update_id."""
        if update_id < self._confirmed_below:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._processed_waiters.setdefault(update_id, [])
        waiters.append(future)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            last_poll = (
                "never"
                if self.last_poll_at is None
                else f"{self.now() - self.last_poll_at:.1f}s ago"
            )
            msg = (
                f"update {update_id} was not confirmed by the bot within {timeout}s "
                f"(confirmed below {self._confirmed_below}, {len(self._updates)} pending, "
                f"last getUpdates {last_poll}); is polling running with "
                "handle_as_tasks=False, and did the handler finish?"
            )
            raise TimeoutError(msg) from None
        finally:
            with contextlib.suppress(ValueError):
                waiters.remove(future)
            if not waiters:
                self._processed_waiters.pop(update_id, None)

    def _prepare_update(self, update: JsonDict) -> tuple[int, JsonDict]:
        update_id = self._next_update_id
        self._next_update_id += 1
        stored = dict(update)
        stored["update_id"] = update_id
        callback = stored.get("callback_query")
        if isinstance(callback, dict):
            sender = callback.get("from")
            if isinstance(sender, dict) and isinstance(callback.get("id"), str):
                self._callback_queries[callback["id"]] = _CallbackState(user_id=int(sender["id"]))
        for key in ("message", "edited_message"):
            message = stored.get(key)
            if isinstance(message, dict):
                self._ensure_chat_from_message(message)
        return update_id, stored

    def _ensure_chat_from_message(self, message: JsonDict) -> None:
        chat = message.get("chat")
        sender = message.get("from")
        if not isinstance(chat, dict) or chat.get("type") != "private":
            return
        if not isinstance(sender, dict) or sender.get("is_bot"):
            return
        chat_id = chat.get("id")
        if isinstance(chat_id, int) and chat_id not in self._chats:
            self._chats[chat_id] = ChatState(chat_id=chat_id, user=dict(sender))
            username = sender.get("username")
            if isinstance(username, str):
                self._chats_by_username[username.lower()] = chat_id

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            while len(self._updates) > -offset:
                self._updates.popleft()
            boundary = self._updates[0][0] if self._updates else self._next_update_id
        else:
            while self._updates and self._updates[0][0] < offset:
                self._updates.popleft()
            boundary = offset
        self._mark_confirmed(boundary)

    def _mark_confirmed(self, boundary: int) -> None:
        boundary = min(boundary, self._next_update_id)
        if boundary <= self._confirmed_below:
            return
        if self._processed_waiters:
            for update_id in range(self._confirmed_below, boundary):
                for future in self._processed_waiters.pop(update_id, ()):
                    if not future.done():
                        future.set_result(None)
        self._confirmed_below = boundary

    def _drop_pending_updates(self) -> None:
        self._updates.clear()
        self._mark_confirmed(self._next_update_id)

    # ------------------------------------------------------------------ webhook

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
            raw = await _read_multipart(aiohttp.MultipartReader(response.headers, response.content))
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
        await self._execute(name, handler, decode_params(raw), self.now())

    # ------------------------------------------------------------------ HTTP layer

    @staticmethod
    def _json(payload: JsonDict, status: int = 200) -> web.Response:
        return web.json_response(payload, status=status)

    async def _read_request_params(self, request: web.Request) -> JsonDict:
        raw: JsonDict = dict(request.query)
        if request.content_type == "multipart/form-data":
            raw.update(await _read_multipart(await request.multipart()))
        elif request.content_type == "application/x-www-form-urlencoded":
            form = await request.post()
            raw.update({key: value for key, value in form.items() if isinstance(value, str)})
        elif request.content_type == "application/json" and request.can_read_body:
            body = await request.json()
            if not isinstance(body, dict):
                raise _bad_request("request body must be a JSON object")
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
            error = _bad_request(f"can't parse request: {exc}")
            return self._json(error.payload(), error.code)
        status, payload = await self._execute(name, handler, params, at)
        return self._json(payload, status)

    async def _execute(
        self, name: str, handler: _Handler, params: JsonDict, at: float
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
            payload = {"ok": True, "result": await handler(_Params(params))}
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

    # ------------------------------------------------------------------ method table

    def _register_methods(self) -> None:
        table: dict[str, _Handler] = {
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

    # ------------------------------------------------------------------ validation helpers

    def _lookup_chat(self, params: _Params) -> ChatState:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad_request("chat_id is empty")
        chat: ChatState | None = None
        if isinstance(chat_id, int):
            chat = self._chats.get(chat_id)
        elif isinstance(chat_id, str):
            if chat_id.startswith("@"):
                resolved = self._chats_by_username.get(chat_id[1:].lower())
                chat = None if resolved is None else self._chats.get(resolved)
            else:
                with contextlib.suppress(ValueError):
                    chat = self._chats.get(int(chat_id))
        if chat is None:
            raise _bad_request("chat not found")
        return chat

    def _chat_for_send(self, params: _Params) -> ChatState:
        chat = self._lookup_chat(params)
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _check_formatting(self, text: str, parse_mode: str | None, *, caption: bool) -> None:
        plain = text
        if parse_mode is not None and parse_mode.lower() == "html":
            if self.strict_html:
                error = check_html(text)
                if error is not None:
                    raise _bad_request(f"can't parse entities: {error}")
            plain = html_to_plain(text)
        if caption:
            if len(plain) > MAX_CAPTION_LENGTH:
                raise _bad_request("message caption is too long")
        else:
            if not plain.strip():
                raise _bad_request("message text is empty")
            if len(plain) > MAX_TEXT_LENGTH:
                raise _bad_request("message is too long")

    @staticmethod
    def _parse_reply_markup(params: _Params, *, inline_only: bool = False) -> JsonDict | None:
        raw = params.get("reply_markup")
        if raw is None or raw == "":
            return None
        if not isinstance(raw, dict):
            raise _bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in raw:
            rows = raw["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise _bad_request("can't parse inline keyboard markup JSON object")
            for row in rows:
                for button in row:
                    FakeTelegramServer._check_inline_button(button)
            return raw
        if inline_only:
            raise _bad_request("inline keyboard expected")
        if "keyboard" in raw or "remove_keyboard" in raw or "force_reply" in raw:
            return raw
        raise _bad_request("can't parse reply keyboard markup JSON object")

    @staticmethod
    def _check_inline_button(button: Any) -> None:
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise _bad_request('can\'t parse inline keyboard button: Field "text" must be present')
        actions = _INLINE_BUTTON_ACTIONS.intersection(button)
        if not actions:
            raise _bad_request(
                "can't parse inline keyboard button: Text buttons are unallowed in the "
                "inline keyboard"
            )
        data = button.get("callback_data")
        if "callback_data" in button and (
            not isinstance(data, str)
            or not data
            or len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES
        ):
            raise _bad_request("BUTTON_DATA_INVALID")

    def _editable_message(self, params: _Params) -> tuple[ChatState, ChatMessage]:
        if params.get("inline_message_id"):
            raise _bad_request("MESSAGE_ID_INVALID")
        chat = self._lookup_chat(params)
        message = chat.messages.get(params.req_int("message_id"))
        if message is None or message.deleted:
            raise _bad_request("message to edit not found")
        if not message.from_bot:
            raise _bad_request("message can't be edited")
        return chat, message

    @staticmethod
    def _current_inline_markup(message: ChatMessage) -> JsonDict | None:
        markup = message.reply_markup
        return markup if markup is not None and "inline_keyboard" in markup else None

    @staticmethod
    def _apply_reply_keyboard(chat: ChatState, markup: JsonDict | None) -> None:
        if markup is None:
            return
        if "keyboard" in markup:
            chat.reply_keyboard = markup
        elif "remove_keyboard" in markup:
            chat.reply_keyboard = None

    def _delete_one(self, chat: ChatState, message_id: int) -> str | None:
        message = chat.messages.get(message_id)
        if message is None or message.deleted:
            return "message to delete not found"
        now = self.now()
        if now - message.sent_at > DELETE_WINDOW_SECONDS:
            return "message can't be deleted for everyone"
        message.deleted = True
        message.deleted_at = now
        return None

    def _resolve_input_file(
        self, value: Any, *, field_name: str, folder: str, mime_type: str | None
    ) -> FileRecord:
        if isinstance(value, UploadedFile):
            guessed = mimetypes.guess_type(value.filename)[0] if value.filename else None
            content_type = value.content_type
            if content_type == "application/octet-stream":
                content_type = None
            return self.add_file(
                value.data,
                mime_type=guessed or content_type or mime_type,
                file_name=value.filename,
                folder=folder,
            )
        if isinstance(value, str) and value:
            record = self._files.get(value)
            if record is not None:
                return record
            if value.startswith(("http://", "https://")):
                name = value.rstrip("/").rsplit("/", 1)[-1] or None
                return self.add_file(b"", mime_type=mime_type, file_name=name, folder=folder)
            raise _bad_request("wrong file identifier/HTTP URL specified")
        raise _bad_request(f"there is no {field_name} in the request")

    # ------------------------------------------------------------------ methods

    async def _m_true(self, params: _Params) -> Any:
        return True

    async def _m_get_me(self, params: _Params) -> Any:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_get_updates(self, params: _Params) -> Any:
        if self.webhook.url:
            raise ApiError(409, WEBHOOK_CONFLICT)
        offset = params.opt_int("offset")
        limit = params.opt_int("limit") or 100
        limit = max(1, min(100, limit))
        timeout = max(0.0, params.opt_float("timeout") or 0.0)
        if offset:
            self._confirm(offset)
        self.last_poll_at = self.now()
        if not self._updates and timeout > 0 and not self._closing.is_set():
            self._update_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._update_event.wait(), timeout)
        return [update for _, update in itertools.islice(self._updates, limit)]

    async def _m_send_message(self, params: _Params) -> Any:
        chat = self._chat_for_send(params)
        text = params.opt_str("text") or ""
        parse_mode = params.opt_str("parse_mode")
        self._check_formatting(text, parse_mode, caption=False)
        markup = self._parse_reply_markup(params)
        message = self._new_message(
            chat,
            from_bot=True,
            kind="text",
            text=text,
            entities=params.opt_list("entities"),
            parse_mode=parse_mode,
            reply_markup=markup,
            protect_content=params.opt_bool("protect_content"),
        )
        self._apply_reply_keyboard(chat, markup)
        return self.render_message(message)

    async def _m_edit_message_text(self, params: _Params) -> Any:
        _, message = self._editable_message(params)
        if message.text is None:
            raise _bad_request("there is no text in the message to edit")
        text = params.opt_str("text") or ""
        parse_mode = params.opt_str("parse_mode")
        self._check_formatting(text, parse_mode, caption=False)
        markup = self._parse_reply_markup(params, inline_only=True)
        entities = params.opt_list("entities")
        if (
            text == message.text
            and entities == message.entities
            and markup == self._current_inline_markup(message)
        ):
            raise ApiError(400, NOT_MODIFIED)
        message.text = text
        message.entities = entities
        message.parse_mode = parse_mode
        message.reply_markup = markup
        message.edit_date = int(self.now())
        return self.render_message(message)

    async def _m_edit_message_caption(self, params: _Params) -> Any:
        _, message = self._editable_message(params)
        if message.text is not None:
            raise _bad_request("there is no caption in the message to edit")
        caption = params.opt_str("caption")
        parse_mode = params.opt_str("parse_mode")
        if caption is not None:
            self._check_formatting(caption, parse_mode, caption=True)
        markup = self._parse_reply_markup(params, inline_only=True)
        entities = params.opt_list("caption_entities")
        if (
            caption == message.caption
            and entities == message.entities
            and markup == self._current_inline_markup(message)
        ):
            raise ApiError(400, NOT_MODIFIED)
        message.caption = caption
        message.entities = entities
        message.parse_mode = parse_mode
        message.reply_markup = markup
        message.edit_date = int(self.now())
        return self.render_message(message)

    async def _m_edit_message_reply_markup(self, params: _Params) -> Any:
        _, message = self._editable_message(params)
        markup = self._parse_reply_markup(params, inline_only=True)
        if markup == self._current_inline_markup(message):
            raise ApiError(400, NOT_MODIFIED)
        message.reply_markup = markup
        message.edit_date = int(self.now())
        return self.render_message(message)

    async def _m_answer_callback_query(self, params: _Params) -> Any:
        callback_id = params.req_str("callback_query_id")
        state = self._callback_queries.get(callback_id)
        if state is None or state.answered:
            raise ApiError(400, CALLBACK_QUERY_INVALID)
        text = params.opt_str("text")
        if text is not None and len(text) > MAX_CALLBACK_ALERT_LENGTH:
            raise _bad_request("MESSAGE_TOO_LONG")
        state.answered = True
        answer = CallbackAnswer(
            callback_query_id=callback_id,
            user_id=state.user_id,
            text=text,
            show_alert=params.opt_bool("show_alert"),
            url=params.opt_str("url"),
            cache_time=params.opt_int("cache_time"),
            at=self.now(),
        )
        self.callback_answers[callback_id] = answer
        chat = self._chats.get(state.user_id)
        if chat is not None:
            chat.callback_answers.append(answer)
        return True

    async def _m_delete_message(self, params: _Params) -> Any:
        chat = self._lookup_chat(params)
        error = self._delete_one(chat, params.req_int("message_id"))
        if error is not None:
            raise _bad_request(error)
        return True

    async def _m_delete_messages(self, params: _Params) -> Any:
        chat = self._lookup_chat(params)
        message_ids = params.opt_list("message_ids")
        if not message_ids:
            raise _bad_request("message identifiers are not specified")
        if len(message_ids) > 100:
            raise _bad_request("too many message identifiers specified")
        for message_id in message_ids:
            if isinstance(message_id, int):
                self._delete_one(chat, message_id)
        return True

    def _command_key(self, params: _Params) -> tuple[str, str]:
        scope = params.opt_dict("scope") or {"type": "default"}
        if scope.get("type") == "chat":
            chat_id = scope.get("chat_id")
            if not isinstance(chat_id, int) or chat_id not in self._chats:
                raise _bad_request("chat not found")
        return json.dumps(scope, sort_keys=True), params.opt_str("language_code") or ""

    async def _m_set_my_commands(self, params: _Params) -> Any:
        commands = params.opt_list("commands")
        if commands is None:
            raise _bad_request("commands is empty")
        if len(commands) > 100:
            raise _bad_request("BOT_COMMANDS_TOO_MUCH")
        stored: list[JsonDict] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad_request("can't parse BotCommand")
            name = command.get("command")
            description = command.get("description")
            if not isinstance(name, str) or not _COMMAND_RE.match(name):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            stored.append({"command": name, "description": description})
        key = self._command_key(params)
        if stored:
            self._commands[key] = stored
        else:
            self._commands.pop(key, None)
        return True

    async def _m_delete_my_commands(self, params: _Params) -> Any:
        self._commands.pop(self._command_key(params), None)
        return True

    async def _m_get_my_commands(self, params: _Params) -> Any:
        return [dict(command) for command in self._commands.get(self._command_key(params), [])]

    def get_commands(
        self, scope: JsonDict | None = None, language_code: str = ""
    ) -> list[JsonDict]:
        """Commands stored for a scope (default scope when None) and language."""
        key = json.dumps(scope or {"type": "default"}, sort_keys=True), language_code
        return [dict(command) for command in self._commands.get(key, [])]

    def _media_sender(self, kind: str, folder: str) -> _Handler:
        async def handler(params: _Params) -> Any:
            return self._send_media(params, kind=kind, folder=folder)

        return handler

    def _send_media(self, params: _Params, *, kind: str, folder: str) -> JsonDict:
        chat = self._chat_for_send(params)
        caption = params.opt_str("caption")
        parse_mode = params.opt_str("parse_mode")
        if caption is not None:
            self._check_formatting(caption, parse_mode, caption=True)
        markup = self._parse_reply_markup(params)
        value = params.get(kind)
        if kind == "photo" and isinstance(value, UploadedFile):
            data = value.data
            sizes = self.make_photo_sizes(data)
            media: JsonDict = {"photo": sizes}
        else:
            default_mime = {
                "voice": "audio/ogg",
                "audio": "audio/mpeg",
                "video": "video/mp4",
                "sticker": "image/webp",
                "photo": "image/jpeg",
            }.get(kind)
            record = self._resolve_input_file(
                value, field_name=kind, folder=folder, mime_type=default_mime
            )
            media = {kind: self._media_dict(kind, record, params)}
        message = self._new_message(
            chat,
            from_bot=True,
            kind=kind,
            caption=caption,
            entities=params.opt_list("caption_entities"),
            parse_mode=parse_mode,
            reply_markup=markup,
            protect_content=params.opt_bool("protect_content"),
            media=media,
        )
        self._apply_reply_keyboard(chat, markup)
        return self.render_message(message)

    @staticmethod
    def _media_dict(kind: str, record: FileRecord, params: _Params) -> Any:
        duration = params.opt_int("duration") or 1
        if kind == "photo":
            return [record.as_file_dict(width=1280, height=1280)]
        if kind == "document":
            return record.as_file_dict(file_name=record.file_name, mime_type=record.mime_type)
        if kind == "voice":
            return record.as_file_dict(duration=duration, mime_type=record.mime_type)
        if kind == "audio":
            return record.as_file_dict(
                duration=duration,
                file_name=record.file_name,
                mime_type=record.mime_type,
                title=params.opt_str("title"),
                performer=params.opt_str("performer"),
            )
        if kind == "video":
            return record.as_file_dict(
                width=params.opt_int("width") or 640,
                height=params.opt_int("height") or 480,
                duration=duration,
                file_name=record.file_name,
                mime_type=record.mime_type,
            )
        return record.as_file_dict(
            type="regular",
            width=512,
            height=512,
            is_animated=False,
            is_video=False,
            emoji=params.opt_str("emoji"),
        )

    async def _m_send_chat_action(self, params: _Params) -> Any:
        chat = self._chat_for_send(params)
        chat.chat_actions.append(params.req_str("action"))
        return True

    async def _m_get_file(self, params: _Params) -> Any:
        record = self._files.get(params.req_str("file_id"))
        if record is None:
            raise _bad_request("invalid file_id")
        if record.size > MAX_DOWNLOAD_SIZE:
            raise _bad_request("file is too big")
        return record.as_file_dict(file_path=record.file_path)

    async def _m_set_webhook(self, params: _Params) -> Any:
        url = params.opt_str("url") or ""
        secret = params.opt_str("secret_token")
        if secret is not None and not _SECRET_RE.match(secret):
            raise _bad_request("secret token contains unallowed characters")
        if params.opt_bool("drop_pending_updates"):
            self._drop_pending_updates()
        allowed = params.opt_list("allowed_updates")
        self.webhook = WebhookState(
            url=url,
            secret_token=secret if url else None,
            allowed_updates=[str(item) for item in allowed] if allowed is not None else None,
            max_connections=params.opt_int("max_connections"),
        )
        return True

    async def _m_delete_webhook(self, params: _Params) -> Any:
        if params.opt_bool("drop_pending_updates"):
            self._drop_pending_updates()
        self.webhook = WebhookState()
        return True

    async def _m_get_webhook_info(self, params: _Params) -> Any:
        info: JsonDict = {
            "url": self.webhook.url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook.url:
            info["max_connections"] = self.webhook.max_connections or 40
            if self.webhook.allowed_updates is not None:
                info["allowed_updates"] = self.webhook.allowed_updates
            if self.webhook.last_error_date is not None:
                info["last_error_date"] = self.webhook.last_error_date
                info["last_error_message"] = self.webhook.last_error_message
        return info

    def _description_setter(self, key: str) -> _Handler:
        async def handler(params: _Params) -> Any:
            language = params.opt_str("language_code") or ""
            self.descriptions.setdefault(key, {})[language] = params.opt_str(key) or ""
            return True

        return handler
