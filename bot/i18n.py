"""Languages: gettext catalogues for Tajik and Russian, chosen by the user.

A reporter's language is asked for and stored on the user row; Telegram's
``language_code`` is only a hint (many Tajik speakers run Telegram in Russian),
so until a reporter has chosen, answers come in both languages, Tajik first.
Staff get theirs from ``language_code`` when they join (``staff_language``)
and can change it with /language.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n.middleware import I18nMiddleware
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po


def _locales_dir() -> Path:
    """The catalogues beside the source tree, or in the working directory when the
    package was installed (the Docker image runs from /app, which holds them)."""
    beside_source = Path(__file__).resolve().parents[1] / "locales"
    return beside_source if beside_source.is_dir() else Path.cwd() / "locales"


LOCALES_DIR = _locales_dir()
DOMAIN = "messages"
LANGUAGES = ("tg", "ru")
DEFAULT_LANGUAGE = "tg"
LANGUAGE_NAMES = {"tg": "Тоҷикӣ", "ru": "Русский"}
STAFF_DEFAULT_LANGUAGE = "ru"

Translate = Callable[[str], str]


def staff_language(language_code: str | None) -> str:
    """A new staff member's language from their Telegram app's: ru, tg, else Russian.

    Lawyers in Tajikistan work in Russian more often than not; a reporter's
    language, by contrast, is always asked.
    """
    code = (language_code or "").split("-")[0].lower()
    return code if code in LANGUAGES else STAFF_DEFAULT_LANGUAGE


def reading_language(language: str | None, role: str | None) -> str:
    """The language to write to someone in: theirs, else Russian for staff, else Tajik.

    Staff named in the settings may get a notice before their first message
    tells us their app's language.
    """
    if language in LANGUAGES:
        return language
    return STAFF_DEFAULT_LANGUAGE if role is not None else DEFAULT_LANGUAGE


def in_both_languages(i18n: I18n, render: Callable[[Translate], str]) -> str:
    """``render`` once per language, Tajik first, for someone who has not chosen yet."""

    def translator(language: str) -> Translate:
        return lambda msgid: i18n.gettext(msgid, locale=language)

    return "\n\n".join(render(translator(language)) for language in LANGUAGES)


class CatalogueI18n(I18n):
    """Loads the ``.po`` catalogues directly, compiling them in memory.

    A checkout therefore never runs with stale or missing ``.mo`` files.
    """

    def find_locales(self) -> dict[str, gettext.GNUTranslations]:
        translations: dict[str, gettext.GNUTranslations] = {}
        for language in LANGUAGES:
            po_path = self.path / language / "LC_MESSAGES" / f"{self.domain}.po"
            with po_path.open("rb") as handle:
                catalog = read_po(handle, locale=language)
            buffer = io.BytesIO()
            write_mo(buffer, catalog)
            buffer.seek(0)
            translations[language] = gettext.GNUTranslations(buffer)
        return translations


# aiogram keeps "the current I18n" in a context variable created per class; share
# the base class's variable so that aiogram's gettext() finds this instance.
CatalogueI18n._ContextInstanceMixin__context_instance = (  # type: ignore[attr-defined]
    I18n._ContextInstanceMixin__context_instance  # type: ignore[attr-defined]
)


def create_i18n(path: Path = LOCALES_DIR) -> CatalogueI18n:
    return CatalogueI18n(path=path, default_locale=DEFAULT_LANGUAGE, domain=DOMAIN)


class UserLanguageMiddleware(I18nMiddleware):
    """Uses the language stored for the user (see UserMiddleware)."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user = data.get("user")
        language = getattr(user, "language", None)
        return language if language in LANGUAGES else DEFAULT_LANGUAGE
