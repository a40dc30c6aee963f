"""Key life cycle: create the key file, rotate the primary key, report, drop old keys.

Rotation re-wraps every case's data key (and re-seals the few values sealed
directly under a key-encryption key) in small batches, each its own
transaction, so it can be interrupted at any point and resumed with
``intake-bot keys rotate --resume``.
"""

from __future__ import annotations

import base64
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from storage.crypto import DecryptionError, FieldContext, KeyRing, Purpose, peek_key_id
from storage.crypto.keyfile import KeyFileError, KeyMaterial, load_key_file, write_key_file
from storage.models import FsmRecord, KeyWrap, OutboxMessage, StatsTally, User
from storage.roles import remac

DEFAULT_BATCH = 1000
USER_SEALED_COLUMNS = ("chat_sealed", "staff_name_sealed")


@dataclass(frozen=True, slots=True)
class KeyUsage:
    primary: str
    wraps: dict[str, int]
    users: dict[str, int]
    drafts: dict[str, int]
    outbox: dict[str, int]
    stats: dict[str, int]

    def uses(self, kek_id: str) -> int:
        return sum(
            part.get(kek_id, 0)
            for part in (self.wraps, self.users, self.drafts, self.outbox, self.stats)
        )


def init_key_file(path: Path) -> KeyMaterial:
    material = KeyMaterial.generate()
    write_key_file(path, material, exclusive=True)
    return material


def ensure_key_file(path: Path) -> tuple[KeyMaterial, bool]:
    """Load the key file, creating it on first run; the flag says it was created.

    A key file written before custody receipts existed gets its signing key here.
    A read-only one (systemd credentials) keeps none: a key that is not saved
    would sign receipts nobody could check after a restart, so until the file is
    upgraded where it is kept, no receipts are signed.
    """
    if path.exists():
        material = load_key_file(path)
        if material.signing_key is None:
            material.add_signing_key()
            try:
                write_key_file(path, material, exclusive=False)
            except OSError:
                material = load_key_file(path)
                print(
                    f"intake-bot: {path} is read-only and has no receipt signing key; "
                    "run `intake-bot keys public` where it is kept. No receipts until then.",
                    file=sys.stderr,
                )
        return material, False
    return init_key_file(path), True


def public_keys_text(material: KeyMaterial) -> str:
    """The custody receipts' public keys, one ``ID BASE64`` line each, to publish."""
    return "".join(
        f"{key_id} {base64.b64encode(key).decode('ascii')}\n"
        for key_id, key in material.verify_keys.items()
    )


def add_primary_key(path: Path) -> str:
    material = load_key_file(path)
    kek_id = material.add_primary()
    write_key_file(path, material, exclusive=False)
    return kek_id


async def key_usage(sessionmaker: async_sessionmaker[AsyncSession], keyring: KeyRing) -> KeyUsage:
    async with sessionmaker() as session:
        wraps = await _count_by_key(session, KeyWrap.kek_id)
        drafts = await _count_by_key(session, FsmRecord.kek_id)
        outbox = await _count_by_key(session, OutboxMessage.kek_id)
        stats = await _count_by_key(session, StatsTally.kek_id)
        users: Counter[str] = Counter()
        for row in await session.execute(
            select(User.chat_sealed, User.staff_name_sealed, User.role_mac)
        ):
            for sealed in row:
                if sealed is not None:
                    users[peek_key_id(sealed)] += 1
    return KeyUsage(keyring.primary_id, wraps, dict(users), drafts, outbox, stats)


async def _count_by_key(
    session: AsyncSession, column: InstrumentedAttribute[str]
) -> dict[str, int]:
    rows = await session.execute(select(column, func.count()).group_by(column))
    return {str(key): int(count) for key, count in rows}


