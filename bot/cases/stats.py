"""Anonymous figures for the coalition: only cases whose reporters agreed.

Aggregates only: counts by agency, region, status, month and outcome, the
urgent share and the median time to a lawyer's first action. Nothing here
names a case.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.workflow import OUTCOME_LABELS, STATUS_LABELS
from bot.intake.flow import questionnaire_for
from bot.questionnaire import MARKERS
from bot.text import N_
from storage.crypto import DecryptionError, FieldContext, KeyRing
from storage.models import Case, KeyWrap, StatsArchive
from storage.repositories import SYSTEM_HOLDER

Translate = Callable[[str], str]

UNKNOWN = "unknown"


@dataclass(slots=True)
class Stats:
    total: int = 0
    urgent: int = 0
    by_agency: Counter[str] = field(default_factory=Counter)
    by_region: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    by_month: Counter[str] = field(default_factory=Counter)
    by_outcome: Counter[str] = field(default_factory=Counter)
    first_action_hours: list[float] = field(default_factory=list)

    @property
    def urgent_share(self) -> float:
        return self.urgent / self.total if self.total else 0.0

    @property
    def median_first_action(self) -> timedelta | None:
        if not self.first_action_hours:
            return None
        return timedelta(hours=statistics.median(self.first_action_hours))


def _codes(value: object) -> list[str]:
    if isinstance(value, list):
        return [code for code in value if isinstance(code, str)] or [UNKNOWN]
    if isinstance(value, str) and value not in MARKERS:
        return [value]
    return [UNKNOWN]


async def compute(session: AsyncSession, keyring: KeyRing) -> Stats:
    stats = Stats()
    rows = await session.stream(
        select(
            Case.id,
            Case.status,
            Case.urgent,
            Case.created_at,
            Case.first_action_at,
            Case.outcome,
            Case.answers_sealed,
            KeyWrap.wrapped,
        )
        .join(KeyWrap, (KeyWrap.case_id == Case.id) & (KeyWrap.holder == SYSTEM_HOLDER))
        .where(Case.stats_consent.is_(True), Case.shredded_at.is_(None))
        .execution_options(yield_per=2000)
    )
    # A partition at a time: iterating the AsyncResult row by row costs a greenlet
    # switch per row, a third of the fetch time at 100k cases (docs/performance.md).
    async for partition in rows.partitions():
        for case_id, status, urgent, created, first_action, outcome, sealed, wrapped in partition:
            try:
                data_key = keyring.unwrap_data_key(
                    wrapped, FieldContext("key_wraps", f"wrapped:{SYSTEM_HOLDER}", case_id)
                )
                answers = json.loads(
                    data_key.open(sealed, FieldContext("cases", "answers_sealed", case_id))
                )
            except (DecryptionError, ValueError):
                continue
            for dimension, key in _facets(status, urgent, created, outcome, answers):
                _add(stats, dimension, key, 1)
            if first_action is not None:
                stats.first_action_hours.append((first_action - created).total_seconds() / 3600)
    for row in await session.scalars(select(StatsArchive)):
        _add(stats, row.dimension, row.key, row.count)
    return stats


def _facets(
    status: str, urgent: bool, created: datetime, outcome: str | None, answers: dict[str, object]
) -> list[tuple[str, str]]:
    """The (dimension, key) pairs one case contributes to the figures."""
    pairs = [("total", ""), ("status", status), ("month", f"{created:%Y-%m}")]
    if urgent:
        pairs.append(("urgent", ""))
    if outcome:
        pairs.append(("outcome", outcome))
    pairs += [("agency", code) for code in _codes(answers.get("agency"))]
    pairs += [("region", code) for code in _codes(answers.get("region"))]
    return pairs


def _add(stats: Stats, dimension: str, key: str, count: int) -> None:
    if dimension == "total":
        stats.total += count
    elif dimension == "urgent":
        stats.urgent += count
    else:
        getattr(stats, f"by_{dimension}")[key] += count


async def archive_case(session: AsyncSession, case: Case, answers: dict[str, object]) -> None:
    """Move a consenting case's contribution into the anonymous counters."""
    for dimension, key in _facets(case.status, case.urgent, case.created_at, case.outcome, answers):
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
    )
    for name, counter in breakdowns:
        for key, count in sorted(counter.items()):
            writer.writerow([name, key, count])
    median = stats.median_first_action
    writer.writerow(
        ["median_first_action_hours", "", f"{median.total_seconds() / 3600:.2f}" if median else ""]
    )
    return buffer.getvalue()
