"""The sealed-value format.

Layout (bytes)::

    version (1) | key id length (1) | key id (ASCII) | nonce (12) | ciphertext + tag

The header is authenticated together with a :class:`FieldContext` naming the
table, column and row the value belongs to, so a ciphertext copied to another
row or column, or re-labelled with another key id, fails to open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION = 1
NONCE_BYTES = 12
_AD_PREFIX = b"intake-bot/sealed\x00"


class DecryptionError(Exception):
    """A sealed value is malformed, tampered with, misplaced or its key is gone."""


@dataclass(frozen=True, slots=True)
class FieldContext:
    table: str
    column: str
    row_id: UUID | str | bytes

    def associated_data(self, header: bytes) -> bytes:
        row = self.row_id.hex() if isinstance(self.row_id, bytes) else str(self.row_id)
        return b"\x00".join(
            (_AD_PREFIX, header, self.table.encode(), self.column.encode(), row.encode())
        )


def _header(key_id: str) -> bytes:
    raw_id = key_id.encode("ascii")
    if not 0 < len(raw_id) < 256:
        raise ValueError("key id must be 1..255 ASCII characters")
    return bytes((FORMAT_VERSION, len(raw_id))) + raw_id


def seal_value(key: bytes, key_id: str, plaintext: bytes, context: FieldContext) -> bytes:
    """Encrypt ``plaintext`` under ``key`` with a fresh random 96-bit nonce."""
    header = _header(key_id)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(key).encrypt(nonce, plaintext, context.associated_data(header))
    return header + nonce + ciphertext


def peek_key_id(sealed: bytes) -> str:
    """The key id a sealed value names, without decrypting it."""
    if len(sealed) < 2 or sealed[0] != FORMAT_VERSION:
        raise DecryptionError("unknown format version")
    length = sealed[1]
    if len(sealed) < 2 + length + NONCE_BYTES + 16:
        raise DecryptionError("truncated value")
    try:
        return sealed[2 : 2 + length].decode("ascii")
    except UnicodeDecodeError:
        raise DecryptionError("malformed key id") from None


def open_value(key: bytes, sealed: bytes, context: FieldContext) -> bytes:
    """Decrypt a value sealed by :func:`seal_value`; raise on any mismatch."""
    key_id = peek_key_id(sealed)
    header_len = 2 + len(key_id)
    header = sealed[:header_len]
    nonce = sealed[header_len : header_len + NONCE_BYTES]
    ciphertext = sealed[header_len + NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, context.associated_data(header))
    except InvalidTag:
        raise DecryptionError("authentication failed") from None
