"""Who may do what to which case: the one place that decides.

Every staff handler and every button press asks :func:`is_allowed` on the
server, because commands and callback data come from the client and can be
forged.
"""

from __future__ import annotations

from enum import StrEnum

from bot.notifications import Role
from storage.crypto import KeyRing
from storage.models import Case, User
from storage.roles import verified_role


class Action(StrEnum):
    VIEW_QUEUE = "view_queue"
    VIEW_CASE = "view_case"
    TAKE = "take"
    CHANGE_STATUS = "change_status"
    ADD_NOTE = "add_note"
    ASK_REPORTER = "ask_reporter"
    CLOSE = "close"
    ASSIGN = "assign"
    STATS = "stats"
    AUDIT = "audit"
    MANAGE_STAFF = "manage_staff"
    EXTEND_RETENTION = "extend_retention"
    BAN_REPORTER = "ban_reporter"
    # Receive an evidence file (decrypted and sent into the chat): the assigned
    # lawyer or a coordinator only, never a lawyer who merely may view the case.
    GET_EVIDENCE = "get_evidence"
    # A Word dossier of the whole case (/dossier): whoever may open the case.
    EXPORT_DOSSIER = "export_dossier"
    # Answer news on a closed case: reopen it or keep it closed.
    REOPEN = "reopen"
    # Be sent a notice about a case (the outbox asks just before sending): the
    # assigned lawyer or a coordinator, as for the evidence.
    RECEIVE_NOTICE = "receive_notice"


COORDINATOR_ONLY = frozenset(
    {
        Action.ASSIGN,
        Action.STATS,
        Action.AUDIT,
        Action.MANAGE_STAFF,
        Action.BAN_REPORTER,
        Action.REOPEN,
    }
)
# The assigned lawyer is the one warned before a closed case is shredded, so
# they may also extend its retention (/extend).
ON_OWN_CASES = frozenset(
    {
        Action.CHANGE_STATUS,
        Action.ADD_NOTE,
        Action.ASK_REPORTER,
        Action.CLOSE,
        Action.EXTEND_RETENTION,
        Action.GET_EVIDENCE,
        Action.RECEIVE_NOTICE,
    }
)


STAFF_ROLES = frozenset({Role.LAWYER.value, Role.COORDINATOR.value})


def is_allowed(
    actor: User | None,
    action: Action,
    case: Case | None = None,
    *,
    keyring: KeyRing,
    self_assign: bool = True,
) -> bool:
    # The role counts only if its MAC holds: a role written into the database by
    # someone without the key file is no role.
    role = verified_role(keyring, actor) if actor is not None else None
    if actor is None or role not in STAFF_ROLES:
        return False
    if role == Role.COORDINATOR.value:
        return True
    if action in COORDINATOR_ONLY:
        return False
    if action is Action.VIEW_QUEUE:
        return True
    if case is None:
        return False
    own = case.assignee_id == actor.id
    unassigned = case.assignee_id is None and case.status != "closed"
    if action in (Action.VIEW_CASE, Action.EXPORT_DOSSIER):
        return own or (unassigned and self_assign)
    if action is Action.TAKE:
        return unassigned and self_assign
    if action in ON_OWN_CASES:
        return own
    return False
