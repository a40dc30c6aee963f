"""Text for whoever reads it: in their language, or in both before they have chosen one."""

from __future__ import annotations

from collections.abc import Callable

from aiogram.types import CallbackQuery
from aiogram.utils.i18n import get_i18n
from aiogram.utils.i18n import gettext as _

from bot.i18n import LANGUAGES, Translate, in_both_languages
from bot.text import N_
from storage.models import User


def has_language(user: User | None) -> bool:
    return user is not None and user.language in LANGUAGES


def for_reader(language: str | None, render: Callable[[Translate], str]) -> str:
    """``render`` in the reader's ``language`` (the current locale), or Tajik then Russian.

    Telegram's ``language_code`` is not a choice: many Tajik speakers run the
    app in Russian, and a Russian speaker must not get Tajik only.
    """
    if language in LANGUAGES:
        return render(_)
    return in_both_languages(get_i18n(), render)


STALE_BUTTON = N_("This button is no longer active.")


async def stale_button(query: CallbackQuery, user: User | None = None) -> None:
    """A press of a button that no longer does anything (or forged data)."""
    await query.answer(for_reader(user.language if user else None, lambda tr: tr(STALE_BUTTON)))
