"""The staff core without Telegram: transitions, the access policy, statistics."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.cases import stats as case_stats
from bot.cases.policy import Action, is_allowed
from bot.cases.service import AccessDenied, CaseService
from bot.cases.workflow import (
    TRANSITIONS,
    Outcome,
    Status,
    WorkflowError,
    check_transition,
)
from storage.crypto import KeyRing
from storage.crypto.keyfile import KeyMaterial, write_key_file
from storage.models import Case, CaseEvent, User
from storage.roles import set_role
from tests.case_helpers import attach, make_case, make_people, run_cli, service
from tests.conftest import Database, close_database, open_database

# ---------------------------------------------------------------- transitions

#: The workflow as specified, written out independently of bot.cases.workflow.
ALLOWED = {
    (Status.NEW, Status.ASSIGNED),
    (Status.NEW, Status.CLOSED),
    (Status.ASSIGNED, Status.IN_PROGRESS),
    (Status.ASSIGNED, Status.AWAITING_REPORTER),
    (Status.ASSIGNED, Status.CLOSED),
    (Status.IN_PROGRESS, Status.AWAITING_REPORTER),
    (Status.IN_PROGRESS, Status.CLOSED),
    (Status.AWAITING_REPORTER, Status.IN_PROGRESS),
    (Status.AWAITING_REPORTER, Status.CLOSED),
}
PAIRS = [(source, target) for source in Status for target in Status]


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{s}->{t}" for s, t in PAIRS])
def test_every_transition(source: Status, target: Status) -> None:
    if (source, target) in ALLOWED:
        check_transition(source.value, target)
        assert target in TRANSITIONS[source]
        return
    with pytest.raises(WorkflowError) as refused:
        check_transition(source.value, target)
    expected = (
        "This case is closed."
        if source is Status.CLOSED
        else "This change of status is not possible now."
    )
    assert refused.value.message == expected


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(WorkflowError) as refused:
        check_transition("archived", Status.IN_PROGRESS)
    assert refused.value.message == "This case has an unknown status."


def test_every_status_has_a_rule() -> None:
    assert set(TRANSITIONS) == set(Status)


async def test_the_service_applies_the_same_transitions(
    database: Database, keyring: KeyRing
) -> None:
    """set_status on a real case, for every pair: moves, records an event, or refuses."""
    people = await make_people(database, keyring)
    reference = await make_case(database, keyring, people.reporter)
    for source in Status:
        for target in Status:
            async with service(database, keyring) as (cases, session):
                lawyer = await attach(session, people.lawyer)
                case = await cases.find(
                    await attach(session, people.coordinator), reference, Action.VIEW_CASE
                )
                case.status, case.assignee_id = source.value, lawyer.id
                case.closed_at = case.outcome = None
                await session.flush()
                if target is Status.CLOSED:
                    if source is Status.CLOSED:
                        with pytest.raises(WorkflowError):
                            await cases.close(lawyer, reference, Outcome.REFERRED)
                    else:
                        assert (source, target) in ALLOWED
                        closed = await cases.close(lawyer, reference, Outcome.REFERRED)
                        assert closed.status == "closed" and closed.closed_at is not None
                    with pytest.raises(WorkflowError):  # closing needs an outcome
                        await cases.set_status(lawyer, reference, target)
                elif target is Status.ASSIGNED:
                    # Only an assignment makes a case "assigned": it names the lawyer.
                    with pytest.raises(WorkflowError):
                        await cases.set_status(lawyer, reference, target)
                    if source is Status.NEW:
                        case.assignee_id = None
                        coordinator = await attach(session, people.coordinator)
                        moved = await cases.assign(coordinator, reference, lawyer.id)
                        assert (moved.status, moved.assignee_id) == ("assigned", lawyer.id)
                elif target is Status.AWAITING_REPORTER:
                    # Only a question makes a case wait: it opens the reporter's Reply button.
                    with pytest.raises(WorkflowError):
                        await cases.set_status(lawyer, reference, target)
                    if (source, target) in ALLOWED:
                        asked = await cases.ask_reporter(lawyer, reference, "Когда?")
                        assert asked.status == target.value
                elif (source, target) in ALLOWED:
                    moved = await cases.set_status(lawyer, reference, target)
                    assert moved.status == target.value
                else:
                    with pytest.raises(WorkflowError):
                        await cases.set_status(lawyer, reference, target)
                    assert case.status == source.value


async def test_two_lawyers_taking_one_case_at_once(database: Database, keyring: KeyRing) -> None:
    """Both read the case unassigned; only the first to write gets it, the other is refused."""
    people = await make_people(database, keyring)
    reference = await make_case(database, keyring, people.reporter)
    async with database.sessionmaker() as first, database.sessionmaker() as second:
        one = CaseService(first, keyring, self_assign=True)
        two = CaseService(second, keyring, self_assign=True)
        lawyer_one = await attach(first, people.lawyer)
        lawyer_two = await attach(second, people.other_lawyer)
        await two.find(lawyer_two, reference, Action.TAKE)  # the second lawyer sees it free
        await one.take(lawyer_one, reference)  # written, not yet committed
        late = asyncio.create_task(two.take(lawyer_two, reference))
        await asyncio.sleep(0.2)  # the second take is now waiting for the first transaction
        await first.commit()
        with pytest.raises(AccessDenied):
            await late
        await second.rollback()
    async with database.sessionmaker() as session:
        case = (await session.scalars(select(Case).where(Case.reference == reference))).one()
        events = (
            await session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id))
        ).all()
    assert case.assignee_id == people.lawyer.id
    assert [(event.kind, event.actor_id) for event in events] == [("assign", people.lawyer.id)]


# ---------------------------------------------------------------- policy

LAWYER_ON_OWN = {
    Action.VIEW_QUEUE,
    Action.VIEW_CASE,
    Action.CHANGE_STATUS,
    Action.ADD_NOTE,
    Action.ASK_REPORTER,
    Action.CLOSE,
    # The assigned lawyer is warned before a closed case is shredded (/extend).
    Action.EXTEND_RETENTION,
    # Evidence files go to the assigned lawyer only, not to one who may merely view.
    Action.GET_EVIDENCE,
    Action.RECEIVE_NOTICE,
    # A dossier: whoever may open the case (docs/evidence.md, Case dossier).
    Action.EXPORT_DOSSIER,
}
#: What a lawyer may do, by their relation to the case (``self_assign`` on / off).
#: Every Action not listed (assigning, statistics, the audit trail, staff, bans) is
#: for coordinators only; a new Action that lawyers may use must appear here.
LAWYER_TABLE: dict[str, dict[bool, set[Action]]] = {
    "own": {True: LAWYER_ON_OWN, False: LAWYER_ON_OWN},
    "other's": {True: {Action.VIEW_QUEUE}, False: {Action.VIEW_QUEUE}},
    "unassigned": {
        True: {Action.VIEW_QUEUE, Action.VIEW_CASE, Action.EXPORT_DOSSIER, Action.TAKE},
        False: {Action.VIEW_QUEUE},
    },
    "unassigned, closed": {True: {Action.VIEW_QUEUE}, False: {Action.VIEW_QUEUE}},
    "no case": {True: {Action.VIEW_QUEUE}, False: {Action.VIEW_QUEUE}},
}


POLICY_KEYS = KeyRing(KeyMaterial.generate())


def may(user: User | None, action: Action, case: Case | None, self_assign: bool) -> bool:
    return is_allowed(user, action, case, keyring=POLICY_KEYS, self_assign=self_assign)


def _user(role: str | None) -> User:
    user = User(id=uuid.uuid4())
    set_role(POLICY_KEYS, user, role)
    return user


def _case(relation: str, lawyer: User) -> Case | None:
    if relation == "no case":
        return None
    assignee = {"own": lawyer.id, "other's": uuid.uuid4()}.get(relation)
    status = "closed" if "closed" in relation else ("new" if assignee is None else "assigned")
    return Case(id=uuid.uuid4(), reference="K7QD-M2PF", status=status, assignee_id=assignee)


@pytest.mark.parametrize("self_assign", [True, False])
@pytest.mark.parametrize("relation", list(LAWYER_TABLE))
def test_policy_for_lawyers(relation: str, self_assign: bool) -> None:
    lawyer = _user("lawyer")
    case = _case(relation, lawyer)
    allowed = {action for action in Action if may(lawyer, action, case, self_assign)}
    assert allowed == LAWYER_TABLE[relation][self_assign]


@pytest.mark.parametrize("self_assign", [True, False])
@pytest.mark.parametrize("relation", list(LAWYER_TABLE))
def test_policy_for_coordinators_and_outsiders(relation: str, self_assign: bool) -> None:
    coordinator, reporter, revoked = _user("coordinator"), _user(None), _user(None)
    case = _case(relation, _user("lawyer"))
    for action in Action:
        assert is_allowed(
            coordinator, action, case, keyring=POLICY_KEYS, self_assign=self_assign
        ), action
        assert not is_allowed(
            reporter, action, case, keyring=POLICY_KEYS, self_assign=self_assign
        ), action
        assert not is_allowed(
            revoked, action, case, keyring=POLICY_KEYS, self_assign=self_assign
        ), action
        assert not may(None, action, case, self_assign), action
        assert not is_allowed(
            _user("admin"), action, case, keyring=POLICY_KEYS, self_assign=self_assign
        ), action


@pytest.mark.parametrize("self_assign", [True, False])
async def test_a_lawyers_queue_lists_only_cases_they_may_open(
    database: Database, keyring: KeyRing, self_assign: bool
) -> None:
    people = await make_people(database, keyring)
    free = await make_case(database, keyring, people.reporter)
    own = await make_case(database, keyring, people.reporter)
    others = await make_case(database, keyring, people.reporter)
    async with service(database, keyring) as (cases, session):
        coordinator = await attach(session, people.coordinator)
        await cases.assign(coordinator, own, people.lawyer.id)
        await cases.assign(coordinator, others, people.other_lawyer.id)
    async with service(database, keyring, self_assign=self_assign) as (cases, session):
        lawyer = await attach(session, people.lawyer)
        listed = {
            item.case.reference for item in (await cases.queue(lawyer, mine=False, page=0)).items
        }
        assert listed == ({own, free} if self_assign else {own})
        for reference in listed:
            await cases.open_case(lawyer, reference)  # every listed case opens
        coordinator = await attach(session, people.coordinator)
        everything = await cases.queue(coordinator, mine=False, page=0)
        assert {item.case.reference for item in everything.items} == {free, own, others}


async def test_the_service_enforces_the_policy(database: Database, keyring: KeyRing) -> None:
    """Unknown reference and forbidden case give the same AccessDenied."""
    people = await make_people(database, keyring)
    reference = await make_case(database, keyring, people.reporter)
    async with service(database, keyring, self_assign=False) as (cases, session):
        lawyer = await attach(session, people.lawyer)
        reporter = await attach(session, people.reporter)
        for actor in (lawyer, reporter):
            for ref in (reference, "ZZZZ-ZZZZ", "nonsense"):
                with pytest.raises(AccessDenied):
                    await cases.open_case(actor, ref)
                with pytest.raises(AccessDenied):
                    await cases.take(actor, ref)
        with pytest.raises(AccessDenied):
            await cases.queue(reporter, mine=False, page=0)
        with pytest.raises(AccessDenied):
            await cases.assign(lawyer, reference, lawyer.id)
    async with service(database, keyring, self_assign=True) as (cases, session):
        lawyer = await attach(session, people.lawyer)
        other = await attach(session, people.other_lawyer)
        taken = await cases.take(lawyer, reference)
        assert taken.assignee_id == lawyer.id and taken.status == "assigned"
        for attempt in (
            cases.open_case(other, reference),
            cases.take(other, reference),
            cases.add_note(other, reference, "note"),
            cases.ask_reporter(other, reference, "question"),
            cases.set_status(other, reference, Status.IN_PROGRESS),
            cases.close(other, reference, Outcome.CONSULTATION),
        ):
            with pytest.raises(AccessDenied):
                await attempt


async def test_a_reply_only_on_the_reporters_own_open_case(
    database: Database, keyring: KeyRing
) -> None:
    people = await make_people(database, keyring)
    reference = await make_case(database, keyring, people.reporter)
    async with service(database, keyring) as (cases, session):
        for actor in (people.lawyer, people.coordinator):
            with pytest.raises(AccessDenied):
                await cases.record_reply(await attach(session, actor), reference, "hello")
    async with service(database, keyring) as (cases, session):
        await cases.close(await attach(session, people.coordinator), reference, Outcome.NO_CONTACT)
    async with service(database, keyring) as (cases, session):
        with pytest.raises(AccessDenied):
            await cases.record_reply(await attach(session, people.reporter), reference, "late")


# ---------------------------------------------------------------- statistics


async def _stats_cases(database: Database, keyring: KeyRing) -> tuple[list[str], list[str]]:
    """Three consenting cases and two that refused statistics; returns both references."""
    consenting = [
        await make_case(
            database,
            keyring,
            answers={"agency": ["police"], "region": "sughd", "account": "A-secret-1"},
            urgent=True,
        ),
        await make_case(
            database,
            keyring,
            answers={"agency": ["police", "gknb"], "region": "dushanbe", "account": "A-secret-2"},
        ),
        await make_case(database, keyring, answers={"account": "A-secret-3"}),
    ]
    refusing = [
        await make_case(
            database,
            keyring,
            answers={"agency": ["prosecutor"], "region": "gbao", "account": "R-secret"},
            stats_consent=False,
            urgent=True,
        )
        for _ in range(2)
    ]
    return consenting, refusing


async def test_statistics_count_only_consenting_cases(database: Database, keyring: KeyRing) -> None:
    consenting, refusing = await _stats_cases(database, keyring)
    people = await make_people(database, keyring)
    async with service(database, keyring) as (cases, session):
        coordinator = await attach(session, people.coordinator)
        await cases.close(coordinator, consenting[0], Outcome.CRIMINAL_CASE)
        await cases.close(coordinator, refusing[0], Outcome.REPRESENTATION)
    async with database.sessionmaker() as session:
        figures = await case_stats.compute(session, keyring)
    assert figures.total == 3
    assert figures.urgent == 1
    assert dict(figures.by_agency) == {"police": 2, "gknb": 1, "unknown": 1}
    assert dict(figures.by_region) == {"sughd": 1, "dushanbe": 1, "unknown": 1}
    assert dict(figures.by_status) == {"closed": 1, "new": 2}
    assert dict(figures.by_outcome) == {"criminal_case": 1}
    assert sum(figures.by_month.values()) == 3

    exported = case_stats.to_csv(figures)
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0] == ["dimension", "key", "count"]
    assert ["total", "", "3"] in rows
    assert ["agency", "police", "2"] in rows
    assert not any(row[:2] == ["agency", "prosecutor"] for row in rows)
    assert {row[0] for row in rows[1:]} <= {
        "total",
        "urgent",
        "agency",
        "region",
        "status",
        "month",
        "outcome",
        "median_first_action_hours",
    }
    for secret in [*consenting, *refusing, "secret"]:
        assert secret not in exported


async def test_cli_stats_csv(tmp_path: Path, key_material: KeyMaterial) -> None:
    key_file = tmp_path / "secrets" / "keys.json"
    write_key_file(key_file, key_material, exclusive=True)
    database = await open_database("sqlite", tmp_path)
    try:
        consenting, refusing = await _stats_cases(database, KeyRing(key_material))
    finally:
        await close_database(database)
    env = {"INTAKE_DATABASE_URL": database.url, "INTAKE_KEY_FILE": str(key_file)}
    result = await run_cli("stats", "--csv", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "dimension,key,count"
    assert "total,,3" in lines
    for secret in [*consenting, *refusing, "secret"]:
        assert secret not in result.stdout
