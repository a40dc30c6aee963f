"""The HMAC-chained audit log: written by the staff core, verified, tampered with."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text, update

from bot.cases.staff import create_invite, redeem_invite, revoke
from bot.cases.workflow import Outcome, Status
from storage import audit
from storage.audit import Anchor, verify_chain
from storage.crypto import KeyRing
from storage.crypto.keyfile import KeyMaterial, write_key_file
from storage.models import AuditEntry, Case
from tests.case_helpers import attach, make_case, make_people, run_cli, service
from tests.conftest import Database, close_database, open_database


async def _busy_case(database: Database, keyring: KeyRing) -> tuple[str, int]:
    """A case worked on from start to end, plus staff changes; returns (reference, entries)."""
    people = await make_people(database, keyring)
    reference = await make_case(database, keyring, people.reporter)
    async with service(database, keyring) as (cases, session):
        coordinator = await attach(session, people.coordinator)
        lawyer = await attach(session, people.lawyer)
        await cases.open_case(coordinator, reference)
        await cases.assign(coordinator, reference, lawyer.id)
    async with service(database, keyring) as (cases, session):
        lawyer = await attach(session, people.lawyer)
        await cases.open_case(lawyer, reference)
        await cases.set_status(lawyer, reference, Status.IN_PROGRESS)
        await cases.add_note(lawyer, reference, "позвонить адвокату")
        await cases.ask_reporter(lawyer, reference, "Когда это было?")
    async with service(database, keyring) as (cases, session):
        await cases.record_reply(await attach(session, people.reporter), reference, "В марте")
    async with service(database, keyring) as (cases, session):
        await cases.close(await attach(session, people.lawyer), reference, Outcome.CONSULTATION)
    async with database.sessionmaker.begin() as session:
        coordinator = await attach(session, people.coordinator)
        token = await create_invite(session, keyring, coordinator)
        newcomer = await attach(session, people.reporter)
        assert await redeem_invite(session, keyring, newcomer, token, "New Lawyer")
        assert await revoke(session, keyring, coordinator, newcomer.id) is not None
    async with database.sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(AuditEntry))
    return reference, int(count or 0)


async def test_service_calls_append_a_verifiable_chain(
    database: Database, keyring: KeyRing
) -> None:
    reference, count = await _busy_case(database, keyring)
    report = await verify_chain(database.sessionmaker, keyring)
    assert report.intact and report.first_broken is None and report.reason is None
    assert report.entries == count
    async with database.sessionmaker() as session:
        case = (await session.scalars(select(Case).where(Case.reference == reference))).one()
        trail = await audit.trail_for_case(session, case.id)
        every = (await session.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
    assert [entry.seq for entry in every] == list(range(1, count + 1))
    assert [entry.action for entry in trail] == [
        "case_view",
        "case_assign",
        "case_view",
        "status_change",
        "note_add",
        "status_change",
        "question_ask",
        "reply_received",
        "status_change",
    ]
    assert {entry.action for entry in every} - {entry.action for entry in trail} == {
        "invite_create",
        "role_grant",
        "role_revoke",
    }
    # Small batches walk the same chain.
    assert await verify_chain(database.sessionmaker, keyring, batch=3) == report


@pytest.mark.parametrize("column", ["action", "actor_id", "at", "mac"])
async def test_an_edited_entry_breaks_the_chain_there(
    database: Database, keyring: KeyRing, column: str
) -> None:
    await _busy_case(database, keyring)
    target = 5
    async with database.sessionmaker.begin() as session:
        entry = await session.get(AuditEntry, target)
        other = await session.get(AuditEntry, target + 1)
        assert entry is not None and other is not None
        changes: dict[str, dict[str, object]] = {
            "action": {"action": "stats_view"},
            "actor_id": {"actor_id": uuid.uuid4()},
            "at": {"at": entry.at + timedelta(seconds=1)},
            "mac": {"mac": bytes(other.mac)},
        }
        values = changes[column]
        await session.execute(update(AuditEntry).where(AuditEntry.seq == target).values(**values))
    report = await verify_chain(database.sessionmaker, keyring, batch=4)
    assert (report.first_broken, report.reason, report.entries) == (
        target,
        "entry altered",
        target - 1,
    )


async def test_raw_sql_edit_of_the_action_is_caught(database: Database, keyring: KeyRing) -> None:
    await _busy_case(database, keyring)
    async with database.sessionmaker.begin() as session:
        await session.execute(text("UPDATE audit_log SET action = 'note_add' WHERE seq = 3"))
    report = await verify_chain(database.sessionmaker, keyring)
    assert not report.intact
    assert report.first_broken == 3 and report.reason == "entry altered"


@pytest.mark.parametrize("batch", [5000, 4])
async def test_a_deleted_middle_entry_is_named(
    database: Database, keyring: KeyRing, batch: int
) -> None:
    _, count = await _busy_case(database, keyring)
    assert count > 6
    async with database.sessionmaker.begin() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq == 5))
    report = await verify_chain(database.sessionmaker, keyring, batch=batch)
    assert (report.first_broken, report.reason, report.entries) == (5, "missing entry", 4)


async def test_swapped_entries_and_a_foreign_key_are_caught(
    database: Database, keyring: KeyRing
) -> None:
    await _busy_case(database, keyring)
    stranger = KeyRing(KeyMaterial.generate())
    report = await verify_chain(database.sessionmaker, stranger)
    assert report.first_broken == 1 and report.reason == "entry altered"

    async with database.sessionmaker.begin() as session:
        await session.execute(text("UPDATE audit_log SET seq = -2 WHERE seq = 2"))
        await session.execute(text("UPDATE audit_log SET seq = 2 WHERE seq = 3"))
        await session.execute(text("UPDATE audit_log SET seq = 3 WHERE seq = -2"))
    report = await verify_chain(database.sessionmaker, keyring)
    assert report.first_broken == 2 and report.reason == "entry altered"


async def test_a_cut_off_tail_is_caught_by_an_anchor_kept_elsewhere(
    database: Database, keyring: KeyRing
) -> None:
    _, count = await _busy_case(database, keyring)
    report = await verify_chain(database.sessionmaker, keyring)
    assert report.intact and report.head is not None and report.head.seq == count
    head = Anchor.parse(str(report.head))
    assert head == report.head
    assert (await verify_chain(database.sessionmaker, keyring, anchor=head)).intact

    # Deleting the newest entries leaves a chain that verifies on its own...
    async with database.sessionmaker.begin() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq > count - 2))
    assert (await verify_chain(database.sessionmaker, keyring)).intact
    # ...but not against the anchor written down before.
    cut = await verify_chain(database.sessionmaker, keyring, anchor=head)
    assert not cut.intact
    assert (cut.first_broken, cut.entries) == (count - 1, count - 2)
    assert cut.reason is not None and "cut short" in cut.reason

    # An anchor that names an entry with another MAC (a rewritten log) fails too.
    earlier = Anchor(count - 3, "0" * 16)
    wrong = await verify_chain(database.sessionmaker, keyring, anchor=earlier)
    assert (wrong.first_broken, wrong.reason) == (count - 3, f"does not match anchor {earlier}")
    for bad in ("", "12", "x:0011223344556677", "3:00112233", "3:zz112233445566778"):
        with pytest.raises(ValueError, match="expected SEQ:HEX"):
            Anchor.parse(bad)


async def test_appending_keeps_the_chain_across_transactions(
    database: Database, keyring: KeyRing
) -> None:
    for index in range(3):
        async with database.sessionmaker.begin() as session:
            entry = await audit.record(session, keyring, f"action_{index}", actor_id=None)
            assert entry.seq == index + 1
    assert (await verify_chain(database.sessionmaker, keyring)).entries == 3


async def _sqlite_with_chain(folder: Path, material: KeyMaterial, *, tamper: bool) -> str:
    """A SQLite file holding a busy audit chain, its entry 4 edited if ``tamper``."""
    database = await open_database("sqlite", folder)
    try:
        await _busy_case(database, KeyRing(material))
        if tamper:
            async with database.sessionmaker.begin() as session:
                await session.execute(
                    text("UPDATE audit_log SET action = 'case_view' WHERE seq = 4")
                )
    finally:
        await close_database(database)
    return database.url


async def test_cli_audit_verify_exit_codes(tmp_path: Path, key_material: KeyMaterial) -> None:
    key_file = tmp_path / "secrets" / "keys.json"
    write_key_file(key_file, key_material, exclusive=True)
    runs = []
    for name, tamper in (("intact", False), ("tampered", True)):
        folder = tmp_path / name
        folder.mkdir()
        url = await _sqlite_with_chain(folder, key_material, tamper=tamper)
        env = {"INTAKE_DATABASE_URL": url, "INTAKE_KEY_FILE": str(key_file)}
        runs.append(run_cli("audit", "verify", env=env, cwd=folder))
    # Two processes at once: each spends most of its time importing aiogram.
    intact, broken = await asyncio.gather(*runs)

    assert intact.returncode == 0, intact.stderr
    assert "intact" in intact.stdout
    anchor = intact.stdout.rsplit("--anchor): ", 1)[1].strip()
    env = {
        "INTAKE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'intact' / 'intake.db'}",
        "INTAKE_KEY_FILE": str(key_file),
    }
    anchored = await run_cli("audit", "verify", "--anchor", anchor, env=env, cwd=tmp_path)
    assert anchored.returncode == 0, anchored.stderr
    ahead = anchor.replace(anchor.split(":")[0], str(int(anchor.split(":")[0]) + 1), 1)
    missed = await run_cli("audit", "verify", "--anchor", ahead, env=env, cwd=tmp_path)
    assert missed.returncode == 1 and "cut short" in missed.stderr
    assert broken.returncode == 1, broken.stderr
    assert "entry 4" in broken.stderr
    assert "Traceback" not in broken.stderr


async def test_concurrent_appends_never_clash(database: Database, keyring: KeyRing) -> None:
    """Staff act at the same moment (aiogram handles updates as concurrent tasks)."""

    async def append(index: int) -> None:
        async with database.sessionmaker.begin() as session:
            await audit.record(session, keyring, f"action_{index}", actor_id=None)
            await asyncio.sleep(0.05)  # the handler's transaction stays open a moment

    await asyncio.gather(*(append(index) for index in range(5)))
    report = await verify_chain(database.sessionmaker, keyring)
    assert report.intact and report.entries == 5


async def test_upgrade_removes_reporter_ids_and_rechains_the_audit_log(
    database: Database, keyring: KeyRing
) -> None:
    """Rows from before revision 0003 named the reporter as an actor: the migration
    clears the unchained tables, the first start re-chains the audit log without them."""
    from bot.app import Runtime, prepare_database
    from bot.config import Settings
    from storage.db import downgrade
    from storage.models import CaseEvent, CaseMessage

    people = await make_people(database, keyring)
    reference = await make_case(database, keyring, people.reporter)
    # The people and the case as made now; what follows as written before 0003.
    await downgrade(database.engine, "0002")
    async with database.sessionmaker.begin() as session:
        case = (await session.scalars(select(Case).where(Case.reference == reference))).one()
        lawyer_id, reporter_id = people.lawyer.id, people.reporter.id
        await audit.record(session, keyring, "case_view", actor_id=lawyer_id, case_id=case.id)
        # What record_reply and /forget wrote before: the reporter's id, one entry per case.
        session.add_all(
            [
                CaseEvent(case_id=case.id, actor_id=lawyer_id, kind="status"),
                CaseEvent(
                    case_id=case.id,
                    actor_id=reporter_id,
                    kind="status",
                    from_status="awaiting_reporter",
                    to_status="in_progress",
                ),
                CaseEvent(case_id=case.id, kind="reporter_disconnected"),
                CaseMessage(case_id=case.id, kind="reply", author_id=reporter_id, body_sealed=b"x"),
                CaseMessage(case_id=case.id, kind="note", author_id=lawyer_id, body_sealed=b"y"),
            ]
        )
        await audit.record(
            session, keyring, "reply_received", actor_id=reporter_id, case_id=case.id
        )
        await audit.record(session, keyring, "reporter_forget", actor_id=None, case_id=case.id)
        await audit.record(session, keyring, "note_add", actor_id=lawyer_id, case_id=case.id)

    # What `intake-bot run` and `migrate` do: the migrations, then, with the key
    # file, what they cannot do without it.
    runtime = Runtime(
        Settings(database_url=database.url), keyring, database.engine, database.sessionmaker
    )
    await prepare_database(runtime)
    async with database.sessionmaker() as session:
        events = {(e.kind, e.actor_id) for e in await session.scalars(select(CaseEvent))}
        authors = {(m.kind, m.author_id) for m in await session.scalars(select(CaseMessage))}
    assert events == {("status", lawyer_id), ("reporter_answered", None)}
    assert authors == {("reply", None), ("note", lawyer_id)}

    async with database.sessionmaker.begin() as session:
        assert await audit.redact_reporters(session, keyring) == 0  # once only
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
    assert [(e.action, e.actor_id, e.case_id is not None) for e in entries] == [
        ("case_view", lawyer_id, True),
        ("reply_received", None, True),
        ("reporter_forget", None, False),
        ("note_add", lawyer_id, True),
    ]
    assert (await verify_chain(database.sessionmaker, keyring)).intact


async def test_a_broken_chain_is_never_rechained(database: Database, keyring: KeyRing) -> None:
    people = await make_people(database, keyring)
    async with database.sessionmaker.begin() as session:
        await audit.record(session, keyring, "reply_received", actor_id=people.reporter.id)
        await audit.record(session, keyring, "case_view", actor_id=people.lawyer.id)
    async with database.sessionmaker.begin() as session:
        await session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(actor_id=None))
    with pytest.raises(audit.ChainBroken):
        async with database.sessionmaker.begin() as session:
            await audit.redact_reporters(session, keyring)
    async with database.sessionmaker() as session:
        first = await session.get(AuditEntry, 1)
    assert first is not None and first.actor_id == people.reporter.id