async def rewrap_all(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: KeyRing,
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> int:
    """Move everything onto the primary key; returns how many values changed."""
    primary = keyring.primary_id
    changed = 0

    while True:
        async with sessionmaker.begin() as session:
            rows = (
                await session.execute(
                    select(KeyWrap.id, KeyWrap.case_id, KeyWrap.holder, KeyWrap.wrapped)
                    .where(KeyWrap.kek_id != primary)
                    .limit(batch_size)
                )
            ).all()
            if not rows:
                break
            params: list[dict[str, object]] = []
            for wrap_id, case_id, holder, wrapped in rows:
                context = FieldContext("key_wraps", f"wrapped:{holder}", case_id)
                data_key = keyring.unwrap_data_key(wrapped, context)
                params.append(
                    {
                        "id": wrap_id,
                        "wrapped": keyring.wrap_data_key(data_key, context),
                        "kek_id": primary,
                    }
                )
            await session.execute(update(KeyWrap), params)
        changed += len(rows)
        if progress:
            progress("key_wraps", changed)

    changed += await _reseal_users(sessionmaker, keyring, batch_size)
    changed += await _reseal_sealed_rows(sessionmaker, keyring, FsmRecord, Purpose.DRAFT)
    changed += await _reseal_sealed_rows(sessionmaker, keyring, OutboxMessage, Purpose.OUTBOX)
    # Last: if the tally does not open, rotation stops here with everything else moved.
    changed += await _reseal_sealed_rows(
        sessionmaker, keyring, StatsTally, Purpose.STATS, drop_unreadable=False
    )
    return changed


async def _reseal_users(
    sessionmaker: async_sessionmaker[AsyncSession], keyring: KeyRing, batch_size: int
) -> int:
    changed = 0
    last_id = None
    while True:
        async with sessionmaker.begin() as session:
            query = select(User).order_by(User.id).limit(batch_size)
            if last_id is not None:
                query = query.where(User.id > last_id)
            users = (await session.scalars(query)).all()
            if not users:
                return changed
            for user in users:
                for column in USER_SEALED_COLUMNS:
                    sealed = getattr(user, column)
                    if sealed is None or peek_key_id(sealed) == keyring.primary_id:
                        continue
                    context = FieldContext("users", column, user.id)
                    plain = keyring.open(Purpose.USER, sealed, context)
                    setattr(user, column, keyring.seal(Purpose.USER, plain, context))
                    changed += 1
                changed += remac(keyring, user)
            last_id = users[-1].id


async def _reseal_sealed_rows(
    sessionmaker: async_sessionmaker[AsyncSession],
    keyring: KeyRing,
    model: type[FsmRecord] | type[OutboxMessage] | type[StatsTally],
    purpose: Purpose,
    *,
    drop_unreadable: bool = True,
) -> int:
    """Re-seal one payload column under the primary key.

    A draft or a notice that does not open is deleted (``drop_unreadable``);
    the statistics tally is not, as deleting it would silently reset the
    figures: ``DecryptionError`` stops the rotation instead.
    """
    changed = 0
    async with sessionmaker.begin() as session:
        # Sent notifications and the tally before its first count keep no payload
        # (kek_id ""), so nothing to move. FOR UPDATE: a submission counted while
        # this runs is not overwritten by the version read here.
        query = (
            select(model)
            .where(model.kek_id != keyring.primary_id, model.kek_id != "")
            .with_for_update()
        )
        rows = cast(
            Sequence[FsmRecord | OutboxMessage | StatsTally], (await session.scalars(query)).all()
        )
        for row in rows:
            row_id = _row_id(row)
            context = FieldContext(model.__tablename__, "payload_sealed", row_id)
            assert row.payload_sealed is not None  # a payload is what gives kek_id a value
            try:
                plain = keyring.open(purpose, row.payload_sealed, context)
            except DecryptionError:
                if not drop_unreadable:
                    raise
                await session.delete(row)
                continue
            row.payload_sealed = keyring.seal(purpose, plain, context)
            row.kek_id = keyring.primary_id
            changed += 1
    return changed


def _row_id(row: FsmRecord | OutboxMessage | StatsTally) -> bytes | uuid.UUID | str:
    if isinstance(row, FsmRecord):
        return row.key_index
    if isinstance(row, StatsTally):
        return row.name
    return f"{row.id}:{row.recipient_id}"  # bot/notifications.py outbox_context


async def drop_key(
    path: Path, kek_id: str, sessionmaker: async_sessionmaker[AsyncSession], keyring: KeyRing
) -> None:
    """Remove an old key-encryption key, refusing while anything still uses it."""
    material = load_key_file(path)
    if kek_id not in material.keks:
        raise KeyFileError(f"no key {kek_id} in the key file")
    if kek_id == material.primary:
        raise KeyFileError("the primary key cannot be dropped; rotate first")
    usage = await key_usage(sessionmaker, keyring)
    if usage.uses(kek_id):
        raise KeyFileError(
            f"key {kek_id} still protects {usage.uses(kek_id)} values; "
            "run `intake-bot keys rotate --resume` first"
        )
    del material.keks[kek_id]
    write_key_file(path, material, exclusive=False)


def usage_report(usage: KeyUsage, kek_ids: tuple[str, ...]) -> str:
    lines = []
    for kek_id in kek_ids:
        marker = " (primary)" if kek_id == usage.primary else ""
        lines.append(
            f"{kek_id}{marker}: {usage.wraps.get(kek_id, 0)} case keys, "
            f"{usage.users.get(kek_id, 0)} users, {usage.drafts.get(kek_id, 0)} drafts, "
            f"{usage.outbox.get(kek_id, 0)} queued messages, "
            f"{usage.stats.get(kek_id, 0)} statistics tally"
        )
    pending = sum(usage.uses(k) for k in kek_ids if k != usage.primary)
    lines.append(
        "all values use the primary key"
        if not pending
        else f"{pending} values still use older keys: run `intake-bot keys rotate --resume`"
    )
    return "\n".join(lines)
