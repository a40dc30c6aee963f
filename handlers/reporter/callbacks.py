"""Callback data of the reporter's buttons: short, language-independent codes.

Everything in here is client input: handlers validate each value against the
conversation state before acting on it.
"""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class LanguageChoice(CallbackData, prefix="lang"):
    code: str


class FlowAction(CallbackData, prefix="f"):
    """Conversation-level buttons: continue, leave, resume, submit, cancel..."""

    action: str


class ConsentAnswer(CallbackData, prefix="c"):
    step: str
    agreed: bool


class AnswerButton(CallbackData, prefix="q"):
    """Same layout as ``bot.questionnaire.callback_data``: ``q:<question>:<code>``."""

    question: str
    code: str


class EditAnswer(CallbackData, prefix="e"):
    question: str
