"""Anonymous figures for the coalition: only cases whose reporters agreed.

Aggregates only: counts by agency, region, status, month and outcome, the
urgent share and the median time to a lawyer's first action. Nothing here
names a case.

``/stats`` opens no case: the dimensions kept in clear on ``cases`` are
counted by SQL (a scan of ``ix_cases_stats``, not a decryption per case), and
the two that come from the sealed answers (agency, region) are kept up to date
in one sealed row, ``stats_tally``, written in the transaction of each
consenting submission (``count_submission``). Shredded cases leave only their
clear dimensions in ``stats_archive``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, String, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from bot.cases.workflow import OUTCOME_LABELS, STATUS_LABELS
from bot.intake.flow import questionnaire_for
from bot.intake.news import NEWS_LABELS
from bot.questionnaire import MARKERS
from bot.text import N_
from storage.crypto import DecryptionError, FieldContext, KeyRing, Purpose
from storage.models import Case, KeyWrap, StatsArchive, StatsTally, utcnow
from storage.repositories import SYSTEM_HOLDER

Translate = Callable[[str], str]

log = logging.getLogger("intake.stats")

UNKNOWN = "unknown"
TALLY_NAME = "answers"
# The dimensions that come from the sealed answers, counted in ``stats_tally``.
ANSWER_DIMENSIONS = ("agency", "region")


@dataclass(slots=True)
class Stats:
    total: int = 0
    urgent: int = 0
    by_agency: Counter[str] = field(default_factory=Counter)
    by_region: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    by_month: Counter[str] = field(default_factory=Counter)
    by_outcome: Counter[str] = field(default_factory=Counter)
    # News reporters added after intake (bot/intake/news.py), once per case and kind.
    by_news: Counter[str] = field(default_factory=Counter)
    # Over live cases only: the time to a first action is not archived at shredding.
    median_first_action: timedelta | None = None

    @property
    def urgent_share(self) -> float:
        return self.urgent / self.total if self.total else 0.0


@dataclass(slots=True)
class AnswerCounts:
    """What the sealed answers contribute: the content of ``stats_tally``."""

    agency: Counter[str] = field(default_factory=Counter)
    region: Counter[str] = field(default_factory=Counter)
    # Not from the answers, but sealed for the same reason: news after intake.
    news: Counter[str] = field(default_factory=Counter)

    def add(self, answers: Mapping[str, object]) -> None:
        # A multi-choice agency counts once per service named (see the questionnaire).
        self.agency.update(_codes(answers.get("agency")))
        self.region.update(_codes(answers.get("region")))

    def merge(self, other: AnswerCounts) -> None:
        self.agency.update(other.agency)
        self.region.update(other.region)
        self.news.update(other.news)

    def to_json(self) -> bytes:
        return json.dumps(
            {"agency": dict(self.agency), "region": dict(self.region), "news": dict(self.news)},
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, payload: bytes) -> AnswerCounts:
        try:
            data = json.loads(payload)
            # A tally written before news existed has no "news": none counted yet.
            return cls(
                agency=_counter(data["agency"]),
                region=_counter(data["region"]),
                news=_counter(data.get("news", {})),
            )
        except (ValueError, KeyError, TypeError):
            # Authentic but unreadable: a bug, never a reason to show other figures.
            raise DecryptionError("malformed statistics tally") from None


def _counter(counts: object) -> Counter[str]:
    if not isinstance(counts, dict) or not all(
        isinstance(key, str) and type(value) is int for key, value in counts.items()
    ):
        raise ValueError("not a map of counts")
    return Counter(counts)


def _codes(value: object) -> list[str]:
    if isinstance(value, list):
        return [code for code in value if isinstance(code, str)] or [UNKNOWN]
    if isinstance(value, str) and value not in MARKERS:
        return [value]
    return [UNKNOWN]


# --------------------------------------------------------------------------- SQL


class UTCMonth(FunctionElement[str]):
    """``YYYY-MM`` of a ``UTCDateTime`` column, in UTC, computed by the database."""

    type = String()
    inherit_cache = True


@compiles(UTCMonth, "sqlite")
def _utc_month_sqlite(element: UTCMonth, compiler: SQLCompiler, **kw: Any) -> str:
    # UTCDateTime stores UTC on SQLite, as text without an offset.
    return f"strftime('%Y-%m', {compiler.process(element.clauses, **kw)})"


@compiles(UTCMonth, "postgresql")
def _utc_month_postgresql(element: UTCMonth, compiler: SQLCompiler, **kw: Any) -> str:
    # timestamptz: without AT TIME ZONE, to_char would use the session's time zone.
    return f"to_char({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM')"


class HoursBetween(FunctionElement[float]):
    """``(later - earlier)`` in hours, as a float, computed by the database."""

    type = Float()
    inherit_cache = True


@compiles(HoursBetween, "sqlite")
def _hours_between_sqlite(element: HoursBetween, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"((julianday({later}) - julianday({earlier})) * 24)"


@compiles(HoursBetween, "postgresql")
def _hours_between_postgresql(element: HoursBetween, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = (compiler.process(clause, **kw) for clause in element.clauses)
    # EXTRACT returns numeric on PostgreSQL 14+: a float is enough and sorts the same.
    return f"(CAST(EXTRACT(EPOCH FROM ({later} - {earlier})) AS DOUBLE PRECISION) / 3600)"


def _consenting() -> ColumnElement[bool]:
    """Cases counted live; shredded ones are counted in ``stats_archive``."""
    return Case.stats_consent.is_(True) & Case.shredded_at.is_(None)


async def compute(session: AsyncSession, keyring: KeyRing) -> Stats:
    """Today's figures; raises ``DecryptionError`` if the sealed tally does not open."""
    stats = Stats()
    month = UTCMonth(Case.created_at)
    grouped = await session.execute(
        select(
            Case.status,
            Case.urgent,
            Case.outcome,
            month,
            func.count(),
            func.count(Case.first_action_at),
        )
        .where(_consenting())
        .group_by(Case.status, Case.urgent, Case.outcome, month)
    )
    acted = 0
    for status, urgent, outcome, created_month, count, with_first_action in grouped:
        stats.total += count
        stats.urgent += count if urgent else 0
        stats.by_status[status] += count
        stats.by_month[created_month] += count
        if outcome:
            stats.by_outcome[outcome] += count
        acted += with_first_action
    stats.median_first_action = await _median_first_action(session, acted)
    for dimension, key, count in await session.execute(
        select(StatsArchive.dimension, StatsArchive.key, StatsArchive.count)
    ):
        _add(stats, dimension, key, count)
    tally_query = select(StatsTally.payload_sealed).where(StatsTally.name == TALLY_NAME)
    found = (await session.execute(tally_query)).one_or_none()
    tally = _open_tally(keyring, found is not None, found[0] if found else None)
    stats.by_agency.update(tally.agency)
    stats.by_region.update(tally.region)
    stats.by_news.update(tally.news)
    return stats


