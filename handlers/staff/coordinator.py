"""Coordinators: invitations, the staff list, revoking, assigning, statistics, audit."""

from __future__ import annotations

import logging
import uuid

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases import stats as case_stats
from bot.cases.policy import Action
from bot.cases.service import AccessDenied, CaseService
from bot.cases.staff import ban_reporter, create_invite, revoke, staff_members, staff_name
from bot.notifications import Role
from bot.staff_lock.lock import reset_pin, restore, suspended_reason
from bot.staff_lock.views import wipe_user
from handlers.staff.callbacks import RevokeStaff, StaffPinAct
from handlers.staff.cases import NOT_AVAILABLE, send_lawyer_choice
from handlers.staff.filters import COORDINATOR
from handlers.staff.menu import remove_staff_commands
from handlers.staff.render import audit_action, staff_label
from storage import audit
from storage.crypto import DecryptionError, KeyRing
from storage.models import Case, OutboxMessage, User
from storage.repositories import UserRepository

log = logging.getLogger("intake.stats")


async def invite_command(
    message: Message, user: User, session: AsyncSession, keyring: KeyRing, bot: Bot
) -> None:
    token = await create_invite(session, keyring, user)
    await session.commit()
    me = await bot.me()
    link = f"https://t.me/{me.username}?start={token}"
    await message.answer(
        _(
            "Send this link to the lawyer, through a safe channel. It works once and "
            "expires in 72 hours:\n{link}"
        ).format(link=link)
    )


async def staff_command(
    message: Message, user: User, session: AsyncSession, keyring: KeyRing
) -> None:
    members = await staff_members(session, keyring)
    undelivered = await session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.state == "dead")
    )
    lines = [_("Staff:")]
    rows: list[list[InlineKeyboardButton]] = []
    for member in members:
        label = staff_label(member.user, member.name, _)
        suspended = await suspended_reason(session, member.user.id)
        mark = " · " + _("access suspended") if suspended else ""
        lines.append(f"• {label}{mark}")
        if suspended:
            restore_text = _("Restore {name}").format(name=member.name)
            rows.append([_pin_button(restore_text, member.user, "restore")])
        if member.user.role == Role.LAWYER.value:
            reset_text = _("Reset the PIN of {name}").format(name=member.name)
            rows.append([_pin_button(reset_text, member.user, "reset")])
    if undelivered:
        lines += [
            "",
            _("Notifications that could not be delivered: {count}").format(count=undelivered),
        ]
    markup = InlineKeyboardMarkup(inline_keyboard=rows) if rows else None
    await message.answer("\n".join(lines), reply_markup=markup)


def _pin_button(text: str, member: User, act: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(
        text=text, callback_data=StaffPinAct(member=member.id.hex, act=act).pack()
    )


async def staff_pin_button(
    query: CallbackQuery,
    callback_data: StaffPinAct,
    user: User,
    session: AsyncSession,
    keyring: KeyRing,
) -> None:
    """Restore a suspended role, or clear a PIN so that it is chosen again."""
    try:
        member_id = uuid.UUID(hex=callback_data.member)
    except ValueError:
        await query.answer()
        return
    target = await session.get(User, member_id)
    if target is None or target.role is None or target.id == user.id:
        await query.answer(_("Nothing to change."), show_alert=True)
        return
    name = staff_name(keyring, target)
    if callback_data.act == "restore" and await restore(session, target):
        await audit.record(
            session, keyring, "staff_restore", actor_id=user.id, subject_id=target.id
        )
        done = _("{name} has access again.").format(name=name)
    elif callback_data.act == "reset" and target.role == Role.LAWYER.value:
        await reset_pin(session, target)
        await audit.record(session, keyring, "pin_reset", actor_id=user.id, subject_id=target.id)
        done = _("{name} will choose a new PIN at their next command.").format(name=name)
    else:
        await query.answer(_("Nothing to change."), show_alert=True)
        return
    await session.commit()
    await query.answer()
    await query.bot.send_message(query.from_user.id, done)  # type: ignore[union-attr]


async def revoke_command(
    message: Message, user: User, session: AsyncSession, keyring: KeyRing
) -> None:
    rows = [
        [
            InlineKeyboardButton(
                text=staff_label(member.user, member.name, _),
                callback_data=RevokeStaff(member=member.user.id.hex).pack(),
            )
        ]
        for member in await staff_members(session, keyring)
        if member.user.id != user.id
    ]
    if not rows:
        await message.answer(_("There is nobody else on the staff."))
        return
    await message.answer(
        _("Whose role should be removed? This takes effect at once."),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=rows),
    )


