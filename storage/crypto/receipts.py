"""Custody receipts: a signed statement that the bot received a file.

A receipt names the case reference, the file's SHA-256, the time received and
the bot's version, and is signed with the key file's Ed25519 signing key. It
is plain text a lawyer can print, attach or paste; anyone holding the
coalition's published public keys (``intake-bot keys public``) can check it,
and a file against it, offline: ``intake-bot verify-receipt``. No database and
no secret key are involved in checking. See docs/evidence.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HEADER: Final = "intake-bot custody receipt v1"
_FIELDS: Final = ("case", "sha256", "received", "bot", "key")
_TIME: Final = "%Y-%m-%dT%H:%M:%SZ"


class ReceiptError(Exception):
    """The receipt is malformed, not signed by a known key, or does not match the file."""


class Signer(Protocol):
    """What signs: the key ring (``storage.crypto.KeyRing``)."""

    @property
    def signing_id(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Receipt:
    reference: str
    sha256: str  # hex
    received_at: datetime
    version: str
    key_id: str
    signature: bytes = b""

    def signed_part(self) -> str:
        values = (
            self.reference,
            self.sha256,
            self.received_at.astimezone(UTC).strftime(_TIME),
            self.version,
            self.key_id,
        )
        lines = [HEADER, *(f"{name}: {value}" for name, value in zip(_FIELDS, values, strict=True))]
        return "\n".join(lines) + "\n"

    def text(self) -> str:
        return self.signed_part() + f"signature: {base64.b64encode(self.signature).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Receipt:
        """The receipt in ``text``, which may hold more (the whole message it came in)."""
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        start = lines.index(HEADER) if HEADER in lines else -1
        lines = lines[start : start + len(_FIELDS) + 2]
        if start < 0 or len(lines) != len(_FIELDS) + 2:
            raise ReceiptError("not a custody receipt")
        values: dict[str, str] = {}
        for name, line in zip((*_FIELDS, "signature"), lines[1:], strict=True):
            key, sep, value = line.partition(": ")
            if key != name or not sep:
                raise ReceiptError(f"expected the line {name!r}")
            values[name] = value.strip()
        try:
            received = datetime.strptime(values["received"], _TIME).replace(tzinfo=UTC)
            signature = base64.b64decode(values["signature"], validate=True)
        except (ValueError, binascii.Error):
            raise ReceiptError("malformed time or signature") from None
        return cls(
            values["case"], values["sha256"], received, values["bot"], values["key"], signature
        )


def issue(
    signer: Signer, reference: str, sha256: bytes, received_at: datetime, version: str
) -> Receipt:
    """Sign a receipt (to whole seconds: the time as printed is the time signed)."""
    at = received_at.replace(microsecond=0)
    body = Receipt(reference, sha256.hex(), at, version, signer.signing_id)
    signature = signer.sign(body.signed_part().encode())
    return Receipt(reference, body.sha256, at, version, signer.signing_id, signature)


def verify(receipt: Receipt, public_keys: Mapping[str, bytes], data: bytes | None = None) -> None:
    """Raise ``ReceiptError`` unless a known key signed it (and ``data`` is the file)."""
    raw = public_keys.get(receipt.key_id)
    if raw is None:
        raise ReceiptError(f"signed by {receipt.key_id}, which is not among the public keys")
    try:
        Ed25519PublicKey.from_public_bytes(raw).verify(
            receipt.signature, receipt.signed_part().encode()
        )
    except (InvalidSignature, ValueError):
        raise ReceiptError("the signature does not match: the receipt was altered") from None
    if data is not None and hashlib.sha256(data).hexdigest() != receipt.sha256:
        raise ReceiptError("the file does not match the receipt: it is not the file received")


def parse_public_keys(text: str) -> dict[str, bytes]:
    """``ID BASE64`` lines, as ``intake-bot keys public`` prints them."""
    keys: dict[str, bytes] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 2 or line.lstrip().startswith("#"):
            continue
        try:
            keys[parts[0]] = base64.b64decode(parts[1], validate=True)
        except (ValueError, binascii.Error):
            raise ReceiptError(f"malformed public key {parts[0]}") from None
    return keys
