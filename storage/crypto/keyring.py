"""The key ring used at run time: wraps data keys, seals values, blind indexes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from storage.crypto.envelope import (
    DecryptionError,
    FieldContext,
    open_value,
    peek_key_id,
    seal_value,
)
from storage.crypto.keyfile import KEY_BYTES, KeyMaterial


class Purpose(StrEnum):
    """Sub-keys derived from a key-encryption key for values outside any case."""

    USER = "user-fields"
    DRAFT = "fsm-drafts"
    OUTBOX = "outbox"
    STATS = "stats"
    ROLE = "staff-role"


@dataclass(frozen=True, slots=True)
class DataKey:
    """A case's own AES-256-GCM key; ``key_id`` is written into every value it seals."""

    key_id: str
    key: bytes

    @classmethod
    def generate(cls) -> DataKey:
        return cls(key_id=f"dk-{secrets.token_hex(4)}", key=secrets.token_bytes(KEY_BYTES))

    def seal(self, plaintext: bytes, context: FieldContext) -> bytes:
        return seal_value(self.key, self.key_id, plaintext, context)

    def open(self, sealed: bytes, context: FieldContext) -> bytes:
        if peek_key_id(sealed) != self.key_id:
            raise DecryptionError("value was sealed under another data key")
        return open_value(self.key, sealed, context)


class KeyRing:
    def __init__(self, material: KeyMaterial) -> None:
        self._material = material
        self._subkeys: dict[tuple[str, Purpose], bytes] = {}

    @property
    def primary_id(self) -> str:
        return self._material.primary

    @property
    def kek_ids(self) -> tuple[str, ...]:
        return tuple(self._material.keks)

    def _kek(self, kek_id: str) -> bytes:
        try:
            return self._material.keks[kek_id]
        except KeyError:
            raise DecryptionError("key id not in the key file") from None

    # Data keys -------------------------------------------------------------
    def wrap_data_key(self, data_key: DataKey, context: FieldContext) -> bytes:
        payload = data_key.key_id.encode("ascii") + b"\x00" + data_key.key
        return seal_value(self._kek(self.primary_id), self.primary_id, payload, context)

    def unwrap_data_key(self, wrapped: bytes, context: FieldContext) -> DataKey:
        payload = open_value(self._kek(peek_key_id(wrapped)), wrapped, context)
        key_id, _, key = payload.partition(b"\x00")
        if len(key) != KEY_BYTES:
            raise DecryptionError("malformed data key")
        return DataKey(key_id=key_id.decode("ascii"), key=key)

    # Values outside a case (chat ids of users, drafts) --------------------
    def _subkey(self, kek_id: str, purpose: Purpose) -> bytes:
        cached = self._subkeys.get((kek_id, purpose))
        if cached is None:
            cached = HKDF(
                algorithm=hashes.SHA256(),
                length=KEY_BYTES,
                salt=None,
                info=b"intake-bot/" + purpose.value.encode(),
            ).derive(self._kek(kek_id))
            self._subkeys[(kek_id, purpose)] = cached
        return cached

    def seal(self, purpose: Purpose, plaintext: bytes, context: FieldContext) -> bytes:
        key = self._subkey(self.primary_id, purpose)
        return seal_value(key, self.primary_id, plaintext, context)

    def open(self, purpose: Purpose, sealed: bytes, context: FieldContext) -> bytes:
        return open_value(self._subkey(peek_key_id(sealed), purpose), sealed, context)

    # Integrity of values kept in clear ---------------------------------------
    def attest(self, purpose: Purpose, context: FieldContext) -> bytes:
        """A MAC over ``context``: AES-GCM with nothing to encrypt (GMAC), under the
        primary key and naming it, as every sealed value does (so rotation finds it)."""
        return self.seal(purpose, b"", context)

    def verify(self, purpose: Purpose, tag: bytes, context: FieldContext) -> bool:
        try:
            return self.open(purpose, tag, context) == b""
        except DecryptionError:
            return False

    # Look-up and integrity -------------------------------------------------
    def blind_index(self, kind: str, value: int | str) -> bytes:
        """A keyed, deterministic 32-byte index: equal inputs match, nothing else leaks."""
        message = f"{kind}:{value}".encode()
        return hmac.new(self._material.blind_index_key, message, hashlib.sha256).digest()

    def audit_mac(self, message: bytes) -> bytes:
        return hmac.new(self._material.audit_key, message, hashlib.sha256).digest()

    # Custody receipts ------------------------------------------------------
    @property
    def can_sign(self) -> bool:
        return self._material.signing_key is not None

    @property
    def signing_id(self) -> str:
        return self._material.signing_id

    def sign(self, message: bytes) -> bytes:
        """An Ed25519 signature of ``message`` with the current signing key."""
        if self._material.signing_key is None:
            raise DecryptionError("the key file has no signing key; start the bot once")
        return Ed25519PrivateKey.from_private_bytes(self._material.signing_key).sign(message)

    @property
    def verify_keys(self) -> dict[str, bytes]:
        """Public keys of every signing key used, by id (what `keys public` prints)."""
        return dict(self._material.verify_keys)
