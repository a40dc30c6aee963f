"""Lawyers' (and coordinators') case work: queue, case view and the actions on it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiogram import Bot, F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.policy import Action
from bot.cases.service import AccessDenied, CaseService
from bot.cases.staff import staff_name
from bot.cases.workflow import Outcome, Status, WorkflowError
from bot.custody import file_history
from bot.evidence import KIND_LABELS, EvidenceKind, EvidenceMeta, human_size
from bot.text import N_
from handlers.staff.callbacks import AssignTo, CaseAct, CaseOutcome, EvidenceGet, QueueNav
from handlers.staff.filters import STAFF
from handlers.staff.gate import CaseViews
from handlers.staff.render import (
    case_actions,
    case_text,
    custody_text,
    outcome_keyboard,
    queue_screen,
)
from storage import audit
from storage.crypto import KeyRing
from storage.evidence import EvidenceRepository
from storage.models import Case, EvidenceFile, User

if TYPE_CHECKING:
    from bot.background import BackgroundTasks

NOT_AVAILABLE = N_("This case does not exist or is not available to you.")


class StaffInput(StatesGroup):
    note = State()
    question = State()


async def _deny(target: Message | CallbackQuery) -> None:
    if isinstance(target, CallbackQuery):
        await target.answer(_(NOT_AVAILABLE), show_alert=True)
    else:
        await target.answer(_(NOT_AVAILABLE))


async def queue_command(
    message: Message,
    command: CommandObject,
    user: User,
    case_service: CaseService,
    case_views: CaseViews,
) -> None:
    mine = command.command == "mine"
    page = await case_service.queue(user, mine=mine, page=0)
    text, markup = queue_screen(page, mine, _)
    sent = await message.answer(text, reply_markup=markup)
    if page.items:  # region and agency of each case: content, so it leaves like a case view
        case_views.record(sent.message_id)


async def queue_nav(
    query: CallbackQuery, callback_data: QueueNav, user: User, case_service: CaseService
) -> None:
    page = await case_service.queue(user, mine=callback_data.mine, page=callback_data.page)
    text, markup = queue_screen(page, callback_data.mine, _)
    await query.answer()
    if isinstance(query.message, Message):
        # A double tap asks for the page already shown: "message is not modified".
        with contextlib.suppress(TelegramBadRequest):
            await query.message.edit_text(text, reply_markup=markup)


async def show_case(
    bot: Bot,
    chat_id: int,
    user: User,
    reference: str,
    case_service: CaseService,
    keyring: KeyRing,
    views: CaseViews,
) -> bool:
    try:
        view = await case_service.open_case(user, reference)
    except AccessDenied:
        return False
    except LookupError:
        await bot.send_message(chat_id, _("This case has been deleted."))
        return True
    name = staff_name(keyring, view.assignee) if view.assignee else None
    files = await EvidenceRepository(case_service.session).list_for_case(
        view.case.id, await case_service.cases.data_key(view.case)
    )
    chunks = case_text(view, name, _, files)

    def allowed(action: Action, case: object) -> bool:
        return case_service.allowed(user, action, view.case)

    # The case_view entry is on record before the first byte of the case leaves:
    # a failure on a later part (a 429) must not roll it back.
    await case_service.session.commit()
    for chunk in chunks[:-1]:
        views.record((await bot.send_message(chat_id, chunk)).message_id)
    last = await bot.send_message(
        chat_id, chunks[-1], reply_markup=case_actions(view.case, allowed, _, files)
    )
    views.record(last.message_id)
    return True


async def evidence_button(
    query: CallbackQuery,
    callback_data: EvidenceGet,
    user: User,
    case_service: CaseService,
    keyring: KeyRing,
    bot: Bot,
    session: AsyncSession,
    case_views: CaseViews,
) -> None:
    """Decrypt one evidence file and send it to the assigned lawyer or a coordinator."""
    try:
        evidence_id = uuid.UUID(hex=callback_data.file)
    except ValueError:
        await _deny(query)
        return
    row = await session.get(EvidenceFile, evidence_id)
    case = await session.get(Case, row.case_id) if row is not None and row.submitted else None
    if (
        row is None
        or case is None
        or case.shredded_at is not None
        or not case_service.allowed(user, Action.GET_EVIDENCE, case)
    ):
        await _deny(query)
        return
    try:
        data_key = await case_service.cases.data_key(case)
        data, raw_meta = EvidenceRepository.open(row, data_key)
    except LookupError:
        await _deny(query)
        return
    meta = EvidenceMeta.from_bytes(raw_meta)
    await audit.record(
        session,
        keyring,
        "evidence_delivery",
        actor_id=user.id,
        case_id=case.id,
        subject_id=row.id,
    )
    # The delivery is on record before the file leaves.
    await session.commit()
    await query.answer()
    caption = (
        f"{case.reference} · {_(KIND_LABELS[meta.kind])} · {human_size(meta.size)}\n"
        + _("Received: {date}").format(date=f"{row.received_at:%d.%m.%Y %H:%M} UTC")
        + f"\nSHA-256: {EvidenceRepository.custody_hash(row, data_key, data).hex()}"
    )
    upload = BufferedInputFile(data, filename=meta.delivery_name(row.id.hex[:8]))
    chat_id = query.from_user.id
    if meta.kind is EvidenceKind.VOICE:
        sent = await bot.send_voice(chat_id, upload, caption=caption)
    else:
        # Photos go as documents too: sendPhoto would be re-compressed by Telegram
        # and the lawyer's copy would no longer match the custody hash.
        sent = await bot.send_document(chat_id, upload, caption=caption)
    # Beside the file: its capture metadata, signed receipt and custody history.
    history = await file_history(session, row)
    receipt = EvidenceRepository.receipt(row, data_key)
    custody = await bot.send_message(chat_id, custody_text(meta, receipt, history, _))
    # Recorded after the send: the delivery's own transaction is already committed.
    case_views.record(sent.message_id, custody.message_id)


async def case_command(
    message: Message,
    command: CommandObject,
    user: User,
    case_service: CaseService,
    keyring: KeyRing,
    bot: Bot,
    session: AsyncSession,
    case_views: CaseViews,
) -> None:
    if not command.args:
        await message.answer(_("Please add the case reference, for example: /case K7QD-M2PF"))
        return
    shown = await show_case(
        bot, message.chat.id, user, command.args, case_service, keyring, case_views
    )
    await session.commit()
    if not shown:
        await _deny(message)


async def case_button(
    query: CallbackQuery,
    callback_data: CaseAct,
    state: FSMContext,
    user: User,
    case_service: CaseService,
    keyring: KeyRing,
    bot: Bot,
    session: AsyncSession,
    background: BackgroundTasks,
    case_views: CaseViews,
) -> None:
    reference, act = callback_data.reference, callback_data.act
    chat_id = query.from_user.id
    try:
        if act == "open":
            await query.answer()
            shown = await show_case(
                bot, chat_id, user, reference, case_service, keyring, case_views
            )
            if not shown:
                await bot.send_message(chat_id, _(NOT_AVAILABLE))
            return
        if act == "take":
            case = await case_service.take(user, reference)
            await _done(
                query,
                session,
                background,
                _("The case {reference} is now yours.").format(reference=case.reference),
            )
            return
        if act.startswith("st_"):
            target = Status(act.removeprefix("st_"))
            case = await case_service.set_status(user, reference, target)
            await _done(query, session, background, _("Status changed."))
            return
        if act in ("note", "ask"):
            action = Action.ADD_NOTE if act == "note" else Action.ASK_REPORTER
            case = await case_service.find(user, reference, action)
            await state.set_state(StaffInput.note if act == "note" else StaffInput.question)
            await state.update_data(staff_case=case.reference)
            await query.answer()
            prompt = (
                _("Write the note in one message. Only staff will see it. /cancel to stop.")
                if act == "note"
                else _(
                    "Write your question to the reporter in one message. It will be sent "
                    "to them as it is. /cancel to stop."
                )
            )
            await bot.send_message(chat_id, prompt)
            return
        if act == "close":
            case = await case_service.find(user, reference, Action.CLOSE)
            await query.answer()
            await bot.send_message(
                chat_id, _("Choose the outcome:"), reply_markup=outcome_keyboard(case.reference, _)
            )
            return
        if act == "assign":
            case = await case_service.find(user, reference, Action.ASSIGN)
            await query.answer()
            await send_lawyer_choice(bot, chat_id, case.reference, case_service, keyring)
            return
    except (AccessDenied, ValueError):
        await _deny(query)
        return
    except WorkflowError as exc:
        await query.answer(_(exc.message), show_alert=True)
        return
    await _deny(query)


async def send_lawyer_choice(
    bot: Bot, chat_id: int, reference: str, case_service: CaseService, keyring: KeyRing
) -> None:
    rows = [
        [
            InlineKeyboardButton(
                text=staff_name(keyring, lawyer),
                callback_data=AssignTo(reference=reference, lawyer=lawyer.id.hex).pack(),
            )
        ]
        for lawyer in await case_service.lawyers()
    ]
    await bot.send_message(
        chat_id,
        _("Who should work on {reference}?").format(reference=reference),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


async def assign_button(
    query: CallbackQuery,
    callback_data: AssignTo,
    user: User,
    case_service: CaseService,
    session: AsyncSession,
    background: BackgroundTasks,
) -> None:
    async def change() -> Case:
        return await case_service.assign(
            user, callback_data.reference, uuid.UUID(hex=callback_data.lawyer)
        )

    await _apply(query, session, background, change, N_("The case {reference} has been assigned."))


async def outcome_button(
    query: CallbackQuery,
    callback_data: CaseOutcome,
    user: User,
    case_service: CaseService,
    session: AsyncSession,
    background: BackgroundTasks,
) -> None:
    async def change() -> Case:
        outcome = Outcome(callback_data.outcome)
        return await case_service.close(user, callback_data.reference, outcome)

    await _apply(query, session, background, change, N_("The case {reference} is closed."))


async def _apply(
    query: CallbackQuery,
    session: AsyncSession,
    background: BackgroundTasks,
    change: Callable[[], Awaitable[Case]],
    done: str,
) -> None:
    """Run a change pressed on a button; forged or refused presses change nothing."""
    try:
        case = await change()
    except (AccessDenied, ValueError):
        await _deny(query)
        return
    except WorkflowError as exc:
        await query.answer(_(exc.message), show_alert=True)
        return
    await _done(query, session, background, _(done).format(reference=case.reference))


async def _done(
    query: CallbackQuery, session: AsyncSession, background: BackgroundTasks, text: str
) -> None:
    await session.commit()
    background.wake_outbox()
    await query.answer()
    await query.bot.send_message(query.from_user.id, text)  # type: ignore[union-attr]


async def staff_text(
    message: Message,
    state: FSMContext,
    user: User,
    case_service: CaseService,
    session: AsyncSession,
    background: BackgroundTasks,
    case_views: CaseViews,
) -> None:
    data = await state.get_data()
    reference = str(data.get("staff_case", ""))
    writing_note = await state.get_state() == StaffInput.note.state
    await state.clear()
    try:
        if writing_note:
            await case_service.add_note(user, reference, message.text or "")
            reply = _("The note has been saved.")
        else:
            await case_service.ask_reporter(user, reference, message.text or "")
            reply = _("The question has been sent to the reporter.")
    except AccessDenied:
        await _deny(message)
        return
    except WorkflowError as exc:
        await message.answer(_(exc.message))
        return
    # What they typed is case content too: it leaves the chat like a case view.
    case_views.record(message.message_id)
    await session.commit()
    background.wake_outbox()
    await message.answer(reply)


async def extend_command(
    message: Message,
    command: CommandObject,
    user: User,
    case_service: CaseService,
    session: AsyncSession,
) -> None:
    reference, _sep, reason = (command.args or "").strip().partition(" ")
    try:
        case = await case_service.extend_retention(user, reference, reason)
    except AccessDenied:
        await _deny(message)
        return
    except WorkflowError as exc:
        await message.answer(_(exc.message))
        return
    await session.commit()
    assert case.retain_until is not None
    await message.answer(
        _("Case {reference} will be kept until {date}.").format(
            reference=case.reference, date=f"{case.retain_until:%d.%m.%Y}"
        )
    )


async def cancel_input(message: Message, state: FSMContext) -> None:
    await state.clear()
    await message.answer(_("Cancelled."))


async def leave_input(message: Message, state: FSMContext) -> None:
    """Any other command ends the note or question being written and runs as a command.

    Without this, "/mine" typed after pressing "Ask the reporter" was sent to
    the reporter as the question.
    """
    await state.clear()
    raise SkipHandler


def build_router() -> Router:
    router = Router(name="staff-cases")
    router.message.filter(STAFF)
    router.callback_query.filter(STAFF)
    router.message.register(cancel_input, Command("cancel"), StaffInput.note)
    router.message.register(cancel_input, Command("cancel"), StaffInput.question)
    router.message.register(leave_input, StaffInput.note, F.text.startswith("/"))
    router.message.register(leave_input, StaffInput.question, F.text.startswith("/"))
    router.message.register(staff_text, StaffInput.note, F.text, ~F.text.startswith("/"))
    router.message.register(staff_text, StaffInput.question, F.text, ~F.text.startswith("/"))
    router.message.register(queue_command, Command("queue", "mine"))
    router.message.register(case_command, Command("case"))
    router.message.register(extend_command, Command("extend"))
    router.callback_query.register(queue_nav, QueueNav.filter())
    router.callback_query.register(case_button, CaseAct.filter())
    router.callback_query.register(assign_button, AssignTo.filter())
    router.callback_query.register(outcome_button, CaseOutcome.filter())
    router.callback_query.register(evidence_button, EvidenceGet.filter())
    return router
