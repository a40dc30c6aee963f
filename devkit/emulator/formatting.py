"""Telegram's HTML text: the tags it accepts, the plain text it shows, button labels."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any, Final

_HTML_TAGS: Final = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
        "tg-time",
    }
)


def button_label(button: Any) -> str:
    if isinstance(button, dict):
        return str(button.get("text", ""))
    return str(button)


class _PlainTextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_plain(text: str) -> str:
    """Strip Telegram HTML markup (tags removed, entities unescaped)."""
    parser = _PlainTextExtractor()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


class _TelegramHtmlChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.error is not None:
            return
        if tag not in _HTML_TAGS:
            self.error = f'Unsupported start tag "{tag}"'
            return
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.error is None:
            self.error = f'Unsupported start tag "{tag}"'

    def handle_endtag(self, tag: str) -> None:
        if self.error is not None:
            return
        if not self.stack:
            self.error = f'Unexpected end tag "{tag}"'
        elif self.stack[-1] != tag:
            self.error = f'Unmatched end tag "{tag}", expected "</{self.stack[-1]}>"'
        else:
            self.stack.pop()


def check_html(text: str) -> str | None:
    """Return the Telegram-style parse error of an HTML-formatted text, or None."""
    checker = _TelegramHtmlChecker()
    checker.feed(text)
    checker.close()
    if checker.error is None and checker.stack:
        checker.error = f'Can\'t find end tag corresponding to start tag "{checker.stack[-1]}"'
    return checker.error
