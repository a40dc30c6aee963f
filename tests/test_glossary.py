"""The translators' glossary (docs/translations.md) agrees with both catalogues.

A label listed there reads exactly as given; a word listed there is translated with the
same stem in every entry that uses it. The tables are parsed from the document itself, so
the glossary translators read is the one the tests check.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.i18n import LANGUAGES
from tests.test_i18n import catalogue, entries, ids, strings

DOC = Path(__file__).resolve().parents[1] / "docs" / "translations.md"
CELL_CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True, slots=True)
class Term:
    english: str
    forms: dict[str, str]  # language -> exact label, or stem


def table(heading: str) -> list[list[str]]:
    """The rows (cells) of the first Markdown table after ``heading``."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(heading)
    rows: list[list[str]] = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip("|"))]
            rows.append([cell.replace("\\|", "|") for cell in cells])
        elif rows:
            break
    header, rule, *body = rows
    assert header[1:] == ["Russian", "Tajik"] and set(rule[0]) <= {"-"}, header
    return body


def labels() -> list[Term]:
    return [
        Term(CELL_CODE.fullmatch(english).group(1), {"ru": ru, "tg": tg})  # type: ignore[union-attr]
        for english, ru, tg in table("### Labels")
    ]


def words() -> list[Term]:
    terms = []
    for english, ru, tg in table("### Words inside sentences"):
        found = [CELL_CODE.search(cell) for cell in (english, ru, tg)]
        assert all(found), (english, ru, tg)
        pattern, ru_stem, tg_stem = (match.group(1) for match in found if match)
        terms.append(Term(pattern, {"ru": ru_stem, "tg": tg_stem}))
    return terms


def test_the_glossary_is_there() -> None:
    assert len(labels()) >= 30
    assert len(words()) >= 15


@pytest.mark.parametrize("language", LANGUAGES)
def test_labels_read_as_in_the_glossary(language: str) -> None:
    translations = catalogue(language)
    problems = []
    for term in labels():
        message = translations.get(term.english)
        if message is None:
            problems.append(f"{term.english!r}: not a msgid")
        elif message.string != term.forms[language]:
            problems.append(
                f"{term.english!r}: {message.string!r}, glossary {term.forms[language]!r}"
            )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_words_are_translated_alike_everywhere(language: str) -> None:
    problems = []
    used = set()
    for term in words():
        english = re.compile(rf"\b(?:{term.english})\b", re.IGNORECASE)
        for message in entries(catalogue(language)):
            if not english.search(ids(message)[0]):
                continue
            used.add(term.english)
            stem = term.forms[language].lower()
            for form in strings(message):
                if stem not in form.lower():
                    problems.append(f"{term.english} -> {stem}: {ids(message)[0]!r}: {form!r}")
    assert not problems, "\n".join(problems)
    unused = {term.english for term in words()} - used
    assert not unused, f"glossary words no msgid uses: {sorted(unused)}"


def test_the_checker_finds_a_stray_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong stem in the glossary must make the check fail (the check can fail)."""
    wrong = [Term("torture", {"ru": "истязан", "tg": "азоб"})]
    monkeypatch.setattr(sys.modules[__name__], "words", lambda: wrong)
    with pytest.raises(AssertionError, match="torture -> истязан"):
        test_words_are_translated_alike_everywhere("ru")
