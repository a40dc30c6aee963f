"""A Bot API request's parameters: form, multipart and JSON bodies decoded and typed."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Final

import aiohttp
from aiohttp import hdrs

from devkit.emulator.records import JsonDict, UploadedFile, bad_request

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


async def read_multipart(reader: aiohttp.MultipartReader) -> JsonDict:
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


class Params:
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
            raise bad_request(f"invalid {name} specified")
        return value if isinstance(value, str) else str(value)

    def req_str(self, name: str) -> str:
        value = self.opt_str(name)
        if not value:
            raise bad_request(f"{name} is empty")
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
        raise bad_request(f"invalid {name} specified")

    def req_int(self, name: str) -> int:
        value = self.opt_int(name)
        if value is None:
            raise bad_request(f"{name} is empty")
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
        raise bad_request(f"invalid {name} specified")

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
            raise bad_request(f"can't parse {name} JSON array")
        return value

    def opt_dict(self, name: str) -> JsonDict | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, dict):
            raise bad_request(f"can't parse {name} JSON object")
        return value


Handler = Callable[[Params], Awaitable[Any]]
