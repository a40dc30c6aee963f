"""Staff screens: the queue, a whole case, the audit trail, in the viewer's language."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.capture import CAPTURE_LABELS
from bot.cases.followups import NEWS_MESSAGE
from bot.cases.policy import Action
from bot.cases.service import CaseView, QueuePage
from bot.cases.workflow import OUTCOME_LABELS, STATUS_LABELS, TRANSITIONS, Status
from bot.evidence import KIND_LABELS, EvidenceKind, EvidenceMeta, human_size
from bot.intake.flow import questionnaire_for
from bot.intake.news import NEWS_LABELS, URGENT_NEWS, NewsRecord
from bot.questionnaire import SECTION_TITLES, summarise_for_review
from bot.text import N_
from handlers.reporter.render import render_value
from handlers.staff.callbacks import CaseAct, CaseOutcome, EvidenceGet, QueueNav
from storage.evidence import StoredEvidence
from storage.models import AuditEntry, Case, User, utcnow

Translate = Callable[[str], str]
Allowed = Callable[[Action, Case | None], bool]
MESSAGE_LIMIT = 3800


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


def age(created: datetime, _: Translate, now: datetime | None = None) -> str:
    hours = int(((now or utcnow()) - created).total_seconds() // 3600)
    if hours < 48:
        return _(N_("{hours} h")).format(hours=hours)
    return _(N_("{days} d")).format(days=hours // 24)


def _label(question_id: str, value: object, _: Translate) -> str:
    question = questionnaire_for(None).get(question_id)
    if question is None or value is None:
        return "—"
    return render_value(question, value, _) or "—"


def status_label(status: str, _: Translate) -> str:
    return _(STATUS_LABELS[Status(status)]) if status in Status._value2member_map_ else status


def queue_screen(
    page: QueuePage, mine: bool, _: Translate
) -> tuple[str, InlineKeyboardMarkup | None]:
    title = _(N_("My cases")) if mine else _(N_("Queue"))
    if not page.items:
        return f"{title}\n\n{_(N_('There are no open cases.'))}", None
    lines = [f"{title} ({page.page + 1}/{page.pages})", ""]
    rows: list[list[InlineKeyboardButton]] = []
    for item in page.items:
        case = item.case
        mark = "🔴 " if case.urgent else ""
        lines.append(
            f"{mark}{case.reference} · {age(case.created_at, _)} · "
            f"{_label('region', item.region, _)} · {_label('agency', item.agency, _)} · "
            f"{status_label(case.status, _)}"
        )
        rows.append([_button(case.reference, CaseAct(reference=case.reference, act="open").pack())])
    nav = []
    if page.page > 0:
        nav.append(_button("◀", QueueNav(mine=mine, page=page.page - 1).pack()))
    if page.page + 1 < page.pages:
        nav.append(_button("▶", QueueNav(mine=mine, page=page.page + 1).pack()))
    rows.append(nav)
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=[r for r in rows if r])


MESSAGE_KINDS = {
    "note": N_("Internal note"),
    "question": N_("Question to the reporter"),
    "reply": N_("Reply from the reporter"),
    NEWS_MESSAGE: N_("News from the reporter"),
}


def news_body(sealed_text: str, files: list[StoredEvidence], _: Translate) -> str:
    """News the reporter added: the kind, their words, and which of the files came with it."""
    record = NewsRecord.from_json(sealed_text)
    if record is None:
        return sealed_text
    lines = [("🔴 " if record.kind in URGENT_NEWS else "") + _(NEWS_LABELS[record.kind])]
    if record.words:
        lines.append(record.words)
    numbers = {item.id.hex: number for number, item in enumerate(files, start=1)}
    attached = [str(numbers[f]) for f in record.files if f in numbers]
    if attached:
        lines.append(_(N_("Files: {numbers}")).format(numbers=", ".join(attached)))
    return "\n".join(lines)


def evidence_lines(files: list[StoredEvidence], _: Translate) -> str:
    """The case's files with their custody data: kind, size, time received, SHA-256."""
    lines = [_(N_("Files ({count}):")).format(count=len(files))]
    for number, item in enumerate(files, start=1):
        meta = EvidenceMeta.from_bytes(item.meta)
        name = f" «{meta.file_name}»" if meta.file_name else ""
        lines.append(
            f"{number}. {_(KIND_LABELS[meta.kind])}{name} · {human_size(meta.size)} · "
            + _(N_("received {date}")).format(date=f"{item.received_at:%d.%m.%Y %H:%M} UTC")
        )
        if meta.caption:
            lines.append(f"   {meta.caption}")
        lines.append(f"   SHA-256: {item.sha256.hex()}")
        capture = capture_text(meta, _)
        if capture:
            lines.append(f"   {capture}")
    return "\n".join(lines)


