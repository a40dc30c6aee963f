"""Partial dates as people remember them: a day, only a month, or only a year."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum
from typing import Final

from bot.questionnaire.model import RejectReason

MIN_YEAR: Final = 1950
# Tajikistan has a single time zone and no daylight saving time.
DUSHANBE_TZ: Final = timezone(timedelta(hours=5), "Asia/Dushanbe")
# Longer input cannot be a date; the cap also bounds regex work on hostile input.
_MAX_INPUT: Final = 40


class DatePrecision(StrEnum):
    DAY = "day"
    MONTH = "month"
    YEAR = "year"


_SEP: Final = r"(?:\s*[./-]\s*|\s+)"
_D: Final = r"([0-9]{1,2})"
_Y: Final = r"([0-9]{4})"
# [0-9] rather than \d: int() would also take other scripts' digits; \s stays Unicode
# so a no-break space between the parts is fine.
_DAY_FIRST: Final = re.compile(rf"{_D}{_SEP}{_D}{_SEP}{_Y}")
_YEAR_FIRST: Final = re.compile(rf"{_Y}{_SEP}{_D}{_SEP}{_D}")
_MONTH_YEAR: Final = re.compile(rf"{_D}{_SEP}{_Y}")
_YEAR_MONTH: Final = re.compile(rf"{_Y}{_SEP}{_D}")
_YEAR_ONLY: Final = re.compile(_Y)
# People often add "г." (Russian "год") or "с." / "сол" (Tajik "сол") after a year.
_YEAR_SUFFIX: Final = re.compile(r"\s*(?:г|гг|год|года|с|сол|соли)\.?\s*$", re.IGNORECASE)

_VALUE_RE: Final = {
    DatePrecision.DAY: re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII),
    DatePrecision.MONTH: re.compile(r"[0-9]{4}-[0-9]{2}", re.ASCII),
    DatePrecision.YEAR: re.compile(r"[0-9]{4}", re.ASCII),
}


def today_in_tajikistan() -> date:
    return datetime.now(DUSHANBE_TZ).date()


def parse_date(text: str, today: date) -> dict[str, str] | RejectReason:
    """Parse `14.03.2025`, `14/03/2025`, `2025-03-14`, `03.2025`, `3.2025` or `2025`."""
    if len(text) > _MAX_INPUT:
        return RejectReason.NOT_A_DATE
    cleaned = _YEAR_SUFFIX.sub("", text.strip())
    if match := _DAY_FIRST.fullmatch(cleaned):
        day, month, year = (int(g) for g in match.groups())
        return _build(year, month, day, today)
    if match := _YEAR_FIRST.fullmatch(cleaned):
        year, month, day = (int(g) for g in match.groups())
        return _build(year, month, day, today)
    if match := _MONTH_YEAR.fullmatch(cleaned):
        month, year = (int(g) for g in match.groups())
        return _build(year, month, None, today)
    if match := _YEAR_MONTH.fullmatch(cleaned):
        year, month = (int(g) for g in match.groups())
        return _build(year, month, None, today)
    if match := _YEAR_ONLY.fullmatch(cleaned):
        return _build(int(match.group(1)), None, None, today)
    return RejectReason.NOT_A_DATE


def _build(
    year: int, month: int | None, day: int | None, today: date
) -> dict[str, str] | RejectReason:
    if month is not None and not 1 <= month <= 12:
        return RejectReason.NOT_A_DATE
    if year < MIN_YEAR:
        return RejectReason.OUT_OF_RANGE
    if month is None:
        if year > today.year:
            return RejectReason.FUTURE_DATE
        return {"precision": DatePrecision.YEAR.value, "value": f"{year:04d}"}
    if day is None:
        if (year, month) > (today.year, today.month):
            return RejectReason.FUTURE_DATE
        return {"precision": DatePrecision.MONTH.value, "value": f"{year:04d}-{month:02d}"}
    try:
        exact = date(year, month, day)
    except ValueError:
        return RejectReason.NOT_A_DATE
    if exact > today:
        return RejectReason.FUTURE_DATE
    return {"precision": DatePrecision.DAY.value, "value": exact.isoformat()}


def is_valid_date_value(value: object) -> bool:
    """Whether `value` is a well-formed stored date answer (no check against today)."""
    if not isinstance(value, dict) or set(value) != {"precision", "value"}:
        return False
    precision, text = value["precision"], value["value"]
    if not isinstance(precision, str) or not isinstance(text, str):
        return False
    try:
        kind = DatePrecision(precision)
    except ValueError:
        return False
    if not _VALUE_RE[kind].fullmatch(text):
        return False
    year = int(text[:4])
    if year < MIN_YEAR:
        return False
    if kind is DatePrecision.DAY:
        try:
            date.fromisoformat(text)
        except ValueError:
            return False
    elif kind is DatePrecision.MONTH:
        return 1 <= int(text[5:7]) <= 12
    return True


def format_date_value(value: object) -> str | None:
    """Show a stored date the way it is typed here: 14.03.2025, 03.2025 or 2025."""
    if not is_valid_date_value(value):
        return None
    assert isinstance(value, dict)
    text: str = value["value"]
    if value["precision"] == DatePrecision.DAY:
        return f"{text[8:10]}.{text[5:7]}.{text[:4]}"
    if value["precision"] == DatePrecision.MONTH:
        return f"{text[5:7]}.{text[:4]}"
    return text
