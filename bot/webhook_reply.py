"""Webhook mode: the answer to a button press, carried in the webhook's HTTP response.

Telegram executes one Bot API method given as the JSON body of the response to
an update (it sends no result back). Most updates of the questionnaire are
button presses, each answered with ``answerCallbackQuery``; sent this way the
answer costs no Bot API round trip of its own: no request built, no HTTP
exchange, no pydantic validation of the reply (docs/performance.md).

``UpdateEndpoint`` opens a ``HeldAnswer`` for each update; ``BotApiSession``
hands it the update's first ``answerCallbackQuery`` instead of sending it; the
endpoint puts it in the response once the update's transaction has committed.
A further answer in the same update goes out as a call of its own, after the
held one (Telegram shows the first). An update that failed is answered with a
500 and nothing else: its redelivery answers the press. Polling opens no
``HeldAnswer``, so there every answer is a call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from aiogram.methods import AnswerCallbackQuery
from aiogram.types import Update


class HeldAnswer:
    """The update's first answer to a press, until the update is over."""

    __slots__ = ("method", "open", "taken")

    def __init__(self) -> None:
        self.method: AnswerCallbackQuery | None = None
        self.open = True
        self.taken = False

    def take(self, method: AnswerCallbackQuery) -> bool:
        """Keep ``method`` for the response; False when the caller must send it itself."""
        if not self.open or self.taken:
            return False
        self.method, self.taken = method, True
        return True

    def release(self) -> AnswerCallbackQuery | None:
        """A second answer is about to be sent: the held one must go out before it.

        Telegram shows the first answer to arrive, as it did when every answer
        was a call. Once the update is over the held one is the response's.
        """
        if not self.open:
            return None
        method, self.method = self.method, None
        return method

    def discard(self) -> None:
        """Forget the held answer: the error handler's answer is held instead."""
        self.method, self.taken = None, False

    def close(self) -> AnswerCallbackQuery | None:
        """The update is over: what is held goes in the response; later answers are calls.

        A task the handler started may answer after this (it inherits the context).
        """
        self.open = False
        return self.method


_held: ContextVar[HeldAnswer | None] = ContextVar("held_answer", default=None)


@contextlib.contextmanager
def holding_answer(enabled: bool = True) -> Iterator[HeldAnswer | None]:
    """Within: the current update's first answer to a press is held, not sent."""
    held = HeldAnswer() if enabled else None
    token = _held.set(held)
    try:
        yield held
    finally:
        if held is not None:
            held.close()
        _held.reset(token)


def held_answer() -> HeldAnswer | None:
    """The current update's, in webhook mode; None in polling mode or outside an update."""
    return _held.get()


def discard_held_answer() -> None:
    """Forget the held answer: it told of work that was rolled back."""
    held = _held.get()
    if held is not None and held.open:
        held.discard()


def answer_dropped_press(update: Update) -> None:
    """A redelivery dropped as a duplicate: answer its press in the response all the same.

    The first delivery's answer went down with its response (a replica killed
    after the commit, a response too late for Telegram, a failure after
    ``commit_now``); if it did arrive, Telegram refuses this one, at no cost.
    """
    held = _held.get()
    if held is not None and update.callback_query is not None:
        held.take(AnswerCallbackQuery(callback_query_id=update.callback_query.id))


def response_body(method: AnswerCallbackQuery) -> dict[str, Any]:
    """The method as the JSON body Telegram executes (unset fields left out)."""
    return {
        "method": method.__api_method__,
        **method.model_dump(exclude_none=True, warnings=False),
    }