def capture_text(meta: EvidenceMeta, _: Translate) -> str:
    """The file's capture metadata for staff, or why there is none."""
    if meta.capture is None:
        return ""  # stored before capture metadata was read
    if not meta.capture:
        if meta.kind is EvidenceKind.PHOTO:
            return _(N_("Capture metadata: none (a photo sent the ordinary way loses it)"))
        return _(N_("Capture metadata: none in the file"))
    found = [
        f"{_(label)} {meta.capture[key]}"
        for key, label in CAPTURE_LABELS.items()
        if key in meta.capture
    ]
    return _(N_("Capture metadata: {found}")).format(found="; ".join(found))


def custody_text(
    meta: EvidenceMeta, receipt: str | None, history: Sequence[AuditEntry], _: Translate
) -> str:
    """What goes beside a delivered file: capture metadata, receipt, custody history."""
    parts = [capture_text(meta, _)] if meta.capture is not None else []
    if receipt is not None:
        parts.append(_(N_("Custody receipt (check it with intake-bot verify-receipt):")))
        parts.append(receipt)
    parts.append(_(N_("Custody history:")))
    parts.extend(
        f"{entry.at:%d.%m.%Y %H:%M} UTC · {audit_action(entry.action, _)}" for entry in history
    )
    return "\n".join(parts)


def evidence_buttons(files: list[StoredEvidence], _: Translate) -> list[list[InlineKeyboardButton]]:
    return [
        [
            _button(
                _(N_("Receive file {number}")).format(number=number),
                EvidenceGet(file=item.id.hex).pack(),
            )
        ]
        for number, item in enumerate(files, start=1)
    ]


def case_text(
    view: CaseView,
    assignee_name: str | None,
    _: Translate,
    files: list[StoredEvidence] | None = None,
) -> list[str]:
    """The whole case as plain text, split into phone-sized messages."""
    case = view.case
    q = questionnaire_for(case.questionnaire_version)
    head = [
        f"{'🔴 ' if case.urgent else ''}{case.reference} · {status_label(case.status, _)}",
        _(N_("Received: {date}")).format(date=f"{case.created_at:%d.%m.%Y %H:%M} UTC"),
        _(N_("Lawyer: {name}")).format(name=assignee_name or "—"),
    ]
    if case.outcome:
        head.append(_(OUTCOME_LABELS.get(case.outcome, case.outcome)))  # type: ignore[call-overload]
    if not case.contact_consent:
        head.append(_(N_("The reporter did not agree to be contacted.")))
    if case.reporter_index is None:
        head.append(_(N_("The reporter is no longer connected to this case.")))
    blocks = ["\n".join(head)]
    section = None
    for item in summarise_for_review(q, view.answers):
        if item.section != section:
            section = item.section
            blocks.append(f"— {_(SECTION_TITLES[item.section])} —")
        blocks.append(
            f"{_(item.question.prompt)}\n  {render_value(item.question, item.value, _, limit=None)}"
        )
    for note in view.messages:
        kind = _(MESSAGE_KINDS.get(note.kind, note.kind))
        body = news_body(note.text, files or [], _) if note.kind == NEWS_MESSAGE else note.text
        blocks.append(f"[{kind} · {note.created_at:%d.%m %H:%M}]\n{body}")
    if files:
        blocks.append(evidence_lines(files, _))
    chunks: list[str] = []
    current = ""
    for block in blocks:
        while len(block) > MESSAGE_LIMIT:
            chunks.append(block[:MESSAGE_LIMIT])
            block = block[MESSAGE_LIMIT:]
        if current and len(current) + len(block) + 2 > MESSAGE_LIMIT:
            chunks.append(current)
            current = block
        else:
            current = f"{current}\n\n{block}" if current else block
    chunks.append(current)
    return chunks


