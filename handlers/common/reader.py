"""Text for whoever reads it: in their language, or in both before they have chosen one."""

from __future__ import annotations

from collections.abc import Callable

from aiogram.utils.i18n import get_i18n
from aiogram.utils.i18n import gettext as _

from bot.i18n import LANGUAGES, Translate, in_both_languages
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
