"""Case statuses, the transitions allowed between them, and closing outcomes."""

from __future__ import annotations

from enum import StrEnum

from bot.text import N_


class Status(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    AWAITING_REPORTER = "awaiting_reporter"
    CLOSED = "closed"


class Outcome(StrEnum):
    """What the coalition reports at the end of a case."""

    CONSULTATION = "consultation"
    REPRESENTATION = "representation"
    PROSECUTOR_COMPLAINT = "prosecutor"
    CRIMINAL_CASE = "criminal_case"
    REFERRED = "referred"
    NO_CONTACT = "no_contact"
    WITHDRAWN = "withdrawn"
    OUTSIDE_MANDATE = "out_of_mandate"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.NEW: frozenset({Status.ASSIGNED, Status.CLOSED}),
    Status.ASSIGNED: frozenset({Status.IN_PROGRESS, Status.AWAITING_REPORTER, Status.CLOSED}),
    Status.IN_PROGRESS: frozenset({Status.AWAITING_REPORTER, Status.CLOSED}),
    Status.AWAITING_REPORTER: frozenset({Status.IN_PROGRESS, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}

STATUS_LABELS = {
    Status.NEW: N_("new"),
    Status.ASSIGNED: N_("assigned"),
    Status.IN_PROGRESS: N_("in progress"),
    Status.AWAITING_REPORTER: N_("waiting for the reporter"),
    Status.CLOSED: N_("closed"),
}

OUTCOME_LABELS = {
    Outcome.CONSULTATION: N_("Legal consultation given"),
    Outcome.REPRESENTATION: N_("Legal representation provided"),
    Outcome.PROSECUTOR_COMPLAINT: N_("Complaint filed with the prosecutor"),
    Outcome.CRIMINAL_CASE: N_("Criminal case opened (Article 143(1))"),
    Outcome.REFERRED: N_("Referred to another organisation"),
    Outcome.NO_CONTACT: N_("No contact with the reporter"),
    Outcome.WITHDRAWN: N_("Withdrawn by the reporter"),
    Outcome.OUTSIDE_MANDATE: N_("Outside the mandate"),
}


class WorkflowError(Exception):
    """A refused action; ``message`` is a msgid to show the staff member."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_transition(current: str, target: Status) -> None:
    try:
        source = Status(current)
    except ValueError:
        raise WorkflowError(N_("This case has an unknown status.")) from None
    if source is Status.CLOSED:
        raise WorkflowError(N_("This case is closed."))
    if target not in TRANSITIONS[source]:
        raise WorkflowError(N_("This change of status is not possible now."))
