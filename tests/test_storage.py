"""Repositories, FSM storage, key rotation and migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiogram.fsm.storage.base import StorageKey
from sqlalchemy import inspect, select, text

from storage import keys
from storage.crypto import DecryptionError, KeyRing
from storage.crypto.keyfile import KeyFileError, KeyMaterial, load_key_file, write_key_file
from storage.db import current_revision, downgrade, migrate
from storage.fsm import EncryptedFSMStorage
from storage.models import Base, FsmRecord, KeyWrap
from storage.references import CROCKFORD, new_reference, normalise_reference
from storage.repositories import CaseRepository, UserRepository
from tests.conftest import Database


async def _new_case(db: Database, keyring: KeyRing, **overrides: object) -> str:
    async with db.sessionmaker.begin() as session:
        users = UserRepository(session, keyring)
        params: dict[str, object] = {
            "answers": {"account": "Ӯро латукӯб карданд", "region": "sughd"},
            "urgent": True,
            "questionnaire_version": "test",
            "stats_consent": True,
            "contact_consent": True,
            "reporter_index": users.telegram_index(777001),
            "reporter_chat_id": 777001,
        }
        params.update(overrides)
        case = await CaseRepository(session, keyring).create(**params)  # type: ignore[arg-type]
        return case.reference


async def test_users_are_found_by_blind_index_only(database: Database, keyring: KeyRing) -> None:
    async with database.sessionmaker.begin() as session:
        users = UserRepository(session, keyring)
        created = await users.ensure(555123, 555123)
        again = await users.ensure(555123, 555123)
        assert created.id == again.id
        assert users.chat_id(created) == 555123
        assert await users.by_telegram_id(555124) is None
    async with database.sessionmaker() as session:
        row = (await session.execute(text("SELECT tg_index, chat_sealed FROM users"))).one()
        assert b"555123" not in bytes(row[0]) + bytes(row[1])


async def test_case_answers_round_trip_and_shredding(database: Database, keyring: KeyRing) -> None:
    reference = await _new_case(database, keyring)
    async with database.sessionmaker.begin() as session:
        cases = CaseRepository(session, keyring)
        case = await cases.by_reference(reference)
        assert case is not None
        assert case.status == "new" and case.urgent
        assert (await cases.answers(case))["account"] == "Ӯро латукӯб карданд"
        assert await cases.reporter_chat_id(case) == 777001
        await cases.shred(case)
    async with database.sessionmaker() as session:
        cases = CaseRepository(session, keyring)
        case = await cases.by_reference(reference)
        assert case is not None
        with pytest.raises(LookupError):
            await cases.answers(case)


async def test_reporter_cases(database: Database, keyring: KeyRing) -> None:
    await _new_case(database, keyring)
    await _new_case(database, keyring)
    async with database.sessionmaker() as session:
        cases = CaseRepository(session, keyring)
        index = UserRepository(session, keyring).telegram_index(777001)
        assert len(await cases.for_reporter(index)) == 2


async def test_answers_swapped_between_cases_do_not_open(
    database: Database, keyring: KeyRing
) -> None:
    first, second = await _new_case(database, keyring), await _new_case(database, keyring)
    async with database.sessionmaker.begin() as session:
        cases = CaseRepository(session, keyring)
        a, b = await cases.by_reference(first), await cases.by_reference(second)
        assert a is not None and b is not None
        a.answers_sealed, b.answers_sealed = b.answers_sealed, a.answers_sealed
    async with database.sessionmaker() as session:
        cases = CaseRepository(session, keyring)
        a = await cases.by_reference(first)
        assert a is not None
        with pytest.raises(DecryptionError):
            await cases.answers(a)


def test_references_are_crockford_and_normalised() -> None:
    seen = {new_reference() for _ in range(2000)}
    assert len(seen) == 2000
    for reference in list(seen)[:50]:
        assert len(reference) == 9 and reference[4] == "-"
        assert all(ch in CROCKFORD for ch in reference.replace("-", ""))
        assert normalise_reference(reference.lower().replace("-", " ")) == reference
    assert normalise_reference("K7QD-M2PO") == "K7QD-M2P0"
    assert normalise_reference("K7QD-M2P") is None
    assert (
        normalise_reference("K7QD-M2P!U") is None
        or len(normalise_reference("K7QD-M2P!U") or "") == 9
    )


def _storage_key(chat: int) -> StorageKey:
    return StorageKey(bot_id=1, chat_id=chat, user_id=chat)


async def test_fsm_storage_seals_drafts(database: Database, keyring: KeyRing) -> None:
    storage = EncryptedFSMStorage(database.sessionmaker, keyring, ttl=timedelta(hours=24))
    key = _storage_key(424242)
    assert await storage.get_state(key) is None
    assert await storage.get_data(key) == {}
    await storage.set_state(key, "Intake:question")
    await storage.set_data(key, {"answers": {"name": "Фаррух ҷ"}, "wipe": [1, 2]})
    assert await storage.get_state(key) == "Intake:question"
    assert (await storage.get_data(key))["answers"]["name"] == "Фаррух ҷ"
    assert await storage.get_data(_storage_key(424243)) == {}
    async with database.sessionmaker() as session:
        record = (await session.scalars(select(FsmRecord))).one()
        assert "Фаррух".encode() not in record.payload_sealed
        assert b"424242" not in record.key_index
    await storage.set_state(key, None)
    await storage.set_data(key, {})
    async with database.sessionmaker() as session:
        assert (await session.scalars(select(FsmRecord))).all() == []


async def test_fsm_drafts_expire(database: Database, keyring: KeyRing) -> None:
    storage = EncryptedFSMStorage(database.sessionmaker, keyring, ttl=timedelta(seconds=-1))
    key = _storage_key(1)
    await storage.set_data(key, {"answers": {"a": 1}})
    assert await storage.get_data(key) == {}
    live = EncryptedFSMStorage(database.sessionmaker, keyring, ttl=timedelta(hours=1))
    await live.set_data(_storage_key(2), {"x": 1})
    await storage.set_data(_storage_key(3), {"x": 1})
    assert await live.delete_expired() == 1
    assert await live.get_data(_storage_key(2)) == {"x": 1}


async def test_fsm_draft_under_unknown_key_reads_as_empty(
    database: Database, keyring: KeyRing
) -> None:
    storage = EncryptedFSMStorage(database.sessionmaker, keyring, ttl=timedelta(hours=1))
    await storage.set_data(_storage_key(5), {"x": 1})
    stranger = EncryptedFSMStorage(
        database.sessionmaker, KeyRing(KeyMaterial.generate()), ttl=timedelta(hours=1)
    )
    assert await stranger.get_data(_storage_key(5)) == {}


async def test_rotation_rewraps_in_resumable_batches(
    database: Database, tmp_path: Path, key_material: KeyMaterial
) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, key_material, exclusive=True)
    old = KeyRing(load_key_file(path))
    references = [await _new_case(database, old) for _ in range(5)]
    async with database.sessionmaker.begin() as session:
        await UserRepository(session, old).ensure(99, 99)
    storage = EncryptedFSMStorage(database.sessionmaker, old, ttl=timedelta(hours=1))
    await storage.set_data(_storage_key(99), {"answers": {"a": "b"}})

    new_primary = keys.add_primary_key(path)
    ring = KeyRing(load_key_file(path))
    assert ring.primary_id == new_primary

    class Interrupted(Exception):
        pass

    def stop_after_first_batch(_table: str, done: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        await keys.rewrap_all(
            database.sessionmaker, ring, batch_size=2, progress=stop_after_first_batch
        )
    usage = await keys.key_usage(database.sessionmaker, ring)
    assert usage.wraps == {new_primary: 2, old.primary_id: 3}
    with pytest.raises(KeyFileError, match="still protects"):
        await keys.drop_key(path, old.primary_id, database.sessionmaker, ring)

    await keys.rewrap_all(database.sessionmaker, ring, batch_size=2)
    usage = await keys.key_usage(database.sessionmaker, ring)
    assert usage.uses(old.primary_id) == 0
    assert usage.wraps == {new_primary: 5}
    await keys.drop_key(path, old.primary_id, database.sessionmaker, ring)
    survivor = KeyRing(load_key_file(path))
    assert survivor.kek_ids == (new_primary,)
    async with database.sessionmaker() as session:
        cases = CaseRepository(session, survivor)
        for reference in references:
            case = await cases.by_reference(reference)
            assert case is not None
            assert (await cases.answers(case))["region"] == "sughd"
        user = await UserRepository(session, survivor).by_telegram_id(99)
        assert user is not None and UserRepository(session, survivor).chat_id(user) == 99
        wraps = (await session.scalars(select(KeyWrap))).all()
        assert {w.kek_id for w in wraps} == {new_primary}
    assert await EncryptedFSMStorage(
        database.sessionmaker, survivor, ttl=timedelta(hours=1)
    ).get_data(_storage_key(99)) == {"answers": {"a": "b"}}


async def test_primary_key_cannot_be_dropped(
    database: Database, tmp_path: Path, key_material: KeyMaterial
) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, key_material, exclusive=True)
    with pytest.raises(KeyFileError, match="primary"):
        await keys.drop_key(
            path, key_material.primary, database.sessionmaker, KeyRing(key_material)
        )


async def test_migrations_match_models_and_go_down_and_up(database: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    assert await current_revision(database.engine) is not None

    def diff(sync_conn: object) -> list[object]:
        context = MigrationContext.configure(sync_conn)  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with database.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
    # 0003 takes away the abuse counters and handles.
    await downgrade(database.engine, "0002")
    assert await current_revision(database.engine) == "0002"
    async with database.engine.connect() as conn:
        names = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
    assert {"abuse_counters", "abuse_handles"}.isdisjoint(names) and "stats_tally" in names
    # One revision down: 0002 takes away the statistics tally and its index.
    await downgrade(database.engine, "0001")
    assert await current_revision(database.engine) == "0001"
    async with database.engine.connect() as conn:
        assert "stats_tally" not in await conn.run_sync(
            lambda sync: inspect(sync).get_table_names()
        )
        indexes = await conn.run_sync(lambda sync: inspect(sync).get_indexes("cases"))
        assert "ix_cases_stats" not in {index["name"] for index in indexes}
    await downgrade(database.engine, "base")
    assert await current_revision(database.engine) is None
    async with database.engine.connect() as conn:
        tables = await conn.run_sync(
            lambda sync: __import__("sqlalchemy").inspect(sync).get_table_names()
        )
    assert set(tables) <= {"alembic_version"}
    await migrate(database.engine)
    async with database.engine.connect() as conn:
        assert await conn.run_sync(diff) == []
        # The tally's one row is back, empty.
        seed = await conn.execute(text("SELECT name, kek_id, payload_sealed FROM stats_tally"))
        assert seed.all() == [("answers", "", None)]


async def test_revision_0004_drops_clear_evidence_hashes_and_dead_letter_content(
    database: Database,
) -> None:
    """Rows stored before 0004: the clear hash goes, the custody hash is still shown."""
    import hashlib
    import uuid

    from storage.crypto import DataKey, FieldContext
    from storage.evidence import EvidenceRepository
    from storage.models import EvidenceFile

    await downgrade(database.engine, "0002")
    data, data_key = b"%PDF-1.4 old file", DataKey.generate()
    case_id, row_id = uuid.uuid4(), uuid.uuid4()
    digest = hashlib.sha256(data).digest()

    def sealed(column: str, value: bytes) -> bytes:
        context = FieldContext("evidence_files", column, f"{case_id.hex}:{row_id.hex}")
        return data_key.seal(value, context)

    async with database.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO evidence_files (id, case_id, submitted, received_at, sha256,"
                " blob_sealed, meta_sealed) VALUES (:id, :case_id, :submitted, :at, :sha,"
                " :blob, :meta)"
            ),
            {
                "id": row_id if database.backend == "postgres" else row_id.hex,
                "case_id": case_id if database.backend == "postgres" else case_id.hex,
                "submitted": True,
                "at": datetime.now(UTC),
                "sha": digest,
                "blob": sealed("blob_sealed", data),
                "meta": sealed("meta_sealed", b"{}"),
            },
        )
    await migrate(database.engine)
    async with database.engine.connect() as conn:
        columns = await conn.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns("evidence_files")}
        )
    assert "sha256" not in columns
    async with database.sessionmaker() as session:
        row = await session.get(EvidenceFile, row_id)
        assert row is not None and row.sha256_sealed is None
        assert EvidenceRepository.custody_hash(row, data_key) == digest


async def test_rotation_reseals_staff_names_and_drop_waits_for_them(
    database: Database, tmp_path: Path, key_material: KeyMaterial
) -> None:
    from bot.cases.staff import set_staff_name, staff_name

    path = tmp_path / "keys.json"
    write_key_file(path, key_material, exclusive=True)
    old = KeyRing(load_key_file(path))
    async with database.sessionmaker.begin() as session:
        user = await UserRepository(session, old).ensure(98, 98)
        user.role = "lawyer"
        set_staff_name(old, user, "Zarina Karimova")
    new_primary = keys.add_primary_key(path)
    ring = KeyRing(load_key_file(path))
    with pytest.raises(KeyFileError, match="still protects"):
        await keys.drop_key(path, old.primary_id, database.sessionmaker, ring)
    await keys.rewrap_all(database.sessionmaker, ring)
    await keys.drop_key(path, old.primary_id, database.sessionmaker, ring)
    survivor = KeyRing(load_key_file(path))
    assert survivor.kek_ids == (new_primary,)
    async with database.sessionmaker() as session:
        found = await UserRepository(session, survivor).by_telegram_id(98)
        assert found is not None and staff_name(survivor, found) == "Zarina Karimova"


async def test_revision_0006_adds_and_removes_the_sealed_receipt(database: Database) -> None:
    def columns(sync: object) -> set[str]:
        return {c["name"] for c in inspect(sync).get_columns("evidence_files")}  # type: ignore[arg-type]

    async with database.engine.connect() as conn:
        assert "receipt_sealed" in await conn.run_sync(columns)
    await downgrade(database.engine, "0005")
    async with database.engine.connect() as conn:
        assert "receipt_sealed" not in await conn.run_sync(columns)
    await migrate(database.engine)
    async with database.engine.connect() as conn:
        assert "receipt_sealed" in await conn.run_sync(columns)


async def test_migration_0007_adds_handled_updates_and_takes_them_away(
    database: Database,
) -> None:
    def tables(sync: object) -> set[str]:
        return set(inspect(sync).get_table_names())  # type: ignore[arg-type]

    async with database.engine.connect() as conn:
        assert "handled_updates" in await conn.run_sync(tables)
    await downgrade(database.engine, "0006")
    async with database.engine.connect() as conn:
        assert "handled_updates" not in await conn.run_sync(tables)
    await migrate(database.engine)
    async with database.engine.connect() as conn:
        assert "handled_updates" in await conn.run_sync(tables)
