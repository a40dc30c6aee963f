"""Custody receipts: signed, checked offline, kept verifiable across key rotations."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.__main__ import main
from storage import keys
from storage.crypto import KeyRing
from storage.crypto.keyfile import KeyMaterial, load_key_file, write_key_file
from storage.crypto.receipts import Receipt, ReceiptError, issue, parse_public_keys, verify

FILE = b"%PDF-1.4 a medical report\n%%EOF"
RECEIVED = datetime(2026, 3, 14, 9, 26, 53, 123456, tzinfo=UTC)


def _receipt(ring: KeyRing, data: bytes = FILE) -> Receipt:
    return issue(ring, "K7QD-M2PF", hashlib.sha256(data).digest(), RECEIVED, "intake-bot 0.1.0")


def _files(tmp_path: Path, receipt_text: str, material: KeyMaterial) -> tuple[str, str, str]:
    """The three files a lawyer holds offline: receipt, the file, published keys."""
    (tmp_path / "receipt.txt").write_text(receipt_text, encoding="utf-8")
    (tmp_path / "report.pdf").write_bytes(FILE)
    (tmp_path / "public.txt").write_text(keys.public_keys_text(material), encoding="utf-8")
    return str(tmp_path / "receipt.txt"), str(tmp_path / "report.pdf"), str(tmp_path / "public.txt")


def test_a_receipt_verifies_offline_with_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    material = KeyMaterial.generate()
    receipt = _receipt(KeyRing(material))
    assert Receipt.parse(receipt.text()) == receipt
    assert "received: 2026-03-14T09:26:53Z" in receipt.text()
    receipt_path, file_path, keys_path = _files(tmp_path, receipt.text(), material)
    # Offline: no key file, no database where the command runs.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INTAKE_KEY_FILE", str(tmp_path / "absent" / "keys.json"))
    monkeypatch.setenv("INTAKE_DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    assert main(["verify-receipt", receipt_path, file_path, "--keys", keys_path]) == 0
    out = capsys.readouterr().out
    assert "receipt valid" in out and "K7QD-M2PF" in out and "the file matches" in out
    assert main(["verify-receipt", receipt_path, "--keys", keys_path]) == 0
    assert not (tmp_path / "absent").exists() and not (tmp_path / "data").exists()


def test_a_changed_file_a_changed_time_and_a_foreign_key_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    material = KeyMaterial.generate()
    ring = KeyRing(material)
    receipt = _receipt(ring)
    receipt_path, file_path, keys_path = _files(tmp_path, receipt.text(), material)

    # A changed file.
    Path(file_path).write_bytes(FILE.replace(b"medical", b"edited!"))
    assert main(["verify-receipt", receipt_path, file_path, "--keys", keys_path]) == 1
    assert "does not match the receipt" in capsys.readouterr().out
    with pytest.raises(ReceiptError, match="not the file received"):
        verify(receipt, ring.verify_keys, Path(file_path).read_bytes())

    # A changed time: one second later.
    moved = receipt.text().replace("09:26:53Z", "09:26:54Z")
    Path(receipt_path).write_text(moved, encoding="utf-8")
    assert main(["verify-receipt", receipt_path, "--keys", keys_path]) == 1
    assert "altered" in capsys.readouterr().out

    # A foreign key: signed by someone else's key, under its own id or under ours.
    stranger = KeyRing(KeyMaterial.generate())
    with pytest.raises(ReceiptError, match="not among the public keys"):
        verify(_receipt(stranger), ring.verify_keys, FILE)
    forged = _receipt(stranger)
    impostor = Receipt(
        forged.reference,
        forged.sha256,
        forged.received_at,
        forged.version,
        ring.signing_id,
        stranger.sign(
            Receipt(
                forged.reference, forged.sha256, forged.received_at, forged.version, ring.signing_id
            )
            .signed_part()
            .encode()
        ),
    )
    with pytest.raises(ReceiptError, match="altered"):
        verify(impostor, ring.verify_keys, FILE)
    Path(receipt_path).write_text(impostor.text(), encoding="utf-8")
    assert main(["verify-receipt", receipt_path, "--keys", keys_path]) == 1

    # Malformed input is a clear refusal, not a crash.
    Path(receipt_path).write_text("hello", encoding="utf-8")
    assert main(["verify-receipt", receipt_path, "--keys", keys_path]) == 1
    assert "not a custody receipt" in capsys.readouterr().out


def test_rotation_keeps_old_receipts_verifiable(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, KeyMaterial.generate(), exclusive=True)
    old_material = load_key_file(path)
    old_ring = KeyRing(old_material)
    old_receipt = _receipt(old_ring)

    keys.add_primary_key(path)
    rotated = load_key_file(path)
    new_ring = KeyRing(rotated)
    assert new_ring.signing_id != old_ring.signing_id
    # The old signing key's private half is gone; its public half stays published.
    assert old_material.signing_key is not None
    assert base64.b64encode(old_material.signing_key).decode() not in path.read_text()
    published = parse_public_keys(keys.public_keys_text(rotated))
    assert set(published) == {old_ring.signing_id, new_ring.signing_id}
    verify(old_receipt, published, FILE)
    verify(_receipt(new_ring), published, FILE)


def test_an_old_key_file_gets_a_signing_key_at_start(tmp_path: Path) -> None:
    material = KeyMaterial.generate()
    material.signing_id, material.signing_key, material.verify_keys = "", None, {}
    path = tmp_path / "keys.json"
    write_key_file(path, material, exclusive=True)
    assert load_key_file(path).signing_key is None
    upgraded, created = keys.ensure_key_file(path)
    assert not created and upgraded.signing_key is not None
    assert load_key_file(path).signing_id == upgraded.signing_id
    assert load_key_file(path).keks == material.keks


def test_a_read_only_old_key_file_signs_no_receipts_but_still_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    material = KeyMaterial.generate()
    material.signing_id, material.signing_key, material.verify_keys = "", None, {}
    path = tmp_path / "keys.json"
    write_key_file(path, material, exclusive=True)

    def read_only(*_args: object, **_kwargs: object) -> None:
        # As with systemd credentials (tests run as root, so chmod would not refuse).
        raise PermissionError("read-only file system")

    monkeypatch.setattr(keys, "write_key_file", read_only)
    loaded, created = keys.ensure_key_file(path)
    assert not created and loaded.signing_key is None and loaded.keks == material.keks
    assert not KeyRing(loaded).can_sign
