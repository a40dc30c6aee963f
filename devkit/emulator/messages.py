"""Messages and edits: sendMessage, the three edits, deletions and chat actions."""

from __future__ import annotations

from typing import Any, Final

from devkit.emulator.formatting import check_html, html_to_plain
from devkit.emulator.params import Params
from devkit.emulator.records import ApiError, ChatMessage, ChatState, JsonDict, bad_request
from devkit.emulator.state import EmulatorState

DELETE_WINDOW_SECONDS: Final = 48 * 3600
MAX_TEXT_LENGTH: Final = 4096
MAX_CAPTION_LENGTH: Final = 1024
MAX_CALLBACK_DATA_BYTES: Final = 64
NOT_MODIFIED: Final = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
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


def check_formatting(
    text: str, parse_mode: str | None, *, caption: bool, strict_html: bool
) -> None:
    """Refuse a text or caption as Telegram does: bad HTML, empty or too long."""
    plain = text
    if parse_mode is not None and parse_mode.lower() == "html":
        if strict_html:
            error = check_html(text)
            if error is not None:
                raise bad_request(f"can't parse entities: {error}")
        plain = html_to_plain(text)
    if caption:
        if len(plain) > MAX_CAPTION_LENGTH:
            raise bad_request("message caption is too long")
    else:
        if not plain.strip():
            raise bad_request("message text is empty")
        if len(plain) > MAX_TEXT_LENGTH:
            raise bad_request("message is too long")


def parse_reply_markup(params: Params, *, inline_only: bool = False) -> JsonDict | None:
    """The ``reply_markup`` parameter, checked; None when there is none."""
    raw = params.get("reply_markup")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in raw:
        rows = raw["inline_keyboard"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise bad_request("can't parse inline keyboard markup JSON object")
        for row in rows:
            for button in row:
                check_inline_button(button)
        return raw
    if inline_only:
        raise bad_request("inline keyboard expected")
    if "keyboard" in raw or "remove_keyboard" in raw or "force_reply" in raw:
        return raw
    raise bad_request("can't parse reply keyboard markup JSON object")


def check_inline_button(button: Any) -> None:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request('can\'t parse inline keyboard button: Field "text" must be present')
    actions = _INLINE_BUTTON_ACTIONS.intersection(button)
    if not actions:
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    data = button.get("callback_data")
    if "callback_data" in button and (
        not isinstance(data, str) or not data or len(data.encode("utf-8")) > MAX_CALLBACK_DATA_BYTES
    ):
        raise bad_request("BUTTON_DATA_INVALID")


def current_inline_markup(message: ChatMessage) -> JsonDict | None:
    markup = message.reply_markup
    return markup if markup is not None and "inline_keyboard" in markup else None


def apply_reply_keyboard(chat: ChatState, markup: JsonDict | None) -> None:
    if markup is None:
        return
    if "keyboard" in markup:
        chat.reply_keyboard = markup
    elif "remove_keyboard" in markup:
        chat.reply_keyboard = None


class MessageMethods(EmulatorState):
    """The Bot API methods that send, edit and delete the messages of a chat."""

    def _editable_message(self, params: Params) -> tuple[ChatState, ChatMessage]:
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._lookup_chat(params)
        message = chat.messages.get(params.req_int("message_id"))
        if message is None or message.deleted:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return chat, message

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

    async def _m_send_message(self, params: Params) -> Any:
        chat = self._chat_for_send(params)
        text = params.opt_str("text") or ""
        parse_mode = params.opt_str("parse_mode")
        check_formatting(text, parse_mode, caption=False, strict_html=self.strict_html)
        markup = parse_reply_markup(params)
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
        apply_reply_keyboard(chat, markup)
        return self.render_message(message)

    async def _m_edit_message_text(self, params: Params) -> Any:
        _, message = self._editable_message(params)
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        text = params.opt_str("text") or ""
        parse_mode = params.opt_str("parse_mode")
        check_formatting(text, parse_mode, caption=False, strict_html=self.strict_html)
        markup = parse_reply_markup(params, inline_only=True)
        entities = params.opt_list("entities")
        if (
            text == message.text
            and entities == message.entities
            and markup == current_inline_markup(message)
        ):
            raise ApiError(400, NOT_MODIFIED)
        message.text = text
        message.entities = entities
        message.parse_mode = parse_mode
        message.reply_markup = markup
        message.edit_date = int(self.now())
        return self.render_message(message)

    async def _m_edit_message_caption(self, params: Params) -> Any:
        _, message = self._editable_message(params)
        if message.text is not None:
            raise bad_request("there is no caption in the message to edit")
        caption = params.opt_str("caption")
        parse_mode = params.opt_str("parse_mode")
        if caption is not None:
            check_formatting(caption, parse_mode, caption=True, strict_html=self.strict_html)
        markup = parse_reply_markup(params, inline_only=True)
        entities = params.opt_list("caption_entities")
        if (
            caption == message.caption
            and entities == message.entities
            and markup == current_inline_markup(message)
        ):
            raise ApiError(400, NOT_MODIFIED)
        message.caption = caption
        message.entities = entities
        message.parse_mode = parse_mode
        message.reply_markup = markup
        message.edit_date = int(self.now())
        return self.render_message(message)

    async def _m_edit_message_reply_markup(self, params: Params) -> Any:
        _, message = self._editable_message(params)
        markup = parse_reply_markup(params, inline_only=True)
        if markup == current_inline_markup(message):
            raise ApiError(400, NOT_MODIFIED)
        message.reply_markup = markup
        message.edit_date = int(self.now())
        return self.render_message(message)

    async def _m_delete_message(self, params: Params) -> Any:
        chat = self._lookup_chat(params)
        error = self._delete_one(chat, params.req_int("message_id"))
        if error is not None:
            raise bad_request(error)
        return True

    async def _m_delete_messages(self, params: Params) -> Any:
        chat = self._lookup_chat(params)
        message_ids = params.opt_list("message_ids")
        if not message_ids:
            raise bad_request("message identifiers are not specified")
        if len(message_ids) > 100:
            raise bad_request("too many message identifiers specified")
        for message_id in message_ids:
            if isinstance(message_id, int):
                self._delete_one(chat, message_id)
        return True

    async def _m_send_chat_action(self, params: Params) -> Any:
        chat = self._chat_for_send(params)
        chat.chat_actions.append(params.req_str("action"))
        return True
