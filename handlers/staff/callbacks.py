"""Callback data of staff buttons. All of it is client input: the handlers
re-check role and case access on the server for every press."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData


class QueueNav(CallbackData, prefix="qn"):
    mine: bool
    page: int


class CaseAct(CallbackData, prefix="ca"):
    reference: str
    act: str


class CaseOutcome(CallbackData, prefix="co"):
    reference: str
    outcome: str


class AssignTo(CallbackData, prefix="at"):
    reference: str
    lawyer: str  # the user's internal id (hex), never a Telegram id


class RevokeStaff(CallbackData, prefix="rs"):
    member: str


class EvidenceGet(CallbackData, prefix="ev"):
    file: str  # the evidence file's internal id (hex); checked against the case on press


class StaffPinAct(CallbackData, prefix="sp"):
    """A coordinator's press in /staff: ``restore`` a suspended role or ``reset`` a PIN."""

    member: str  # the user's internal id (hex)
    act: str
