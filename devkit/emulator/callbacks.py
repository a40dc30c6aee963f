"""Callback queries: answerCallbackQuery and the answers each user saw."""

from __future__ import annotations

from typing import Any, Final

from devkit.emulator.params import Params
from devkit.emulator.records import ApiError, CallbackAnswer, bad_request
from devkit.emulator.state import EmulatorState

MAX_CALLBACK_ALERT_LENGTH: Final = 200
CALLBACK_QUERY_INVALID: Final = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)


class CallbackMethods(EmulatorState):
    """answerCallbackQuery: each query is answered once, by its own id."""

    async def _m_answer_callback_query(self, params: Params) -> Any:
        callback_id = params.req_str("callback_query_id")
        state = self._callback_queries.get(callback_id)
        if state is None or state.answered:
            raise ApiError(400, CALLBACK_QUERY_INVALID)
        text = params.opt_str("text")
        if text is not None and len(text) > MAX_CALLBACK_ALERT_LENGTH:
            raise bad_request("MESSAGE_TOO_LONG")
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

    def callback_answers_for(self, user_id: int) -> list[CallbackAnswer]:
        chat = self._chats.get(user_id)
        return [] if chat is None else list(chat.callback_answers)
