"""What the emulator stores and reports: chats, messages, files, calls, errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from devkit.emulator.formatting import button_label, html_to_plain

JsonDict = dict[str, Any]
FaultKind = Literal["retry_after", "server_error", "slow"]


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
    """One Bot API call as received by the server (recorded after it was answered).

    ``webhook_reply``: the method came in the body of a webhook's response, not as
    a request of its own (``at`` is when that response arrived).
    """

    method: str
    params: JsonDict
    at: float
    chat_id: int | None
    ok: bool = True
    error: str | None = None
    fault: str | None = None
    webhook_reply: bool = False


@dataclass(slots=True)
class WebhookState:
    url: str = ""
    secret_token: str | None = None
    allowed_updates: list[str] | None = None
    max_connections: int | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(slots=True)
class CallbackQueryState:
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


def bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")
