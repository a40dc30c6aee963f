"""Repositories: the only code that turns rows into plaintext and back.

Every method takes an open ``AsyncSession``; the caller owns the transaction,
so a change and the notifications it causes commit together.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.crypto import DataKey, FieldContext, KeyRing, Purpose
from storage.models import Case, KeyWrap, User
from storage.references import new_reference

SYSTEM_HOLDER = "system"


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class UserRepository:
    def __init__(self, session: AsyncSession, keyring: KeyRing) -> None:
        self.session = session
        self.keyring = keyring

    def telegram_index(self, telegram_user_id: int) -> bytes:
        return self.keyring.blind_index("tg-user", telegram_user_id)

    async def by_telegram_id(self, telegram_user_id: int) -> User | None:
        return await self.by_index(self.telegram_index(telegram_user_id))

    async def by_index(self, index: bytes) -> User | None:
        found = await self.session.scalars(select(User).where(User.tg_index == index))
        return found.one_or_none()

    async def ensure(self, telegram_user_id: int, chat_id: int) -> User:
        """The user behind an update, created on first contact."""
        return await self.ensure_index(self.telegram_index(telegram_user_id), chat_id)

    async def ensure_index(self, index: bytes, chat_id: int) -> User:
        """The user with this blind index, created if there is none (as first contact does)."""
        user = await self.by_index(index)
        if user is not None:
            return user
        user = User(id=uuid.uuid4(), tg_index=index)
        user.chat_sealed = self._seal_chat(user.id, chat_id)
        self.session.add(user)
        await self.session.flush()
        return user

    def _seal_chat(self, user_id: uuid.UUID, chat_id: int) -> bytes:
        context = FieldContext("users", "chat_sealed", user_id)
        return self.keyring.seal(Purpose.USER, str(chat_id).encode(), context)

    def chat_id(self, user: User) -> int:
        context = FieldContext("users", "chat_sealed", user.id)
        return int(self.keyring.open(Purpose.USER, user.chat_sealed, context))

    def reseal(self, user: User) -> None:
        """Re-encrypt under the current primary key (key rotation)."""
        user.chat_sealed = self._seal_chat(user.id, self.chat_id(user))

    async def staff(self) -> Sequence[User]:
        found = await self.session.scalars(
            select(User).where(User.role.is_not(None)).order_by(User.created_at)
        )
        return found.all()


class CaseRepository:
    def __init__(self, session: AsyncSession, keyring: KeyRing) -> None:
        self.session = session
        self.keyring = keyring

    @staticmethod
    def _wrap_context(case_id: uuid.UUID, holder: str) -> FieldContext:
        return FieldContext("key_wraps", f"wrapped:{holder}", case_id)

    async def create(
        self,
        *,
        answers: dict[str, Any],
        urgent: bool,
        questionnaire_version: str,
        stats_consent: bool,
        contact_consent: bool,
        reporter_index: bytes,
        reporter_chat_id: int,
        case_id: uuid.UUID | None = None,
        data_key: DataKey | None = None,
    ) -> Case:
        """A new case; ``case_id`` and ``data_key`` come from a draft whose evidence
        files are already sealed under them, otherwise they are new."""
        case_id = case_id or uuid.uuid4()
        data_key = data_key or DataKey.generate()
        case = Case(
            id=case_id,
            reference=await self._unused_reference(),
            status="new",
            urgent=urgent,
            questionnaire_version=questionnaire_version,
            stats_consent=stats_consent,
            contact_consent=contact_consent,
            reporter_index=reporter_index,
            reporter_chat_sealed=data_key.seal(
                str(reporter_chat_id).encode(),
                FieldContext("cases", "reporter_chat_sealed", case_id),
            ),
            answers_sealed=data_key.seal(
                _json_bytes(answers), FieldContext("cases", "answers_sealed", case_id)
            ),
        )
        self.session.add(case)
        self.session.add(
            KeyWrap(
                case_id=case_id,
                holder=SYSTEM_HOLDER,
                kek_id=self.keyring.primary_id,
                wrapped=self.keyring.wrap_data_key(
                    data_key, self._wrap_context(case_id, SYSTEM_HOLDER)
                ),
            )
        )
        await self.session.flush()
        return case

    async def _unused_reference(self) -> str:
        # 40 random bits: a clash is rare; look before use instead of retrying
        # the insert, so a clash never aborts the caller's transaction.
        while True:
            reference = new_reference()
            taken = await self.session.scalar(
                select(func.count()).select_from(Case).where(Case.reference == reference)
            )
            if not taken:
                return reference

    async def by_reference(self, reference: str) -> Case | None:
        found = await self.session.scalars(select(Case).where(Case.reference == reference))
        return found.one_or_none()

    async def for_reporter(self, reporter_index: bytes) -> Sequence[Case]:
        found = await self.session.scalars(
            select(Case).where(Case.reporter_index == reporter_index).order_by(Case.created_at)
        )
        return found.all()

    async def data_key(self, case: Case) -> DataKey:
        wrap = await self.session.scalar(
            select(KeyWrap).where(KeyWrap.case_id == case.id, KeyWrap.holder == SYSTEM_HOLDER)
        )
        if wrap is None:
            raise LookupError("case has no key wrap: it was shredded")
        return self.keyring.unwrap_data_key(
            wrap.wrapped, self._wrap_context(case.id, SYSTEM_HOLDER)
        )

    async def answers(self, case: Case) -> dict[str, Any]:
        data_key = await self.data_key(case)
        raw = data_key.open(case.answers_sealed, FieldContext("cases", "answers_sealed", case.id))
        value = json.loads(raw)
        if not isinstance(value, dict):
            raise ValueError("answers are not a mapping")
        return value

    async def reporter_chat_id(self, case: Case) -> int | None:
        if case.reporter_chat_sealed is None:
            return None
        data_key = await self.data_key(case)
        context = FieldContext("cases", "reporter_chat_sealed", case.id)
        return int(data_key.open(case.reporter_chat_sealed, context))

    async def shred(self, case: Case) -> None:
        """Delete every key wrap: the sealed columns become unreadable for good."""
        wraps = await self.session.scalars(select(KeyWrap).where(KeyWrap.case_id == case.id))
        for wrap in wraps:
            await self.session.delete(wrap)
        await self.session.flush()
