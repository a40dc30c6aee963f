"""Files: the send* methods for media and getFile."""

from __future__ import annotations

import mimetypes
from typing import Any, Final

from devkit.emulator.messages import apply_reply_keyboard, check_formatting, parse_reply_markup
from devkit.emulator.params import Handler, Params
from devkit.emulator.records import FileRecord, JsonDict, UploadedFile, bad_request
from devkit.emulator.state import EmulatorState

MAX_DOWNLOAD_SIZE: Final = 20 * 1024 * 1024


class FileMethods(EmulatorState):
    """Media the bot sends (stored as files) and getFile for the files users sent."""

    def _media_sender(self, kind: str, folder: str) -> Handler:
        async def handler(params: Params) -> Any:
            return self._send_media(params, kind=kind, folder=folder)

        return handler

    def _send_media(self, params: Params, *, kind: str, folder: str) -> JsonDict:
        chat = self._chat_for_send(params)
        caption = params.opt_str("caption")
        parse_mode = params.opt_str("parse_mode")
        if caption is not None:
            check_formatting(caption, parse_mode, caption=True, strict_html=self.strict_html)
        markup = parse_reply_markup(params)
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
        apply_reply_keyboard(chat, markup)
        return self.render_message(message)

    @staticmethod
    def _media_dict(kind: str, record: FileRecord, params: Params) -> Any:
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
            raise bad_request("wrong file identifier/HTTP URL specified")
        raise bad_request(f"there is no {field_name} in the request")

    async def _m_get_file(self, params: Params) -> Any:
        record = self._files.get(params.req_str("file_id"))
        if record is None:
            raise bad_request("invalid file_id")
        if record.size > MAX_DOWNLOAD_SIZE:
            raise bad_request("file is too big")
        return record.as_file_dict(file_path=record.file_path)
