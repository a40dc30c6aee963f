"""The Tajik and Russian catalogues stay complete and consistent with the code's English.

Every check collects all offending msgids first, so one failing run lists everything to fix.
Each checker is a pure function of a babel ``Catalog``; the ``*_catches_*`` tests feed it a
deliberately broken catalogue, so a checker that silently stops finding problems fails too.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po

from bot.i18n import LANGUAGES, LOCALES_DIR, create_i18n

POT_PATH = LOCALES_DIR / "messages.pot"
TG_PLURAL_FORMS = "nplurals=2; plural=(n > 1);"

# Tajik Cyrillic has ё, э and ъ as letters of its own ("ё" is "or"; "шӯъба", "эътилоф"), but
# no ц, щ, ы or ь: these only appear when Russian text slips into the Tajik catalogue.
RUSSIAN_ONLY_LETTERS = re.compile("[ыщць]", re.IGNORECASE)
# Russian words a Tajik msgstr may quote on purpose: the menu path of a Telegram app running in
# Russian, "Настройки → Конфиденциальность → Код-пароль" (Telegram has no Tajik interface).
# Keep this list short.
RUSSIAN_WORDS_ALLOWED_IN_TAJIK = frozenset({"Конфиденциальность", "пароль"})
TAJIK_LETTERS = frozenset("ғӣқӯҳҷҒӢҚӮҲҶ")
TAJIK_LETTER_SHARE = 0.6
CYRILLIC = re.compile("[\u0400-\u04ff]")

BRACE_FIELD = re.compile(r"(?<!\{)\{[^{}]*\}(?!\})")
PERCENT_FIELD = re.compile(r"%(?:\((?P<name>[^)]+)\))?[#0+-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[a-zA-Z]")
COMMAND = re.compile(r"(?<![\w/])/[a-z][a-z0-9_]*")

# Glossary terms (/work/shared/glossary.md) the interface relies on, checked at run time.
GLOSSARY_PINS = {
    "Skip": {"ru": "Пропустить", "tg": "Гузаштан"},
    "I don't know": {"ru": "Не знаю", "tg": "Намедонам"},
    "Back": {"ru": "Назад", "tg": "Бозгашт"},
    "Yes": {"ru": "Да", "tg": "Ҳа"},
    "No": {"ru": "Нет", "tg": "Не"},
}

Checker = Callable[[Catalog], list[str]]


def po_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / "messages.po"


@cache
def load(path: Path, language: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=language)


def catalogue(language: str) -> Catalog:
    return load(po_path(language), language)


def entries(catalog: Catalog) -> Iterator[Message]:
    return (message for message in catalog if message.id)


def ids(message: Message) -> tuple[str, ...]:
    return message.id if isinstance(message.id, tuple) else (message.id,)


def strings(message: Message) -> tuple[str, ...]:
    if isinstance(message.string, tuple | list):
        return tuple(message.string)
    return (message.string or "",)


def label(message: Message) -> str:
    return repr(ids(message)[0])


# --- checkers -------------------------------------------------------------------------------


def untranslated(catalog: Catalog) -> list[str]:
    problems = []
    for message in entries(catalog):
        forms = strings(message)
        if message.pluralizable and len(forms) != catalog.num_plurals:
            problems.append(f"{label(message)}: {len(forms)} forms, not {catalog.num_plurals}")
        elif not all(form.strip() for form in forms):
            problems.append(label(message))
    return problems


def fuzzy(catalog: Catalog) -> list[str]:
    problems = ["(header)"] if catalog.fuzzy else []
    return problems + [label(message) for message in entries(catalog) if message.fuzzy]


def obsolete(catalog: Catalog) -> list[str]:
    return [repr(msgid) for msgid in catalog.obsolete]


def placeholders(text: str) -> set[str]:
    text = text.replace("%%", "")
    found = set(BRACE_FIELD.findall(text))
    for match in PERCENT_FIELD.finditer(text):
        found.add(match.group(0) if match.group("name") else f"%{match.group(0)[-1]}")
    return found


def positional_percent_count(text: str) -> int:
    return sum(1 for m in PERCENT_FIELD.finditer(text.replace("%%", "")) if not m.group("name"))


def placeholder_mismatches(catalog: Catalog) -> list[str]:
    problems = []
    for message in entries(catalog):
        expected: set[str] = set().union(*(placeholders(msgid) for msgid in ids(message)))
        translated = [form for form in strings(message) if form]
        got: set[str] = set().union(*(placeholders(form) for form in translated))
        if message.pluralizable:
            # A plural form may leave out the count ("one file"), never invent a placeholder.
            wrong = got - expected
            missing = expected - got
        else:
            wrong, missing = got - expected, expected - got
            counts = {positional_percent_count(ids(message)[0])}
            counts |= {positional_percent_count(form) for form in translated}
            if len(counts) > 1:
                wrong.add("(number of positional % placeholders)")
        for form in translated:
            try:
                list(string.Formatter().parse(form))
            except ValueError as error:
                wrong.add(f"(broken braces: {error})")
        if wrong or missing:
            problems.append(
                f"{label(message)}: unexpected {sorted(wrong)}, missing {sorted(missing)}"
            )
    return problems


def layout_mismatches(catalog: Catalog) -> list[str]:
    """Leading/trailing whitespace, newline count and /commands as in the msgid."""

    def edges(text: str) -> tuple[str, str, int]:
        return text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :], text.count("\n")

    problems = []
    for message in entries(catalog):
        msgid = ids(message)[0]
        for form in strings(message):
            if not form:
                continue
            if edges(form) != edges(msgid):
                problems.append(f"{label(message)}: whitespace or newlines differ")
            if set(COMMAND.findall(form)) != set(COMMAND.findall(msgid)):
                problems.append(f"{label(message)}: commands {sorted(COMMAND.findall(form))}")
    return problems


def needs_translation(msgid: str) -> bool:
    """False for msgids that are only placeholders, numbers, punctuation or commands."""
    rest = COMMAND.sub("", BRACE_FIELD.sub("", PERCENT_FIELD.sub("", msgid)))
    return any(char.isalpha() for char in rest)


def not_cyrillic(catalog: Catalog) -> list[str]:
    problems = []
    for message in entries(catalog):
        msgid = ids(message)[0]
        if not needs_translation(msgid):
            continue
        for form in strings(message):
            if form and (form == msgid or not CYRILLIC.search(form)):
                problems.append(f"{label(message)}: {form!r}")
    return problems


def russian_letters_in_tajik(catalog: Catalog) -> list[str]:
    problems = []
    for message in entries(catalog):
        for form in strings(message):
            if len(form.split()) <= 2:
                continue
            words = [w for w in re.findall(r"\w+", form) if w not in RUSSIAN_WORDS_ALLOWED_IN_TAJIK]
            if RUSSIAN_ONLY_LETTERS.search(" ".join(words)):
                problems.append(f"{label(message)}: {form!r}")
    return problems


def too_few_tajik_letters(catalog: Catalog) -> list[str]:
    long_forms = [
        form for message in entries(catalog) for form in strings(message) if len(form.split()) >= 4
    ]
    without = [form for form in long_forms if not TAJIK_LETTERS.intersection(form)]
    if long_forms and len(without) > (1 - TAJIK_LETTER_SHARE) * len(long_forms):
        return [
            f"{len(without)} of {len(long_forms)} msgstrs of 4+ words have none of ғ ӣ қ ӯ ҳ ҷ",
            *map(repr, without),
        ]
    return []


def header_fields(path: Path) -> dict[str, str]:
    """The header as written in the file (babel re-derives Plural-Forms from the locale)."""
    head = path.read_text(encoding="utf-8").split("\n\n", 1)[0]
    value = "".join(re.findall(r'^"(.*)"$', head, flags=re.MULTILINE))
    fields = {}
    for line in value.split("\\n"):
        name, _, content = line.partition(":")
        if content:
            fields[name.strip()] = content.strip()
    return fields


# --- the catalogues ---------------------------------------------------------------------------

LANGUAGE_CHECKS: dict[str, Checker] = {
    "empty msgstr": untranslated,
    "fuzzy": fuzzy,
    "obsolete": obsolete,
    "placeholders differ from the msgid": placeholder_mismatches,
    "layout differs from the msgid": layout_mismatches,
    "msgstr is not a Cyrillic translation": not_cyrillic,
}


@pytest.mark.parametrize("check", LANGUAGE_CHECKS, ids=list(LANGUAGE_CHECKS))
@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue(language: str, check: str) -> None:
    problems = LANGUAGE_CHECKS[check](catalogue(language))
    assert not problems, f"{language}: {check}:\n" + "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogue_matches_template(language: str) -> None:
    template = {message.id for message in entries(load(POT_PATH))}
    present = {message.id for message in entries(catalogue(language))}
    missing = sorted(map(repr, template - present))
    stale = sorted(map(repr, present - template))
    assert not missing, f"{language}: msgids of messages.pot missing:\n" + "\n".join(missing)
    assert not stale, f"{language}: msgids not in messages.pot (obsolete):\n" + "\n".join(stale)


def test_tajik_plural_forms() -> None:
    assert header_fields(po_path("tg")).get("Plural-Forms") == TG_PLURAL_FORMS


def test_tajik_has_no_russian_only_letters() -> None:
    problems = russian_letters_in_tajik(catalogue("tg"))
    assert not problems, "Russian-only letters ы щ ц ь in Tajik:\n" + "\n".join(problems)


def test_tajik_uses_tajik_letters() -> None:
    problems = too_few_tajik_letters(catalogue("tg"))
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def i18n():
    return create_i18n()


@pytest.mark.parametrize("language", LANGUAGES)
def test_runtime_uses_the_catalogues(i18n, language: str) -> None:
    translations = catalogue(language)
    for msgid, expected in GLOSSARY_PINS.items():
        assert translations[msgid].string == expected[language], msgid
        assert i18n.gettext(msgid, locale=language) == expected[language], msgid
    msgid = "Please type a number from {low} to {high}."
    text = i18n.gettext(msgid, locale=language)
    assert text == translations[msgid].string != msgid
    assert "1" in text.format(low=1, high=50)


# --- the checkers can fail --------------------------------------------------------------------


def broken(*messages: tuple[str, str], locale: str = "ru") -> Catalog:
    catalog = Catalog(locale=locale, fuzzy=False)
    for msgid, msgstr in messages:
        catalog.add(msgid, msgstr)
    return catalog


def test_checkers_catch_broken_entries() -> None:
    catalog = broken(
        ("Skip", ""),
        ("Your report {reference}", "Ваше обращение {ref}"),
        ("Send /start", "Отправьте /begin"),
        ("Back", "Back"),
        ("Rate %(n)s of %s", "Оценка %s"),
        (" lead", "без пробела"),
    )
    catalog.add("Done", "Готово", flags=["fuzzy"])
    catalog.obsolete["Old"] = Message("Old", "Старое")
    assert untranslated(catalog) == ["'Skip'"]
    assert fuzzy(catalog) == ["'Done'"]
    assert obsolete(catalog) == ["'Old'"]
    assert len(placeholder_mismatches(catalog)) == 2
    assert len(layout_mismatches(catalog)) == 2
    assert not_cyrillic(catalog) == ["'Back': 'Back'"]


def test_checkers_catch_russian_in_tajik() -> None:
    catalog = broken(
        ("Which service were the officers from?", "Из какой службы были сотрудники?"),
        ("Please check your answers now.", "Пожалуйста, проверьте ответы."),
        ("Military", "Военные"),
        ("Set a passcode", "Рамз гузоред (Настройки → Конфиденциальность)"),
        locale="tg",
    )
    assert len(russian_letters_in_tajik(catalog)) == 2
    assert too_few_tajik_letters(catalog)
