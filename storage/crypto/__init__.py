"""Encryption at rest: envelopes, key file, key ring, blind indexes.

Only `cryptography` primitives are used: AES-256-GCM for every sealed value,
HKDF-SHA256 for purpose-bound sub-keys and HMAC-SHA256 for blind indexes and
the audit chain.
"""

from storage.crypto.envelope import (
    FORMAT_VERSION,
    DecryptionError,
    FieldContext,
    open_value,
    peek_key_id,
    seal_value,
)
from storage.crypto.keyring import DataKey, KeyRing, Purpose

__all__ = [
    "FORMAT_VERSION",
    "DataKey",
    "DecryptionError",
    "FieldContext",
    "KeyRing",
    "Purpose",
    "open_value",
    "peek_key_id",
    "seal_value",
]