async def revoke_button(
    query: CallbackQuery,
    callback_data: RevokeStaff,
    user: User,
    session: AsyncSession,
    keyring: KeyRing,
    users: UserRepository,
    bot: Bot,
) -> None:
    try:
        member_id = uuid.UUID(hex=callback_data.member)
    except ValueError:
        await query.answer()
        return
    target = await revoke(session, keyring, user, member_id)
    if target is None:
        await query.answer(_("Nothing to change."), show_alert=True)
        return
    name = staff_name(keyring, target)
    # Every case message the bot can still delete leaves their chat.
    await wipe_user(session, keyring, bot, target)
    await remove_staff_commands(bot, users.chat_id(target))
    await query.answer()
    await bot.send_message(
        query.from_user.id, _("{name} is no longer on the staff.").format(name=name)
    )


async def assign_command(
    message: Message,
    command: CommandObject,
    user: User,
    case_service: CaseService,
    keyring: KeyRing,
    bot: Bot,
) -> None:
    case = await _case_or_refuse(message, command, user, case_service, Action.ASSIGN)
    if case is None:
        return
    await send_lawyer_choice(bot, message.chat.id, case.reference, case_service, keyring)


async def stats_command(
    message: Message, user: User, session: AsyncSession, keyring: KeyRing, i18n: I18n
) -> None:
    try:
        figures = await case_stats.compute(session, keyring)
    except DecryptionError:
        # Damaged or altered: no figures rather than wrong ones. The log tells the
        # administrator (docs/data-at-rest.md, stats_tally).
        log.error("/stats refused: the statistics tally does not open")
        await message.answer(
            _(
                "The figures cannot be shown: the stored statistics are damaged. "
                "Tell the administrator."
            )
        )
        return
    await audit.record(session, keyring, "stats_view", actor_id=user.id)
    await session.commit()
    await message.answer(case_stats.render_text(figures, _))
    chart = case_stats.render_png(figures, _)
    await message.answer_photo(BufferedInputFile(chart, filename="stats.png"))


async def audit_command(
    message: Message,
    command: CommandObject,
    user: User,
    case_service: CaseService,
    session: AsyncSession,
    keyring: KeyRing,
) -> None:
    case = await _case_or_refuse(message, command, user, case_service, Action.AUDIT)
    if case is None:
        return
    entries = await audit.trail_for_case(session, case.id)
    names: dict[uuid.UUID, str] = {}
    for entry in entries:
        if entry.actor_id and entry.actor_id not in names:
            actor = await session.get(User, entry.actor_id)
            names[entry.actor_id] = (
                staff_name(keyring, actor) if actor and actor.staff_name_sealed else _("reporter")
            )
    await audit.record(session, keyring, "audit_view", actor_id=user.id, case_id=case.id)
    await session.commit()
    lines = [_("Audit trail of {reference}:").format(reference=case.reference)]
    for entry in entries:
        if entry.action in audit.REPORTER_ACTIONS:
            who = _("reporter")  # stored without an id, by the kind of actor only
        else:
            who = names.get(entry.actor_id, "—") if entry.actor_id else "—"
        lines.append(f"{entry.at:%d.%m.%Y %H:%M} · {who} · {audit_action(entry.action, _)}")
    await message.answer("\n".join(lines)[:4000])


async def ban_command(
    message: Message,
    command: CommandObject,
    user: User,
    case_service: CaseService,
    session: AsyncSession,
    keyring: KeyRing,
) -> None:
    case = await _case_or_refuse(message, command, user, case_service, Action.BAN_REPORTER)
    if case is None:
        return
    if not await ban_reporter(session, keyring, user, case):
        await message.answer(_("The person behind this case cannot be blocked."))
        return
    await session.commit()
    await message.answer(
        _(
            "The person who sent {reference} is blocked: they get neutral replies and "
            "nothing of theirs is stored."
        ).format(reference=case.reference)
    )


async def _case_or_refuse(
    message: Message, command: CommandObject, user: User, service: CaseService, action: Action
) -> Case | None:
    """The case named in the command, or one refusal that does not reveal whether it exists."""
    try:
        return await service.find(user, command.args or "", action)
    except AccessDenied:
        await message.answer(_(NOT_AVAILABLE))
        return None


def build_router() -> Router:
    router = Router(name="staff-coordinator")
    router.message.filter(COORDINATOR)
    router.callback_query.filter(COORDINATOR)
    router.message.register(invite_command, Command("invite"))
    router.message.register(staff_command, Command("staff"))
    router.message.register(revoke_command, Command("revoke"))
    router.callback_query.register(revoke_button, RevokeStaff.filter())
    router.callback_query.register(staff_pin_button, StaffPinAct.filter())
    router.message.register(assign_command, Command("assign"))
    router.message.register(stats_command, Command("stats"))
    router.message.register(audit_command, Command("audit"))
    router.message.register(ban_command, Command("ban"))
    return router
