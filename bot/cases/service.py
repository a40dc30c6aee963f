"""What staff do to cases: every step checks the policy, records events and the
audit trail, and queues notifications, all in the caller's transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cases.policy import Action, is_allowed
from bot.cases.workflow import Outcome, Status, WorkflowError, check_transition
from bot.custody import issue_receipts
from bot.notifications import Notice, NoticeKind, Role, coordinators, enqueue
from bot.text import N_
from storage import audit
from storage.crypto import DataKey, FieldContext, KeyRing
from storage.models import Case, CaseEvent, CaseMessage, EvidenceFile, User, utcnow
from storage.references import normalise_reference
from storage.repositories import CaseRepository, UserRepository

MESSAGE_LIMIT = 3000
#: The case event of a reporter's answer; a reporter is never stored as an actor.
REPORTER_ANSWERED = "reporter_answered"


def message_context(message_id: uuid.UUID) -> FieldContext:
    """The associated data a case message (note, question, reply, news) is sealed with."""
    return FieldContext("case_messages", "body_sealed", message_id)


class AccessDenied(Exception):
    """Unknown case or not allowed: the same answer, so existence does not leak."""


@dataclass(frozen=True, slots=True)
class CaseNote:
    kind: str
    author_id: uuid.UUID | None
    created_at: Any
    text: str


@dataclass(frozen=True, slots=True)
class CaseView:
    case: Case
    answers: dict[str, Any]
    messages: list[CaseNote]
    assignee: User | None


@dataclass(frozen=True, slots=True)
class QueueItem:
    case: Case
    region: Any
    agency: Any


@dataclass(frozen=True, slots=True)
class QueuePage:
    items: list[QueueItem]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


class CaseService:
    def __init__(
        self,
        session: AsyncSession,
        keyring: KeyRing,
        *,
        self_assign: bool,
        retention_days: int = 180,
    ) -> None:
        self.session = session
        self.keyring = keyring
        self.self_assign = self_assign
        self.retention_days = retention_days
        self.cases = CaseRepository(session, keyring)
        self.users = UserRepository(session, keyring)

    # Access ------------------------------------------------------------------
    def allowed(self, actor: User, action: Action, case: Case | None = None) -> bool:
        return is_allowed(actor, action, case, keyring=self.keyring, self_assign=self.self_assign)

    async def find(self, actor: User, reference: str, action: Action) -> Case:
        normal = normalise_reference(reference)
        case = await self.cases.by_reference(normal) if normal else None
        if case is None or not self.allowed(actor, action, case):
            raise AccessDenied
        return case

    async def _audit(
        self,
        actor: User | None,
        action: str,
        case: Case | None = None,
        subject: uuid.UUID | None = None,
    ) -> None:
        await audit.record(
            self.session,
            self.keyring,
            action,
            actor_id=actor.id if actor else None,
            case_id=case.id if case else None,
            subject_id=subject,
        )

    def _event(self, case: Case, actor: User | None, kind: str, **fields: Any) -> None:
        self.session.add(
            CaseEvent(case_id=case.id, actor_id=actor.id if actor else None, kind=kind, **fields)
        )

    def _first_action(self, case: Case) -> None:
        if case.first_action_at is None:
            case.first_action_at = utcnow()

    async def _reporter(self, case: Case) -> User | None:
        if case.reporter_index is None:
            return None
        return await self.users.by_index(case.reporter_index)

    async def _tell_reporter(self, case: Case, notice: Notice) -> None:
        if not case.contact_consent:
            return
        reporter = await self._reporter(case)
        if reporter is not None:
            enqueue(self.session, self.keyring, reporter, notice)

    # Reading -----------------------------------------------------------------
    async def open_case(
        self,
        actor: User,
        reference: str,
        *,
        action: Action = Action.VIEW_CASE,
        audit_as: str = "case_view",
    ) -> CaseView:
        """The whole case, decrypted for one person; every opening is audited
        (as ``audit_as``: a dossier is an export, not a view)."""
        case = await self.find(actor, reference, action)
        data_key = await self.cases.data_key(case)
        answers = await self.cases.answers(case)
        rows = await self.session.scalars(
            select(CaseMessage)
            .where(CaseMessage.case_id == case.id)
            .order_by(CaseMessage.created_at)
        )
        notes = [
            CaseNote(
                row.kind,
                row.author_id,
                row.created_at,
                data_key.open(row.body_sealed, message_context(row.id)).decode(),
            )
            for row in rows
        ]
        assignee = await self.session.get(User, case.assignee_id) if case.assignee_id else None
        await self._audit(actor, audit_as, case)
        return CaseView(case, answers, notes, assignee)

    async def events(self, case: Case) -> list[CaseEvent]:
        """The case's workflow steps, oldest first (no content)."""
        found = await self.session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.at)
        )
        return list(found.all())

    async def queue(self, actor: User, *, mine: bool, page: int, page_size: int = 5) -> QueuePage:
        if not self.allowed(actor, Action.VIEW_QUEUE):
            raise AccessDenied
        open_cases = Case.status != Status.CLOSED.value
        if mine:
            scope = and_(open_cases, Case.assignee_id == actor.id)
        elif actor.role == Role.COORDINATOR.value:
            scope = open_cases
        else:
            # What the lawyer may open (policy.is_allowed, VIEW_CASE): their own
            # cases, and unassigned ones only where lawyers take cases themselves.
            may_open = Case.assignee_id == actor.id
            if self.self_assign:
                may_open = or_(Case.assignee_id.is_(None), may_open)
            scope = and_(open_cases, may_open)
        total = int(
            await self.session.scalar(select(func.count()).select_from(Case).where(scope)) or 0
        )
        page = max(0, min(page, max(0, -(-total // page_size) - 1)))
        found = await self.session.scalars(
            select(Case)
            .where(scope)
            .order_by(Case.urgent.desc(), Case.created_at, Case.id)
            .offset(page * page_size)
            .limit(page_size)
        )
        items = []
        for case in found:
            try:
                answers = await self.cases.answers(case)
            except LookupError:
                answers = {}
            items.append(QueueItem(case, answers.get("region"), answers.get("agency")))
        return QueuePage(items, total, page, page_size)

    async def lawyers(self) -> list[User]:
        found = await self.session.scalars(
            select(User)
            .where(User.role.in_((Role.LAWYER.value, Role.COORDINATOR.value)))
            .order_by(User.created_at)
        )
        return list(found)

    # Changing ----------------------------------------------------------------
    async def take(self, actor: User, reference: str) -> Case:
        case = await self.find(actor, reference, Action.TAKE)
        return await self._assign(actor, case, actor)

    async def assign(self, actor: User, reference: str, lawyer_id: uuid.UUID) -> Case:
        case = await self.find(actor, reference, Action.ASSIGN)
        lawyer = await self.session.get(User, lawyer_id)
        if lawyer is None or lawyer.role not in (Role.LAWYER.value, Role.COORDINATOR.value):
            raise WorkflowError(N_("This person is not a lawyer of the coalition."))
        return await self._assign(actor, case, lawyer)

    async def _assign(self, actor: User, case: Case, lawyer: User) -> Case:
        if case.status == Status.CLOSED.value:
            raise WorkflowError(N_("This case is closed."))
        if case.assignee_id == lawyer.id:
            raise WorkflowError(N_("The case is already assigned to this lawyer."))
        previous = case.assignee_id
        # Two lawyers pressing "Take" at once both read the case unassigned: only the
        # UPDATE that still finds it as it was read wins, the other is refused.
        claimed = await self.session.execute(
            update(Case)
            .where(
                Case.id == case.id,
                Case.assignee_id.is_(None) if previous is None else Case.assignee_id == previous,
                Case.status != Status.CLOSED.value,
            )
            .values(assignee_id=lawyer.id)
            .execution_options(synchronize_session=False)
        )
        if not getattr(claimed, "rowcount", 0):
            raise AccessDenied
        first_assignment = previous is None
        case.assignee_id = lawyer.id
        from_status = case.status
        if case.status == Status.NEW.value:
            case.status = Status.ASSIGNED.value
        if actor.id == lawyer.id:
            self._first_action(case)
        self._event(case, actor, "assign", from_status=from_status, to_status=case.status)
        await self._audit(actor, "case_assign", case, lawyer.id)
        if actor.id != lawyer.id:
            enqueue(
                self.session,
                self.keyring,
                lawyer,
                Notice(NoticeKind.ASSIGNED_TO_YOU, case.reference),
            )
        if first_assignment:
            await self._tell_reporter(case, Notice(NoticeKind.LAWYER_ASSIGNED, case.reference))
        return case

    async def set_status(self, actor: User, reference: str, target: Status) -> Case:
        if target is Status.CLOSED:
            raise WorkflowError(N_("To close a case, choose an outcome."))
        case = await self.find(actor, reference, Action.CHANGE_STATUS)
        if target in (Status.ASSIGNED, Status.AWAITING_REPORTER):
            # Only assign()/take() make a case "assigned": they name the lawyer; only
            # a question makes it wait for the reporter: it opens the Reply button.
            raise WorkflowError(N_("This change of status is not possible now."))
        check_transition(case.status, target)
        await self._transition(actor, case, target)
        await self._tell_reporter(
            case, Notice(NoticeKind.STATUS_CHANGED, case.reference, status=target.value)
        )
        return case

    async def _transition(
        self, actor: User, case: Case, target: Status, outcome: Outcome | None = None
    ) -> None:
        from_status = case.status
        case.status = target.value
        self._first_action(case)
        self._event(
            case,
            actor,
            "status",
            from_status=from_status,
            to_status=target.value,
            outcome=outcome.value if outcome else None,
        )
        await self._audit(actor, "status_change", case)

    async def close(self, actor: User, reference: str, outcome: Outcome) -> Case:
        case = await self.find(actor, reference, Action.CLOSE)
        check_transition(case.status, Status.CLOSED)
        case.outcome = outcome.value
        case.closed_at = utcnow()
        await self._transition(actor, case, Status.CLOSED, outcome)
        await self._tell_reporter(case, Notice(NoticeKind.CASE_CLOSED, case.reference))
        return case

    async def _add_message(self, case: Case, kind: str, author: User | None, text: str) -> None:
        body = text.strip()[:MESSAGE_LIMIT]
        if not body:
            raise WorkflowError(N_("The message is empty."))
        data_key = await self.cases.data_key(case)
        message_id = uuid.uuid4()
        self.session.add(
            CaseMessage(
                id=message_id,
                case_id=case.id,
                kind=kind,
                author_id=author.id if author else None,
                body_sealed=data_key.seal(body.encode(), message_context(message_id)),
            )
        )

    async def add_note(self, actor: User, reference: str, text: str) -> Case:
        case = await self.find(actor, reference, Action.ADD_NOTE)
        await self._add_message(case, "note", actor, text)
        self._first_action(case)
        await self._audit(actor, "note_add", case)
        return case

    async def ask_reporter(self, actor: User, reference: str, text: str) -> Case:
        case = await self.find(actor, reference, Action.ASK_REPORTER)
        if case.status == Status.CLOSED.value:
            raise WorkflowError(N_("This case is closed."))
        if not case.contact_consent:
            raise WorkflowError(N_("The reporter did not agree to be contacted."))
        reporter = await self._reporter(case)
        if reporter is None:
            raise WorkflowError(N_("The reporter is no longer connected to this case."))
        await self._add_message(case, "question", actor, text)
        if case.status != Status.AWAITING_REPORTER.value:
            check_transition(case.status, Status.AWAITING_REPORTER)
            await self._transition(actor, case, Status.AWAITING_REPORTER)
        await self._audit(actor, "question_ask", case)
        enqueue(
            self.session,
            self.keyring,
            reporter,
            Notice(NoticeKind.LAWYER_QUESTION, case.reference, text=text.strip()[:MESSAGE_LIMIT]),
        )
        return case

    async def record_reply(self, reporter: User, reference: str, text: str) -> Case:
        """The reporter's answer to a lawyer's question, only on their own open case.

        The reporter is never stored as an actor or author (no id): the message
        kind, the event kind and the audit action say it was the reporter.
        """
        case = await self.reply_case(reporter, reference)
        await self._add_message(case, "reply", None, text)
        await self._reporter_answered(case)
        await self._audit(None, "reply_received", case)
        notice = Notice(
            NoticeKind.REPORTER_REPLIED, case.reference, text=text.strip()[:MESSAGE_LIMIT]
        )
        lawyer = await self.session.get(User, case.assignee_id) if case.assignee_id else None
        if lawyer is not None and self.allowed(lawyer, Action.VIEW_CASE, case):
            enqueue(self.session, self.keyring, lawyer, notice)
        else:
            # Nobody on the staff works on the case (never assigned, or the lawyer's
            # role was revoked): the reply goes to the coordinators, never to a
            # former lawyer.
            for coordinator in await coordinators(self.session):
                enqueue(self.session, self.keyring, coordinator, notice)
        return case

    async def _reporter_answered(self, case: Case) -> None:
        """The question has its answer: the case moves on, by the reporter (no id)."""
        from_status = case.status
        case.status = Status.IN_PROGRESS.value
        self._event(case, None, REPORTER_ANSWERED, from_status=from_status, to_status=case.status)

    async def reply_case(self, reporter: User, reference: str) -> Case:
        """The reporter's own case while a staff question waits for its answer.

        Only a question puts a case in "awaiting reporter" and the answer (one
        text or one file) takes it out, so the Reply button works once per
        question; a forged or stale press finds no waiting question.
        """
        normal = normalise_reference(reference)
        case = await self.cases.by_reference(normal) if normal else None
        if (
            case is None
            or case.reporter_index != reporter.tg_index
            or case.status != Status.AWAITING_REPORTER.value
            or case.shredded_at is not None
        ):
            raise AccessDenied
        return case

    async def record_file_reply(
        self, reporter: User, case: Case, row: EvidenceFile, data_key: DataKey
    ) -> None:
        """The reporter sent a file in reply (already stored as evidence of ``case``):
        its custody receipt is signed, the lawyer told."""
        await issue_receipts(self.session, self.keyring, case, data_key, [row])
        await self._reporter_answered(case)
        await self._audit(None, "evidence_received", case)
        notice = Notice(NoticeKind.REPORTER_SENT_FILE, case.reference)
        lawyer = await self.session.get(User, case.assignee_id) if case.assignee_id else None
        if lawyer is not None and self.allowed(lawyer, Action.VIEW_CASE, case):
            enqueue(self.session, self.keyring, lawyer, notice)
        else:
            for coordinator in await coordinators(self.session):
                enqueue(self.session, self.keyring, coordinator, notice)

    async def extend_retention(self, actor: User, reference: str, reason: str) -> Case:
        """Keep a closed case longer than the retention period; the reason is sealed."""
        from bot.retention import EXTENSION, deadline

        case = await self.find(actor, reference, Action.EXTEND_RETENTION)
        due = deadline(case, timedelta(days=self.retention_days))
        if due is None or case.shredded_at is not None:
            raise WorkflowError(N_("Only a closed case can be kept longer."))
        if not reason.strip():
            raise WorkflowError(N_("Please give the reason after the reference."))
        await self._add_message(case, "retention", actor, reason)
        case.retain_until = max(due, utcnow()) + EXTENSION
        case.retention_warned_at = None
        await self._audit(actor, "retention_extend", case)
        return case
