"""Evidence files from the reporter: photos, documents, voice, audio, video notes.

A file is downloaded into memory (never to disk), checked, sealed under the
case's data key and stored; then its message is deleted from the chat like a
typed answer. Before submission the case does not exist yet: its future id and
data key live in the sealed draft (``IntakeState.case_key``).
"""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
from datetime import timedelta

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.capture import read_capture
from bot.config import Settings
from bot.evidence import (
    REFUSAL_TEXTS,
    EvidenceKind,
    EvidenceMeta,
    Incoming,
    Limits,
    Refusal,
    check_length,
    mime_of,
    refusal,
)
from bot.intake.flow import Phase, add_evidence, current_question
from bot.intake.limits import evidence_used_today, take_evidence_bytes
from bot.questionnaire import QuestionType
from handlers.reporter.conversation import Intake, load, save, show_current
from handlers.reporter.render import wrong_kind_text
from storage.crypto import DataKey, KeyRing
from storage.evidence import EvidenceRepository
from storage.models import EvidenceFile, User, utcnow

log = logging.getLogger("intake.evidence")

DOWNLOAD_TIMEOUT = 120

#: Messages that carry a file we may accept (others get "cannot be accepted").
FILE_MESSAGE = F.photo | F.document | F.voice | F.audio | F.video_note


def incoming_of(message: Message) -> Incoming | None:
    caption = message.caption
    if message.photo:
        largest = message.photo[-1]
        return Incoming(
            EvidenceKind.PHOTO, largest.file_id, "image/jpeg", largest.file_size, None, caption
        )
    if message.document:
        doc = message.document
        return Incoming(
            EvidenceKind.DOCUMENT, doc.file_id, doc.mime_type, doc.file_size, doc.file_name, caption
        )
    if message.voice:
        voice = message.voice
        return Incoming(EvidenceKind.VOICE, voice.file_id, voice.mime_type, voice.file_size)
    if message.audio:
        audio = message.audio
        return Incoming(
            EvidenceKind.AUDIO,
            audio.file_id,
            audio.mime_type,
            audio.file_size,
            audio.file_name,
            caption,
        )
    if message.video_note:
        note = message.video_note
        return Incoming(EvidenceKind.VIDEO_NOTE, note.file_id, None, note.file_size)
    return None


def limits_of(settings: Settings) -> Limits:
    return Limits(
        max_file_bytes=settings.max_download_bytes,
        max_sender_bytes_per_day=settings.evidence_bytes_per_day,
    )


def refusal_text(reason: Refusal, limits: Limits) -> str:
    return _(REFUSAL_TEXTS[reason]).format(limit=limits.limit_for(reason))


async def receive(
    bot: Bot,
    session: AsyncSession,
    settings: Settings,
    incoming: Incoming,
    *,
    sender: User,
    keyring: KeyRing,
    case_id: uuid.UUID,
    data_key: DataKey,
    submitted: bool,
) -> EvidenceFile | Refusal:
    """Check, download into memory, seal and store one file; nothing is stored if refused."""
    limits = limits_of(settings)
    repository = EvidenceRepository(session)
    files_so_far, bytes_so_far = await repository.usage(case_id)
    per_day = limits.max_sender_bytes_per_day
    today = await evidence_used_today(session, keyring, sender, per_day)
    refused = refusal(
        incoming,
        limits,
        files_so_far=files_so_far,
        bytes_so_far=bytes_so_far,
        sender_bytes_today=today,
    )
    if refused is not None:
        return refused
    buffer = io.BytesIO()
    try:
        await bot.download(incoming.file_id, destination=buffer, timeout=DOWNLOAD_TIMEOUT)
    except TelegramAPIError as exc:
        # "file is too big" is what the Bot API says past its download limit.
        log.warning("evidence download refused: %s", type(exc).__name__)
        return Refusal.TOO_BIG
    data = buffer.getvalue()
    refused = check_length(len(data), limits, bytes_so_far=bytes_so_far, sender_bytes_today=today)
    if refused is not None:
        return refused
    # Counted atomically: a file received meanwhile in another update may have
    # taken the rest of the day's allowance.
    if not await take_evidence_bytes(session, keyring, sender, len(data), per_day):
        return Refusal.SENDER_FULL
    expires = None if submitted else utcnow() + timedelta(hours=settings.draft_ttl_hours)
    # Parsing a hostile 20 MB file must not stall every other chat: a worker thread.
    capture = await asyncio.to_thread(read_capture, data, mime_of(incoming) or "")
    meta = EvidenceMeta.of(incoming, len(data), capture).to_bytes()
    row = await repository.store(
        case_id, data_key, data, meta, submitted=submitted, expires_at=expires
    )
    if expires is not None:
        await repository.extend_draft(case_id, expires)
    return row


async def file_answer(
    message: Message,
    state: FSMContext,
    bot: Bot,
    settings: Settings,
    session: AsyncSession,
    keyring: KeyRing,
    user: User,
) -> None:
    intake = await load(state)
    intake.track(message.message_id)
    question = current_question(intake) if intake.phase is Phase.QUESTIONS else None
    incoming = incoming_of(message)
    takes_file = question is not None and (
        question.type is QuestionType.FILES
        or (question.accepts_voice and incoming is not None and incoming.kind is EvidenceKind.VOICE)
    )
    if question is None or incoming is None or not takes_file:
        sent = await message.answer(wrong_kind_text(question, _))
        intake.track(sent.message_id)
        await save(state, intake)
        return
    case_id, data_key = intake.case_key()
    result = await receive(
        bot,
        session,
        settings,
        incoming,
        sender=user,
        keyring=keyring,
        case_id=case_id,
        data_key=data_key,
        submitted=False,
    )
    if isinstance(result, Refusal):
        # What was answered before stays; the refused file is not stored anywhere.
        sent = await message.answer(refusal_text(result, limits_of(settings)))
        intake.track(sent.message_id)
        await save(state, intake)
        return
    add_evidence(intake, question, result.id.hex)
    await show_current(bot, settings, state, message.chat.id, intake)


def build_router() -> Router:
    router = Router(name="reporter-evidence")
    router.message.register(file_answer, Intake.active, FILE_MESSAGE)
    return router
