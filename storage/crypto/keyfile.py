"""The key file: key-encryption keys, the blind-index key, the audit key and
the Ed25519 key that signs custody receipts (with the public halves of the
signing keys used before, so old receipts still verify after a rotation).

The file is JSON, created with mode 0600 and refused when group or others can
read it. It is the one secret that makes the database readable: losing it
loses every case, leaking it (with the database) exposes every case.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

KEY_BYTES = 32
FILE_FORMAT = 1


class KeyFileError(Exception):
    """The key file is missing, unsafe or malformed; the message says which."""


@dataclass(slots=True)
class KeyMaterial:
    primary: str
    keks: dict[str, bytes]
    blind_index_key: bytes
    audit_key: bytes
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    # The Ed25519 key signing custody receipts now (None in a key file written
    # before receipts existed, until ``ensure_key_file`` adds one), and the
    # public key of every signing key ever used, by id, the current one included.
    signing_id: str = ""
    signing_key: bytes | None = None
    verify_keys: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def generate(cls) -> KeyMaterial:
        kek_id = new_kek_id()
        material = cls(
            primary=kek_id,
            keks={kek_id: secrets.token_bytes(KEY_BYTES)},
            blind_index_key=secrets.token_bytes(KEY_BYTES),
            audit_key=secrets.token_bytes(KEY_BYTES),
        )
        material.add_signing_key()
        return material

    def add_primary(self) -> str:
        """Rotation: a new key-encryption key and a new signing key."""
        kek_id = new_kek_id()
        self.keks[kek_id] = secrets.token_bytes(KEY_BYTES)
        self.primary = kek_id
        self.add_signing_key()
        return kek_id

    def add_signing_key(self) -> str:
        """A new signing key; the old one's private half is dropped, its public half kept."""
        private = Ed25519PrivateKey.generate()
        signing_id = f"sig-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"
        self.signing_id, self.signing_key = signing_id, private.private_bytes_raw()
        self.verify_keys[signing_id] = private.public_key().public_bytes(
            Encoding.Raw, PublicFormat.Raw
        )
        return signing_id

    def to_json(self) -> str:
        def b64(raw: bytes) -> str:
            return base64.b64encode(raw).decode("ascii")

        doc: dict[str, object] = {
            "format": FILE_FORMAT,
            "created": self.created,
            "primary": self.primary,
            "keks": {kid: b64(key) for kid, key in self.keks.items()},
            "blind_index_key": b64(self.blind_index_key),
            "audit_key": b64(self.audit_key),
        }
        if self.signing_key is not None:
            doc["signing"] = {"id": self.signing_id, "key": b64(self.signing_key)}
        if self.verify_keys:
            doc["verify_keys"] = {kid: b64(key) for kid, key in self.verify_keys.items()}
        return json.dumps(doc, indent=2)

    @classmethod
    def from_json(cls, text: str) -> KeyMaterial:
        try:
            doc = json.loads(text)
            if doc.get("format") != FILE_FORMAT:
                raise KeyFileError("key file: unknown format")
            keks = {str(k): _decode_key(v) for k, v in doc["keks"].items()}
            material = cls(
                primary=str(doc["primary"]),
                keks=keks,
                blind_index_key=_decode_key(doc["blind_index_key"]),
                audit_key=_decode_key(doc["audit_key"]),
                created=str(doc.get("created", "")),
            )
            if "signing" in doc:
                material.signing_id = str(doc["signing"]["id"])
                material.signing_key = _decode_key(doc["signing"]["key"])
            material.verify_keys = {
                str(k): _decode_key(v) for k, v in doc.get("verify_keys", {}).items()
            }
        except KeyFileError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError):
            raise KeyFileError("key file: malformed JSON or missing keys") from None
        if material.primary not in material.keks:
            raise KeyFileError("key file: the primary key id is not among the keys")
        if material.signing_key is not None and material.signing_id not in material.verify_keys:
            raise KeyFileError("key file: the signing key's public half is missing")
        return material


def new_kek_id() -> str:
    return f"kek-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"


def _decode_key(value: object) -> bytes:
    if not isinstance(value, str):
        raise ValueError("key must be base64 text")
    raw = base64.b64decode(value, validate=True)
    if len(raw) != KEY_BYTES:
        raise ValueError("key must be 32 bytes")
    return raw


def _in_systemd_credentials(path: Path) -> bool:
    """systemd's credentials folder is readable only by the service, whatever the
    file's mode bits (which may show an ACL mask), so the check does not apply."""
    folder = os.environ.get("CREDENTIALS_DIRECTORY")
    return folder is not None and path.resolve().parent == Path(folder).resolve()


def load_key_file(path: Path) -> KeyMaterial:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist; run `intake-bot keys init`") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO) and not _in_systemd_credentials(path):
        raise KeyFileError(f"key file {path} is readable by other users; run `chmod 600 {path}`")
    return KeyMaterial.from_json(path.read_text(encoding="utf-8"))


def write_key_file(path: Path, material: KeyMaterial, *, exclusive: bool) -> None:
    """Write atomically with mode 0600; with ``exclusive`` never overwrite."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if exclusive and path.exists():
        raise KeyFileError(f"key file {path} already exists; refusing to overwrite it")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(material.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if another process created it meanwhile
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
