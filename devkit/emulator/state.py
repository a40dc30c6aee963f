"""What the fake Bot API remembers, on its own clock.

:class:`~devkit.emulator.routing.FakeTelegramServer` is put together from this state and one
mixin per Bot API area (messages, callbacks, files, commands, updates); the server module
routes HTTP requests to them.

State is kept per private chat (``chat_id == user_id``) in ordered dicts keyed by
message id, so every API call does O(1)-ish work even with thousands of chats.
Error answers use the descriptions of the real Bot API so that aiogram raises the
same exception classes as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import mimetypes
import secrets
from collections import deque
from collections.abc import Callable
from typing import Final, Self

from devkit.emulator.params import Params
from devkit.emulator.records import (
    ApiError,
    CallbackAnswer,
    CallbackQueryState,
    ChatMessage,
    ChatState,
    FileRecord,
    JsonDict,
    RecordedCall,
    WebhookState,
    bad_request,
)

_FOLDER_EXT: Final = {
    "photos": ".jpg",
    "voice": ".oga",
    "stickers": ".webp",
    "videos": ".mp4",
    "music": ".mp3",
    "documents": "",
}


class EmulatorState:
    """Chats and their messages, files, queued updates, callback queries, command menus,
    the webhook and every recorded call."""

    def __init__(
        self,
        *,
        bot_user: JsonDict,
        clock: Callable[[], float],
        record_calls: bool,
        strict_html: bool,
    ) -> None:
        self.bot_user = bot_user
        self.record_calls = record_calls
        self.strict_html = strict_html
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

        self._callback_queries: dict[str, CallbackQueryState] = {}
        self.callback_answers: dict[str, CallbackAnswer] = {}

        self._commands: dict[tuple[str, str], list[JsonDict]] = {}
        self.webhook = WebhookState()
        self.descriptions: dict[str, JsonDict] = {}

        self.calls: list[RecordedCall] = []
        self._calls_by_method: dict[str, list[RecordedCall]] = {}
        self._changed = asyncio.Event()

        self._closing = asyncio.Event()

    def now(self) -> float:
        """Server time: the clock plus everything passed to :meth:`advance_time`."""
        return self._clock() + self._time_offset

    def advance_time(self, seconds: float) -> None:
        self._time_offset += seconds

    def calls_for(self, method: str) -> list[RecordedCall]:
        return list(self._calls_by_method.get(method.lower(), ()))

    def reset_calls(self) -> None:
        self.calls.clear()
        self._calls_by_method.clear()

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

    def _lookup_chat(self, params: Params) -> ChatState:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
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
            raise bad_request("chat not found")
        return chat

    def _chat_for_send(self, params: Params) -> ChatState:
        chat = self._lookup_chat(params)
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat
