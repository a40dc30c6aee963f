"""Realistic encrypted cases, generated directly in the database.

The rows are the ones :meth:`storage.repositories.CaseRepository.create` writes
(a fresh data key per case, answers and the reporter's chat id sealed under it,
the data key wrapped under the primary key-encryption key), plus the reporter's
``users`` row as :meth:`UserRepository.ensure` writes it, inserted in batches.
Consenting cases are counted in the sealed statistics tally as
``submit_report`` counts them, once per ``add_cases`` rather than per case.
Answers come from the questionnaire engine, as the bot stores them: the plan's
answers where a question is shown, ``_skip`` for the rest.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import insert

from bench.common import BenchError, Database
from bot.cases.stats import AnswerCounts, add_to_tally, count_submission
from bot.cases.workflow import Outcome, Status
from bot.intake.flow import CURRENT
from bot.notifications import Role
from bot.questionnaire import (
    DONT_KNOW,
    SKIPPED,
    Accepted,
    QuestionType,
    choose_option,
    clear_hidden,
    finish_multi,
    is_relevant,
    is_urgent,
    parse_text_answer,
    toggle_multi,
)
from bot.questionnaire.dates import today_in_tajikistan
from devkit.scripted_reporter import FULL_PLAN
from storage.crypto import DataKey, FieldContext, KeyRing, Purpose
from storage.models import Case, KeyWrap, User
from storage.references import new_reference
from storage.repositories import SYSTEM_HOLDER, CaseRepository, _json_bytes

BATCH = 2_000
POOL_SIZE = 1_000
LAWYERS = 12
REPORTER_ID_BASE = 7_000_000_000

_ACCOUNT = (
    "Ӯро се рӯз латукӯб карданд ва таҳдид карданд. "
    "Его держали без адвоката и заставили подписать признание. "
)


def plan_answers(plan: Mapping[str, Any], today: date | None = None) -> dict[str, Any]:
    """The answers the bot stores for a reporter following ``plan`` (Skip for the rest)."""
    q = CURRENT
    today = today or today_in_tajikistan()
    answers: dict[str, Any] = {}
    for question in q.questions:
        if not is_relevant(q, question, answers):
            continue
        wanted = plan.get(question.id, SKIPPED)
        value: Any = SKIPPED
        if wanted in (SKIPPED, DONT_KNOW):
            value = wanted
        elif question.type is QuestionType.MULTI:
            selection: list[str] = []
            for code in wanted:
                selection = toggle_multi(question, selection, code)
            result = finish_multi(question, selection)
            value = result.value if isinstance(result, Accepted) else SKIPPED
        elif question.type in (QuestionType.SINGLE, QuestionType.YES_NO):
            result = choose_option(question, wanted)
            value = result.value if isinstance(result, Accepted) else SKIPPED
        else:
            result = parse_text_answer(question, str(wanted), today=today)
            value = result.value if isinstance(result, Accepted) else SKIPPED
        answers[question.id] = value
    return clear_hidden(q, answers)


def random_plan(rng: random.Random, today: date) -> dict[str, Any]:
    """FULL_PLAN with the choices, dates, numbers and text lengths varied."""
    plan: dict[str, Any] = dict(FULL_PLAN)
    for question in CURRENT.questions:
        codes = [option.code for option in question.options]
        roll = rng.random()
        if roll < 0.08:
            plan[question.id] = SKIPPED
            continue
        if roll < 0.12 and question.allow_dont_know:
            plan[question.id] = DONT_KNOW
            continue
        if question.type is QuestionType.MULTI:
            plan[question.id] = rng.sample(codes, k=min(len(codes), rng.choice((1, 1, 2, 3))))
        elif question.type in (QuestionType.SINGLE, QuestionType.YES_NO):
            plan[question.id] = rng.choice(codes)
    event = today - timedelta(days=rng.randrange(1, 900))
    plan["event_date"] = rng.choice(
        (f"{event:%d.%m.%Y}", f"{event:%d.%m.%Y}", f"{event:%m.%Y}", f"{event:%Y}")
    )
    plan["officers_count"] = str(rng.randint(1, 12))
    plan["account"] = (_ACCOUNT * rng.randint(1, 12))[:3000].strip()
    return plan


@dataclass(slots=True)
class CaseFactory:
    """Makes case (and reporter) rows; remembers references, lawyers and what it made."""

    keyring: KeyRing
    rng: random.Random = field(default_factory=lambda: random.Random(20250314))
    references: set[str] = field(default_factory=set)
    lawyers: list[uuid.UUID] = field(default_factory=list)
    pool: list[tuple[dict[str, Any], bool]] = field(default_factory=list)
    made: int = 0
    open_cases: int = 0
    consenting: int = 0
    # Agency and region of the consenting cases made since the tally was last written.
    uncounted: AnswerCounts = field(default_factory=AnswerCounts)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        today = today_in_tajikistan()
        for _ in range(POOL_SIZE):
            answers = plan_answers(random_plan(self.rng, today), today)
            self.pool.append((answers, is_urgent(CURRENT, answers)))

    def _reference(self) -> str:
        while True:
            reference = new_reference()
            if reference not in self.references:
                self.references.add(reference)
                return reference

    def lawyer_rows(self) -> list[dict[str, Any]]:
        rows = []
        for number in range(LAWYERS):
            user_id = uuid.uuid4()
            self.lawyers.append(user_id)
            rows.append(
                {
                    "id": user_id,
                    "tg_index": self.keyring.blind_index("tg-user", 6_000_000_000 + number),
                    "chat_sealed": self.keyring.seal(
                        Purpose.USER,
                        str(6_000_000_000 + number).encode(),
                        FieldContext("users", "chat_sealed", user_id),
                    ),
                    "language": self.rng.choice(("tg", "ru")),
                    "role": Role.LAWYER.value,
                    "role_mac": self.keyring.attest(
                        Purpose.ROLE,
                        FieldContext("users", "role_mac", f"{user_id}:{Role.LAWYER.value}"),
                    ),
                    "staff_name_sealed": self.keyring.seal(
                        Purpose.USER,
                        f"Lawyer {number + 1}".encode(),
                        FieldContext("users", "staff_name_sealed", user_id),
                    ),
                    "banned": False,
                    "created_at": self.now - timedelta(days=800),
                    "updated_at": self.now - timedelta(days=800),
                }
            )
        return rows

    def rows(self, count: int) -> tuple[list[dict[str, Any]], ...]:
        """``count`` cases with their key wraps and reporters (one user row each)."""
        users: list[dict[str, Any]] = []
        cases: list[dict[str, Any]] = []
        wraps: list[dict[str, Any]] = []
        rng = self.rng
        keyring = self.keyring
        statuses = [s.value for s in Status]
        weights = (30, 20, 25, 5, 20)
        outcomes = [o.value for o in Outcome]
        for _ in range(count):
            self.made += 1
            telegram_id = REPORTER_ID_BASE + self.made
            user_id = uuid.uuid4()
            case_id = uuid.uuid4()
            created = self.now - timedelta(seconds=rng.randrange(1, 730 * 86400))
            status = rng.choices(statuses, weights)[0]
            answers, urgent = rng.choice(self.pool)
            data_key = DataKey.generate()
            closed_at = first_action = assignee = outcome = None
            if status != Status.NEW.value:
                assignee = rng.choice(self.lawyers)
                first_action = created + timedelta(hours=rng.uniform(0.2, 96))
            if status == Status.CLOSED.value:
                # Closed recently enough that the retention job leaves it alone.
                closed_at = max(first_action or created, self.now - timedelta(days=150))
                closed_at += timedelta(seconds=rng.randrange(0, 86400))
                outcome = rng.choice(outcomes)
            else:
                self.open_cases += 1
            stats_consent = rng.random() < 0.85
            self.consenting += stats_consent
            if stats_consent:
                self.uncounted.add(answers)
            users.append(
                {
                    "id": user_id,
                    "tg_index": keyring.blind_index("tg-user", telegram_id),
                    "chat_sealed": keyring.seal(
                        Purpose.USER,
                        str(telegram_id).encode(),
                        FieldContext("users", "chat_sealed", user_id),
                    ),
                    "language": rng.choice(("tg", "ru")),
                    "role": None,
                    "role_mac": None,
                    "staff_name_sealed": None,
                    "banned": False,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            cases.append(
                {
                    "id": case_id,
                    "reference": self._reference(),
                    "status": status,
                    "urgent": urgent,
                    "questionnaire_version": CURRENT.version,
                    "stats_consent": stats_consent,
                    "contact_consent": rng.random() < 0.7,
                    "reporter_index": keyring.blind_index("tg-user", telegram_id),
                    "reporter_chat_sealed": data_key.seal(
                        str(telegram_id).encode(),
                        FieldContext("cases", "reporter_chat_sealed", case_id),
                    ),
                    "answers_sealed": data_key.seal(
                        _json_bytes(answers), FieldContext("cases", "answers_sealed", case_id)
                    ),
                    "assignee_id": assignee,
                    "created_at": created,
                    "updated_at": closed_at or first_action or created,
                    "closed_at": closed_at,
                    "outcome": outcome,
                    "first_action_at": first_action,
                    "retain_until": None,
                    "retention_warned_at": None,
                    "shredded_at": None,
                }
            )
            wraps.append(
                {
                    "id": uuid.uuid4(),
                    "case_id": case_id,
                    "holder": SYSTEM_HOLDER,
                    "kek_id": keyring.primary_id,
                    "wrapped": keyring.wrap_data_key(
                        data_key, FieldContext("key_wraps", f"wrapped:{SYSTEM_HOLDER}", case_id)
                    ),
                    "created_at": created,
                }
            )
        return users, cases, wraps


async def seed_staff(database: Database, factory: CaseFactory) -> None:
    async with database.sessionmaker.begin() as session:
        await session.execute(insert(User), factory.lawyer_rows())


async def add_cases(database: Database, factory: CaseFactory, count: int) -> None:
    """Insert ``count`` more cases, ``BATCH`` per transaction; count them in the last."""
    remaining = count
    while remaining > 0:
        size = min(BATCH, remaining)
        users, cases, wraps = factory.rows(size)
        remaining -= size
        async with database.sessionmaker.begin() as session:
            await session.execute(insert(User), users)
            await session.execute(insert(Case), cases)
            await session.execute(insert(KeyWrap), wraps)
            if not remaining:
                # Once, after the inserts, as submit_report counts after its case.
                await add_to_tally(session, factory.keyring, factory.uncounted)
                factory.uncounted = AnswerCounts()


async def check_equivalence(database: Database, factory: CaseFactory) -> None:
    """A case made by ``CaseRepository.create`` and a generated one read back the same way."""
    async with database.sessionmaker.begin() as session:
        repository = CaseRepository(session, factory.keyring)
        answers, urgent = factory.pool[0]
        made = await repository.create(
            answers=answers,
            urgent=urgent,
            questionnaire_version=CURRENT.version,
            stats_consent=True,
            contact_consent=True,
            reporter_index=factory.keyring.blind_index("tg-user", 1),
            reporter_chat_id=1,
        )
        await count_submission(session, factory.keyring, answers)  # as submit_report does
        reference = made.reference
    factory.references.add(reference)
    async with database.sessionmaker() as session:
        repository = CaseRepository(session, factory.keyring)
        real = await repository.by_reference(reference)
        generated = await repository.by_reference(next(iter(factory.references - {reference})))
        if real is None or generated is None:
            raise BenchError("generated cases cannot be found by reference")
        if await repository.answers(real) != answers:
            raise BenchError("a case made by CaseRepository.create does not read back")
        generated_answers = await repository.answers(generated)
        chat = await repository.reporter_chat_id(generated)
        columns = [column.key for column in Case.__table__.columns]
        shape_real = {key: type(getattr(real, key)).__name__ for key in columns}
        shape_generated = {key: type(getattr(generated, key)).__name__ for key in columns}
    if not isinstance(generated_answers, dict) or not isinstance(chat, int):
        raise BenchError("a generated case does not open with CaseRepository")
    differing = {
        key
        for key in columns
        if shape_real[key] != shape_generated[key]
        and key not in {"assignee_id", "closed_at", "outcome", "first_action_at"}
    }
    if differing:
        raise BenchError(f"generated case rows differ from CaseRepository.create: {differing}")
    # Keep the bookkeeping right: the repository-made case is new, open, consenting.
    factory.made += 1
    factory.open_cases += 1
    factory.consenting += 1


def json_answers_size(factory: CaseFactory) -> int:
    """Average size of the sealed answers' plaintext (for the notes)."""
    sizes = [len(json.dumps(answers, ensure_ascii=False)) for answers, _ in factory.pool]
    return sum(sizes) // len(sizes)