async def _median_first_action(session: AsyncSession, count: int) -> timedelta | None:
    """The median of ``count`` values read off the sorted middle, not fetched whole."""
    if not count:
        return None
    hours = HoursBetween(Case.first_action_at, Case.created_at)
    middle = (
        await session.scalars(
            select(hours)
            .where(_consenting(), Case.first_action_at.is_not(None))
            .order_by(hours)
            .offset((count - 1) // 2)
            .limit(1 if count % 2 else 2)
        )
    ).all()
    # A case shredded since the count was taken can leave the middle empty.
    return timedelta(hours=sum(middle) / len(middle)) if middle else None


def _add(stats: Stats, dimension: str, key: str, count: int) -> None:
    if dimension == "total":
        stats.total += count
    elif dimension == "urgent":
        stats.urgent += count
    else:
        getattr(stats, f"by_{dimension}")[key] += count


# --------------------------------------------------------------------------- the tally


def _tally_context() -> FieldContext:
    return FieldContext("stats_tally", "payload_sealed", TALLY_NAME)


def _open_tally(keyring: KeyRing, found: bool, sealed: bytes | None) -> AnswerCounts:
    if not found:
        # The migration creates the row: gone means deleted, and reading it as
        # empty would silently show wrong figures.
        raise DecryptionError("the statistics tally is missing")
    if sealed is None:
        return AnswerCounts()
    return AnswerCounts.from_json(keyring.open(Purpose.STATS, sealed, _tally_context()))


async def add_to_tally(session: AsyncSession, keyring: KeyRing, counts: AnswerCounts) -> None:
    """Add ``counts`` to the sealed tally, in the caller's transaction.

    Read-modify-write of one row, so concurrent writers must not interleave. On
    PostgreSQL ``FOR UPDATE`` makes the second writer wait for the first to
    commit and then read its version. On SQLite (where FOR UPDATE is not
    rendered) the pysqlite driver begins the transaction at its first write,
    which takes the database's single write lock until commit; callers write
    before they get here (``submit_report`` has inserted the case), so the
    read below already sees the last committed tally and nobody can change it
    before this transaction ends.
    """
    # populate_existing: after waiting for the lock, take the version just read,
    # not one this session may have loaded earlier.
    row = await session.scalar(
        select(StatsTally)
        .where(StatsTally.name == TALLY_NAME)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    tally = _open_tally(keyring, row is not None, row.payload_sealed if row else None)
    assert row is not None
    tally.merge(counts)
    row.payload_sealed = keyring.seal(Purpose.STATS, tally.to_json(), _tally_context())
    row.kek_id = keyring.primary_id  # updated_at follows (onupdate)
    await session.flush()


async def count_submission(
    session: AsyncSession, keyring: KeyRing, answers: Mapping[str, object]
) -> None:
    """Count a consenting report's agency and region; call after its case is inserted."""
    counts = AnswerCounts()
    counts.add(answers)
    await add_to_tally(session, keyring, counts)


async def count_news(session: AsyncSession, keyring: KeyRing, kind: str) -> None:
    """Count news a reporter added to a consenting case; call after the news is stored."""
    counts = AnswerCounts()
    counts.news[kind] += 1
    await add_to_tally(session, keyring, counts)


async def fill_tally(session: AsyncSession, keyring: KeyRing) -> int | None:
    """Once, after migration 0002: count the cases stored before the tally existed.

    Opens the answers of every live consenting case, and moves the agency and
    region counters that older versions kept in clear in ``stats_archive`` into
    the sealed tally. Returns how many cases were counted (live and archived),
    or None, doing nothing, once the tally has been written. An operator may
    empty the tally (``payload_sealed`` NULL, ``kek_id`` '') with the bot
    stopped to have it recounted at the next start; the agency and region of
    cases shredded meanwhile are then lost.
    """
    # Claim the empty tally with a conditional write, as retention claims a case:
    # from here until commit no other process can count into it (PostgreSQL row
    # lock; on SQLite the database's write lock), so no case is counted twice.
    claimed = await session.execute(
        update(StatsTally)
        .where(StatsTally.name == TALLY_NAME, StatsTally.payload_sealed.is_(None))
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not getattr(claimed, "rowcount", 0):
        return None
    counts = AnswerCounts()
    unreadable = 0
    cases = await session.stream(
        select(Case.id, Case.answers_sealed, KeyWrap.wrapped)
        .join(KeyWrap, (KeyWrap.case_id == Case.id) & (KeyWrap.holder == SYSTEM_HOLDER))
        .where(_consenting())
        .execution_options(yield_per=2000)
    )
    # A partition at a time: iterating the AsyncResult row by row costs a greenlet
    # switch per row (docs/performance.md).
    async for partition in cases.partitions():
        for case_id, sealed, wrapped in partition:
            try:
                data_key = keyring.unwrap_data_key(
                    wrapped, FieldContext("key_wraps", f"wrapped:{SYSTEM_HOLDER}", case_id)
                )
                answers = json.loads(
                    data_key.open(sealed, FieldContext("cases", "answers_sealed", case_id))
                )
            except (DecryptionError, ValueError):
                # Still a consenting case in the total: its answers are unknown.
                answers = {}
                unreadable += 1
            counts.add(answers)
    archived = StatsArchive.dimension.in_(ANSWER_DIMENSIONS)
    for dimension, key, count in await session.execute(
        select(StatsArchive.dimension, StatsArchive.key, StatsArchive.count).where(archived)
    ):
        getattr(counts, dimension)[key] += count
    await session.execute(delete(StatsArchive).where(archived))
    await add_to_tally(session, keyring, counts)
    if unreadable:
        log.warning("statistics tally: %d cases did not open, counted as unknown", unreadable)
    # Every consenting case has exactly one region (or "unknown").
    return sum(counts.region.values())


async def archive_case(session: AsyncSession, case: Case) -> None:
    """Move a consenting case's clear dimensions into the anonymous counters.

    Its agency and region stay in the sealed tally, counted at submission.
    """
    pairs = [("total", ""), ("status", case.status), ("month", f"{case.created_at:%Y-%m}")]
    if case.urgent:
        pairs.append(("urgent", ""))
    if case.outcome:
        pairs.append(("outcome", case.outcome))
    for dimension, key in pairs:
        row = await session.get(StatsArchive, (dimension, key))
        if row is None:
            session.add(StatsArchive(dimension=dimension, key=key, count=1))
        else:
            row.count += 1
    await session.flush()


def _option_label(question_id: str, code: str) -> str:
    question = questionnaire_for(None).get(question_id)
    option = question.option(code) if question else None
    return option.label if option else N_("not stated")


_STATUS: dict[str, str] = {status.value: label for status, label in STATUS_LABELS.items()}
_OUTCOME: dict[str, str] = {outcome.value: label for outcome, label in OUTCOME_LABELS.items()}
_NEWS: dict[str, str] = {kind.value: label for kind, label in NEWS_LABELS.items()}


def labelled(stats: Stats, translate: Translate) -> list[tuple[str, list[tuple[str, int]]]]:
    """Each breakdown with translated labels, largest first (months in order)."""

    def ordered(counter: Counter[str], label: Callable[[str], str]) -> list[tuple[str, int]]:
        return [(translate(label(key)), count) for key, count in counter.most_common()]

    return [
        (
            translate(N_("By agency")),
            ordered(stats.by_agency, lambda c: _option_label("agency", c)),
        ),
        (
            translate(N_("By region")),
            ordered(stats.by_region, lambda c: _option_label("region", c)),
        ),
        (translate(N_("By status")), ordered(stats.by_status, lambda c: _STATUS.get(c, c))),
        (translate(N_("By outcome")), ordered(stats.by_outcome, lambda c: _OUTCOME.get(c, c))),
        (
            translate(N_("News after the report")),
            ordered(stats.by_news, lambda c: _NEWS.get(c, c)),
        ),
        (translate(N_("By month")), sorted(stats.by_month.items())),
    ]


def render_text(stats: Stats, translate: Translate) -> str:
    lines = [
        translate(N_("Cases with consent to statistics: {total}")).format(total=stats.total),
        translate(N_("Urgent: {share:.0%}")).format(share=stats.urgent_share),
    ]
    median = stats.median_first_action
    if median is not None:
        lines.append(
            translate(N_("Median time to a lawyer's first action: {hours:.1f} h")).format(
                hours=median.total_seconds() / 3600
            )
        )
    for title, rows in labelled(stats, translate):
        lines += ["", title]
        lines += [f"  {count:>5}  {label}" for label, count in rows] or ["  —"]
    return "\n".join(lines)


def render_png(stats: Stats, translate: Translate) -> bytes:
    """A one-page chart of the main breakdowns (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    sections = [s for s in labelled(stats, translate) if s[1]][:4] or [("—", [("—", 0)])]
    figure, axes = plt.subplots(len(sections), 1, figsize=(8, 2.2 * len(sections) + 0.5))
    axes_list = list(axes) if len(sections) > 1 else [axes]
    for axis, (title, rows) in zip(axes_list, sections, strict=True):
        labels = [label[:40] for label, _ in rows][:10]
        counts = [count for _, count in rows][:10]
        axis.barh(labels[::-1], counts[::-1], color="#4a6fa5")
        axis.set_title(title, loc="left", fontsize=10)
        axis.tick_params(labelsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def to_csv(stats: Stats) -> str:
    """Aggregates only, with language-independent codes: dimension,key,count."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["dimension", "key", "count"])
    writer.writerow(["total", "", stats.total])
    writer.writerow(["urgent", "", stats.urgent])
    breakdowns: Iterable[tuple[str, Counter[str]]] = (
        ("agency", stats.by_agency),
        ("region", stats.by_region),
        ("status", stats.by_status),
        ("month", stats.by_month),
        ("outcome", stats.by_outcome),
        ("news", stats.by_news),
    )
    for name, counter in breakdowns:
        for key, count in sorted(counter.items()):
            writer.writerow([name, key, count])
    median = stats.median_first_action
    writer.writerow(
        ["median_first_action_hours", "", f"{median.total_seconds() / 3600:.2f}" if median else ""]
    )
    return buffer.getvalue()
