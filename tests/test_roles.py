"""Staff roles carry a MAC (storage/roles.py), on SQLite and PostgreSQL.

The threat model (docs/threat-model.md) cites these tests by name.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy import select, update

from bot.app import Runtime, prepare_database
from bot.cases.staff import set_staff_name, staff_name
from bot.config import Settings
from storage import keys
from storage.crypto import KeyRing
from storage.crypto.keyfile import KeyMaterial, load_key_file, write_key_file
from storage.db import downgrade
from storage.models import User
from storage.repositories import UserRepository
from storage.roles import set_role, verified_role
from tests.conftest import Database


async def _user(database: Database, keyring: KeyRing, telegram_id: int, role: str | None) -> None:
    async with database.sessionmaker.begin() as session:
        user = await UserRepository(session, keyring).ensure(telegram_id, telegram_id)
        set_role(keyring, user, role)


async def _role(database: Database, keyring: KeyRing, telegram_id: int) -> str | None:
    async with database.sessionmaker() as session:
        user = await UserRepository(session, keyring).by_telegram_id(telegram_id)
        assert user is not None
        return verified_role(keyring, user)


async def test_a_role_moved_to_another_user_or_changed_does_not_verify(
    database: Database, keyring: KeyRing
) -> None:
    await _user(database, keyring, 801, "lawyer")
    await _user(database, keyring, 802, None)
    assert await _role(database, keyring, 801) == "lawyer"
    async with database.sessionmaker.begin() as session:
        mac = (await session.scalars(select(User.role_mac).where(User.role.is_not(None)))).one()
        await session.execute(update(User).where(User.role.is_(None)).values(role="lawyer"))
        await session.execute(update(User).values(role_mac=mac))
    assert await _role(database, keyring, 802) is None  # a MAC copied from another user
    async with database.sessionmaker.begin() as session:
        await session.execute(update(User).values(role="coordinator"))
    assert await _role(database, keyring, 801) is None  # a lawyer made coordinator


async def test_keys_rotate_moves_role_macs_and_staff_names_to_the_new_key(
    database: Database, tmp_path: Path, key_material: KeyMaterial
) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, key_material, exclusive=True)
    old = KeyRing(load_key_file(path))
    await _user(database, old, 803, "coordinator")
    async with database.sessionmaker.begin() as session:
        found = await UserRepository(session, old).by_telegram_id(803)
        assert found is not None
        set_staff_name(old, found, "Coordinator Three")
    keys.add_primary_key(path)
    ring = KeyRing(load_key_file(path))
    await keys.rewrap_all(database.sessionmaker, ring)
    await keys.drop_key(path, old.primary_id, database.sessionmaker, ring)
    survivor = KeyRing(load_key_file(path))
    assert await _role(database, survivor, 803) == "coordinator"
    async with database.sessionmaker() as session:
        found = await UserRepository(session, survivor).by_telegram_id(803)
        assert found is not None
        assert staff_name(survivor, found) == "Coordinator Three"  # re-sealed as well


async def test_roles_held_before_revision_0004_are_sealed_once_at_the_next_start(
    database: Database, keyring: KeyRing
) -> None:
    await downgrade(database.engine, "0002")
    now = datetime.now(UTC)
    async with database.engine.begin() as conn:
        for telegram_id in (804, 805):
            await conn.execute(
                User.__table__.insert().values(  # type: ignore[attr-defined]
                    id=uuid.uuid4(),
                    tg_index=keyring.blind_index("tg-user", telegram_id),
                    chat_sealed=b"",
                    role="lawyer" if telegram_id == 804 else None,
                    banned=False,
                    created_at=now,
                    updated_at=now,
                )
            )
    runtime = Runtime(
        Settings(bot_token=SecretStr("1:x"), database_url=database.url),
        keyring,
        database.engine,
        database.sessionmaker,
    )
    await prepare_database(runtime)
    assert await _role(database, keyring, 804) == "lawyer"
    # Later, a role written in by hand is not blessed by another start.
    async with database.sessionmaker.begin() as session:
        await session.execute(
            update(User)
            .where(User.tg_index == keyring.blind_index("tg-user", 805))
            .values(role="coordinator")
        )
    await prepare_database(runtime)
    assert await _role(database, keyring, 805) is None


async def test_known_limit_a_revoked_role_put_back_with_its_old_mac_verifies_again(
    database: Database, keyring: KeyRing
) -> None:
    """A MAC proves origin, not freshness (docs/threat-model.md, Known limits)."""
    await _user(database, keyring, 806, "lawyer")
    async with database.sessionmaker() as session:
        saved = (await session.execute(select(User.role, User.role_mac))).one()
    async with database.sessionmaker.begin() as session:
        found = await UserRepository(session, keyring).by_telegram_id(806)
        assert found is not None
        set_role(keyring, found, None)  # /revoke
    assert await _role(database, keyring, 806) is None
    async with database.sessionmaker.begin() as session:
        await session.execute(update(User).values(role=saved.role, role_mac=saved.role_mac))
    assert await _role(database, keyring, 806) == "lawyer"