def case_actions(
    case: Case,
    allowed: Allowed,
    _: Translate,
    files: list[StoredEvidence] | None = None,
) -> InlineKeyboardMarkup | None:
    def act(label: str, name: str) -> InlineKeyboardButton:
        return _button(label, CaseAct(reference=case.reference, act=name).pack())

    rows: list[list[InlineKeyboardButton]] = []
    if allowed(Action.TAKE, case):
        rows.append([act(_(N_("Take this case")), "take")])
    if allowed(Action.ASSIGN, case) and case.status != Status.CLOSED.value:
        rows.append([act(_(N_("Assign to a lawyer")), "assign")])
    if allowed(Action.CHANGE_STATUS, case) and case.status in Status._value2member_map_:
        # Closing needs an outcome, "waiting" comes with a question, "assigned" with a lawyer.
        targets = TRANSITIONS[Status(case.status)] - {
            Status.CLOSED,
            Status.AWAITING_REPORTER,
            Status.ASSIGNED,
        }
        rows.append(
            [act(_(STATUS_LABELS[target]), f"st_{target.value}") for target in sorted(targets)]
        )
    if allowed(Action.ADD_NOTE, case):
        rows.append([act(_(N_("Add a note")), "note")])
    if (
        allowed(Action.ASK_REPORTER, case)
        and case.status != Status.CLOSED.value
        and case.contact_consent
    ):
        rows.append([act(_(N_("Ask the reporter")), "ask")])
    if allowed(Action.CLOSE, case) and case.status != Status.CLOSED.value:
        rows.append([act(_(N_("Close the case")), "close")])
    if files and allowed(Action.GET_EVIDENCE, case):
        rows.extend(evidence_buttons(files, _))
    rows = [row for row in rows if row]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def outcome_keyboard(reference: str, _: Translate) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(_(label), CaseOutcome(reference=reference, outcome=outcome.value).pack())]
            for outcome, label in OUTCOME_LABELS.items()
        ]
    )


def staff_label(user: User, name: str, _: Translate) -> str:
    role = _(N_("coordinator")) if user.role == "coordinator" else _(N_("lawyer"))
    return f"{name} ({role})"


#: How the audit trail reads to coordinators; the stored codes stay language-free.
AUDIT_ACTION_LABELS = {
    "case_view": N_("opened the case"),
    "case_assign": N_("assigned the case"),
    "status_change": N_("changed the status"),
    "note_add": N_("added a note"),
    "question_ask": N_("asked the reporter"),
    "reply_received": N_("the reporter replied"),
    "evidence_received": N_("a file was received"),
    "evidence_delivery": N_("received a file"),
    "evidence_receipt": N_("custody receipt signed"),
    "dossier_export": N_("exported a dossier"),
    "retention_warning": N_("deletion warning sent"),
    "retention_extend": N_("kept the case longer"),
    "case_shred_retention": N_("deleted at the end of retention"),
    "case_withdraw": N_("withdrawn by the reporter"),
    "reporter_forget": N_("the reporter disconnected"),
    "reporter_ban": N_("blocked the reporter"),
    "audit_view": N_("viewed the audit trail"),
    "news_received": N_("the reporter sent news"),
    "case_reopen": N_("reopened the case"),
    "reopen_declined": N_("kept the case closed"),
}


def audit_action(action: str, _: Translate) -> str:
    label = AUDIT_ACTION_LABELS.get(action)
    return _(label) if label else action
