"""News after the report: the reporter's short flow to add to a case they sent.

Pure: no Telegram types, no database. The handlers keep a :class:`NewsDraft`
in the sealed FSM data (``"news"``), call one of these functions on each press
or message, and render the step it is on. Storing the news is
``bot/cases/followups.py``.

Steps: the kind of news (buttons), optional words, optional files, a review,
then Send. Every message the reporter typed or sent, and every screen, is in
``trail`` until the flow ends and the chat is wiped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from bot.questionnaire.engine import clean_text
from bot.text import N_

MAX_WORDS: Final = 3000
MAX_TRACKED: Final = 200
#: FSM data keys: the news being written, and the last /status exchanges (the
#: screen news starts from), so that the news flow and the sweeper delete them.
DRAFT_KEY: Final = "news"
STATUS_SCREEN_KEY: Final = "news_status"


def message_ids(value: object) -> list[int]:
    """Message ids kept in the FSM data; anything else is dropped."""
    if not isinstance(value, list):
        return []
    return [i for i in value if type(i) is int][-MAX_TRACKED:]


class NewsKind(StrEnum):
    MOVED = "moved"
    RELEASED = "released"
    HOSPITAL = "hospital"
    CHARGED = "charged"
    DIED = "died"
    THREATENED = "threatened"
    OTHER = "other"


NEWS_LABELS: Final[dict[NewsKind, str]] = {
    NewsKind.MOVED: N_("Moved to another place"),
    NewsKind.RELEASED: N_("Released"),
    NewsKind.HOSPITAL: N_("In hospital"),
    NewsKind.CHARGED: N_("Charged or in court"),
    NewsKind.DIED: N_("Died"),
    NewsKind.THREATENED: N_("Threatened or pressured"),
    NewsKind.OTHER: N_("Other news"),
}

#: News that puts a life or safety at risk: the case goes to the top of the queue.
URGENT_NEWS: Final = frozenset({NewsKind.DIED, NewsKind.THREATENED, NewsKind.HOSPITAL})


class Step(StrEnum):
    KIND = "kind"
    WORDS = "words"
    FILES = "files"
    REVIEW = "review"


class WordsRefusal(StrEnum):
    EMPTY = "empty"
    TOO_LONG = "too_long"


@dataclass(slots=True)
class NewsDraft:
    """One piece of news being written; ``reference`` is the reporter's own case."""

    reference: str
    step: Step = Step.KIND
    kind: NewsKind | None = None
    words: str = ""
    files: list[str] = field(default_factory=list)
    trail: list[int] = field(default_factory=list)

    @property
    def urgent(self) -> bool:
        return self.kind in URGENT_NEWS

    def track(self, *message_ids: int | None) -> None:
        for message_id in message_ids:
            if message_id is not None and message_id not in self.trail:
                self.trail.append(message_id)
        del self.trail[:-MAX_TRACKED]

    def take_trail(self, keep: int | None = None) -> list[int]:
        """The messages to delete now; ``keep`` (a screen edited in place) stays tracked."""
        doomed = [i for i in self.trail if i != keep]
        self.trail = [keep] if keep is not None and keep in self.trail else []
        return doomed

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "step": self.step.value,
            "kind": self.kind.value if self.kind else None,
            "words": self.words,
            "files": list(self.files),
            "trail": list(self.trail),
        }

    @classmethod
    def from_dict(cls, data: object) -> NewsDraft | None:
        """The draft kept in the FSM data, or None; never raises on what it finds."""
        if not isinstance(data, dict) or not isinstance(data.get("reference"), str):
            return None
        step = data.get("step")
        kind = data.get("kind")
        words = data.get("words")
        files = data.get("files")
        trail = data.get("trail")
        return cls(
            reference=data["reference"],
            step=Step(step)
            if isinstance(step, str) and step in Step._value2member_map_
            else Step.KIND,
            kind=NewsKind(kind)
            if isinstance(kind, str) and kind in NewsKind._value2member_map_
            else None,
            words=words[:MAX_WORDS] if isinstance(words, str) else "",
            files=[f for f in files if isinstance(f, str)] if isinstance(files, list) else [],
            trail=message_ids(trail),
        )


def choose_kind(draft: NewsDraft, code: str) -> bool:
    """A kind button; False (nothing changes) for a code that is not a kind, or a
    press on an old screen once the kind is chosen."""
    if draft.step is not Step.KIND or code not in NewsKind._value2member_map_:
        return False
    draft.kind = NewsKind(code)
    draft.step = Step.WORDS
    return True


def write_words(draft: NewsDraft, text: str) -> WordsRefusal | None:
    """Typed words (on the words or files step: they replace earlier words);
    a refusal keeps what was there before."""
    cleaned = clean_text(text) if isinstance(text, str) else ""
    if not any(ch.isprintable() and not ch.isspace() for ch in cleaned):
        return WordsRefusal.EMPTY
    if len(cleaned) > MAX_WORDS:
        return WordsRefusal.TOO_LONG
    draft.words = cleaned
    draft.step = Step.FILES
    return None


def skip_words(draft: NewsDraft) -> bool:
    if draft.step is not Step.WORDS:
        return False
    draft.step = Step.FILES
    return True


def takes_files(draft: NewsDraft) -> bool:
    """Files are welcome while writing the words too: people send a photo first."""
    return draft.step in (Step.WORDS, Step.FILES)


def add_file(draft: NewsDraft, evidence_id: str) -> None:
    """A file received (on the words or files step); the files step shows the count."""
    if evidence_id not in draft.files:
        draft.files.append(evidence_id)
    draft.step = Step.FILES


def finish_files(draft: NewsDraft) -> bool:
    if draft.step not in (Step.WORDS, Step.FILES) or draft.kind is None:
        return False
    draft.step = Step.REVIEW
    return True


def ready_to_send(draft: NewsDraft) -> bool:
    return draft.step is Step.REVIEW and draft.kind is not None


@dataclass(frozen=True, slots=True)
class NewsRecord:
    """What is sealed in the case: the kind, the words and the files' ids."""

    kind: NewsKind
    words: str
    files: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps(
            {"kind": self.kind.value, "words": self.words, "files": list(self.files)},
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str) -> NewsRecord | None:
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("kind") not in NewsKind._value2member_map_:
            return None
        words = data.get("words")
        files = data.get("files")
        return cls(
            NewsKind(data["kind"]),
            words if isinstance(words, str) else "",
            tuple(f for f in files if isinstance(f, str)) if isinstance(files, list) else (),
        )


def record_of(draft: NewsDraft) -> NewsRecord:
    assert draft.kind is not None
    return NewsRecord(draft.kind, draft.words, tuple(draft.files))
