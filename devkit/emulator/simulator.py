"""A simulated Telegram user talking to the bot through :class:`FakeTelegramServer`.

Every ``send_*``/``press*`` call stores the user's side of the conversation in the
server's chat record (so the bot can delete it), pushes the update and — unless
``wait=False`` — waits until the bot confirmed it via getUpdates (i.e. with
``handle_as_tasks=False`` polling, until the handler finished). When the bot has a
webhook set, the update is POSTed to the webhook instead and the call returns when
the bot answered the HTTP request.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from devkit.emulator.formatting import button_label
from devkit.emulator.records import CallbackAnswer, ChatMessage, ChatState, JsonDict
from devkit.emulator.routing import FakeTelegramServer

_callback_seq = itertools.count(1)


class SimulatedUser:
    """One Telegram user in a private chat with the bot (chat id == user id)."""

    def __init__(
        self,
        server: FakeTelegramServer,
        user_id: int = 1001,
        first_name: str = "Test",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
        timeout: float = 10.0,
        wait: bool = True,
    ) -> None:
        self.server = server
        self.user_id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        self.timeout = timeout
        self.wait = wait
        self.last_update_id: int | None = None
        self._chat = server.ensure_chat(
            user_id,
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
        )

    # ------------------------------------------------------------------ identity

    @property
    def chat_id(self) -> int:
        return self.user_id

    @property
    def chat(self) -> ChatState:
        return self._chat

    @property
    def user_dict(self) -> JsonDict:
        """The Telegram ``User`` object of this user."""
        return dict(self._chat.user)

    # ------------------------------------------------------------------ delivery

    async def _deliver(self, update: JsonDict) -> int:
        server = self.server
        if server.webhook.url:
            status = await server.deliver_webhook(update, timeout=self.timeout)
            update_id = server.last_update_id
            if status != 200:
                msg = f"webhook answered HTTP {status} to update {update_id}"
                raise RuntimeError(msg)
        else:
            update_id = server.push_update(update)
            if self.wait:
                await server.wait_processed(update_id, timeout=self.timeout)
        self.last_update_id = update_id
        return update_id

    async def _send_message(
        self,
        *,
        kind: str,
        text: str | None = None,
        caption: str | None = None,
        entities: list[JsonDict] | None = None,
        media: JsonDict | None = None,
    ) -> int:
        message = self.server.add_user_message(
            self.user_id,
            kind=kind,
            text=text,
            caption=caption,
            entities=entities,
            media=media,
        )
        await self._deliver({"message": self.server.render_message(message)})
        return message.message_id

    async def send_raw_update(self, update: JsonDict) -> int:
        """Deliver any update dict (edited_message, my_chat_member...); returns update_id."""
        return await self._deliver(update)

    # ------------------------------------------------------------------ sending

    async def send_text(self, text: str, *, entities: list[JsonDict] | None = None) -> int:
        return await self._send_message(kind="text", text=text, entities=entities)

    async def send_command(self, command: str, args: str | None = None) -> int:
        if not command.startswith("/"):
            command = "/" + command
        text = command if not args else f"{command} {args}"
        entity: JsonDict = {"type": "bot_command", "offset": 0, "length": len(command)}
        return await self._send_message(kind="text", text=text, entities=[entity])

    async def send_photo(self, data: bytes, caption: str | None = None) -> int:
        sizes = self.server.make_photo_sizes(data)
        return await self._send_message(kind="photo", caption=caption, media={"photo": sizes})

    async def send_document(
        self,
        data: bytes,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        caption: str | None = None,
    ) -> int:
        record = self.server.add_file(data, mime_type=mime_type, file_name=file_name)
        document = record.as_file_dict(file_name=file_name, mime_type=mime_type)
        return await self._send_message(
            kind="document", caption=caption, media={"document": document}
        )

    async def send_voice(self, data: bytes, duration: int = 3) -> int:
        record = self.server.add_file(data, mime_type="audio/ogg", folder="voice")
        voice = record.as_file_dict(duration=duration, mime_type="audio/ogg")
        return await self._send_message(kind="voice", media={"voice": voice})

    async def send_video_note(self, data: bytes, duration: int = 5, length: int = 240) -> int:
        """A round video message (Telegram sends no mime type or file name for these)."""
        record = self.server.add_file(data, mime_type="video/mp4", folder="video_notes")
        note = record.as_file_dict(duration=duration, length=length)
        return await self._send_message(kind="video_note", media={"video_note": note})

    async def send_audio(
        self,
        data: bytes,
        file_name: str = "recording.mp3",
        mime_type: str = "audio/mpeg",
        duration: int = 30,
    ) -> int:
        record = self.server.add_file(
            data, mime_type=mime_type, file_name=file_name, folder="music"
        )
        audio = record.as_file_dict(duration=duration, file_name=file_name, mime_type=mime_type)
        return await self._send_message(kind="audio", media={"audio": audio})

    async def send_sticker(self, emoji: str = "👍") -> int:
        record = self.server.add_file(
            b"RIFF\x00\x00\x00\x00WEBP", mime_type="image/webp", folder="stickers"
        )
        sticker = record.as_file_dict(
            type="regular",
            width=512,
            height=512,
            is_animated=False,
            is_video=False,
            emoji=emoji,
            set_name="FakeStickers",
        )
        return await self._send_message(kind="sticker", media={"sticker": sticker})

    async def send_location(self, lat: float, lon: float) -> int:
        location = {"latitude": lat, "longitude": lon}
        return await self._send_message(kind="location", media={"location": location})

    async def edit_text(self, message_id: int, text: str) -> int:
        """Edit one of the user's own messages (sends an ``edited_message`` update)."""
        message = self.server.edit_user_message(self.user_id, message_id, text)
        return await self._deliver({"edited_message": self.server.render_message(message)})

    async def tap_reply_button(self, label: str) -> int:
        """Tap a button of the current reply keyboard (sends its text as a message)."""
        rows = self.reply_keyboard()
        if not any(label in row for row in rows):
            msg = f"no reply-keyboard button {label!r}; reply keyboard: {rows or 'none'}"
            raise LookupError(msg)
        keyboard = self._chat.reply_keyboard
        if keyboard is not None and keyboard.get("one_time_keyboard"):
            self._chat.reply_keyboard = None
        return await self.send_text(label)

    async def block_bot(self) -> int:
        """Block the bot: later bot sends fail with 403; sends a my_chat_member update."""
        self.server.set_blocked(self.user_id, True)
        return await self._deliver(self._member_update("member", "kicked"))

    async def unblock_bot(self) -> int:
        self.server.set_blocked(self.user_id, False)
        return await self._deliver(self._member_update("kicked", "member"))

    def _member_update(self, old: str, new: str) -> JsonDict:
        bot_user = self.server.bot_user
        date = int(self.server.now())
        return {
            "my_chat_member": {
                "chat": self._chat.chat_dict(),
                "from": self._chat.user,
                "date": date,
                "old_chat_member": {"status": old, "user": bot_user},
                "new_chat_member": {
                    "status": new,
                    "user": bot_user,
                    **({"until_date": 0} if new == "kicked" else {}),
                },
            }
        }

    # ------------------------------------------------------------------ buttons

    async def press(self, label: str, message_id: int | None = None) -> str:
        """Press the inline button labelled exactly ``label``; returns the callback id.

        Without ``message_id`` the newest visible bot message having such a button is
        used.
        """
        message: ChatMessage | None = None
        button: JsonDict | None = None
        if message_id is not None:
            message = self.server.get_message(self.user_id, message_id)
            if message is None or message.deleted or not message.from_bot:
                msg = f"message {message_id} is not a visible bot message in chat {self.user_id}"
                raise LookupError(msg)
            button = message.find_button(label)
        else:
            for candidate in reversed(self._chat.messages.values()):
                if candidate.from_bot and not candidate.deleted:
                    button = candidate.find_button(label)
                    if button is not None:
                        message = candidate
                        break
        if message is None or button is None:
            raise LookupError(self._describe_missing_button(label, message_id))
        data = button.get("callback_data")
        if not isinstance(data, str):
            kinds = sorted(key for key in button if key != "text")
            msg = (
                f"button {label!r} on message {message.message_id} has no callback_data "
                f"(fields: {kinds})"
            )
            raise LookupError(msg)
        return await self._send_callback(data, self.server.render_message(message))

    async def press_data(self, data: str, message_id: int) -> str:
        """Send a callback query with arbitrary (possibly forged) data for a message.

        A missing or deleted message is sent as an inaccessible message (date 0).
        """
        message = self.server.get_message(self.user_id, message_id)
        rendered: JsonDict
        if message is None or message.deleted:
            rendered = {"chat": self._chat.chat_dict(), "message_id": message_id, "date": 0}
        else:
            rendered = self.server.render_message(message)
        return await self._send_callback(data, rendered)

    async def _send_callback(self, data: str, message: JsonDict) -> str:
        callback_id = f"{secrets.randbits(40)}{next(_callback_seq):06d}"
        update: JsonDict = {
            "callback_query": {
                "id": callback_id,
                "from": self._chat.user,
                "message": message,
                "chat_instance": f"{self.server.bot_id}{self.user_id}",
                "data": data,
            }
        }
        await self._deliver(update)
        return callback_id

    def _describe_missing_button(self, label: str, message_id: int | None) -> str:
        where = f"message {message_id}" if message_id is not None else "any visible bot message"
        lines = [f"no inline button {label!r} on {where} in chat {self.user_id}."]
        keyboards = [
            f"  #{message.message_id}: {message.button_labels}"
            for message in self.bot_messages()
            if message.inline_keyboard
        ]
        lines.append("Visible inline keyboards:" if keyboards else "No visible inline keyboards.")
        lines.extend(keyboards)
        if self._chat.reply_keyboard is not None:
            lines.append(f"Reply keyboard (use tap_reply_button): {self.reply_keyboard()}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ reading

    def visible_messages(self) -> list[ChatMessage]:
        """Not-deleted messages of both sides, oldest first."""
        return self._chat.visible()

    def bot_messages(self) -> list[ChatMessage]:
        return [m for m in self._chat.messages.values() if m.from_bot and not m.deleted]

    def last_bot_message(self) -> ChatMessage | None:
        for message in reversed(self._chat.messages.values()):
            if message.from_bot and not message.deleted:
                return message
        return None

    def last_text(self) -> str | None:
        """Text (or caption) of the newest visible bot message."""
        message = self.last_bot_message()
        return None if message is None else message.body

    def buttons(self, message: ChatMessage | int | None = None) -> list[list[str]]:
        """Button labels of ``message`` or of the newest visible bot message with a keyboard."""
        if isinstance(message, int):
            found = self.server.get_message(self.user_id, message)
            return [] if found is None else found.button_labels
        if message is not None:
            return message.button_labels
        for candidate in reversed(self._chat.messages.values()):
            if candidate.from_bot and not candidate.deleted:
                labels = candidate.button_labels
                if labels:
                    return labels
        return []

    def reply_keyboard(self) -> list[list[str]]:
        """Labels of the reply keyboard currently shown (empty if none)."""
        keyboard = self._chat.reply_keyboard
        if keyboard is None:
            return []
        rows: Any = keyboard.get("keyboard")
        if not isinstance(rows, list):
            return []
        return [[button_label(button) for button in row] for row in rows]

    def deleted_message_ids(self) -> list[int]:
        return [m.message_id for m in self._chat.messages.values() if m.deleted]

    def answered_callbacks(self) -> list[CallbackAnswer]:
        return list(self._chat.callback_answers)

    def __repr__(self) -> str:
        return f"SimulatedUser(user_id={self.user_id}, first_name={self.first_name!r})"
