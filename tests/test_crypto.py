"""Envelope encryption, key file handling, blind indexes."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.crypto import DataKey, DecryptionError, FieldContext, KeyRing, Purpose, peek_key_id
from storage.crypto.keyfile import KeyFileError, KeyMaterial, load_key_file, write_key_file

ROW = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER_ROW = uuid.UUID("00000000-0000-4000-8000-000000000002")


def test_value_round_trips_and_names_its_key() -> None:
    key = DataKey.generate()
    context = FieldContext("cases", "answers_sealed", ROW)
    sealed = key.seal("Ҷабрдида ӣ ӯ ҳ қ ғ".encode(), context)
    assert sealed[0] == 1
    assert peek_key_id(sealed) == key.key_id
    assert key.open(sealed, context).decode() == "Ҷабрдида ӣ ӯ ҳ қ ғ"


def test_same_plaintext_gives_different_ciphertexts() -> None:
    key = DataKey.generate()
    context = FieldContext("cases", "answers_sealed", ROW)
    assert key.seal(b"same", context) != key.seal(b"same", context)


@pytest.mark.parametrize(
    "moved",
    [
        FieldContext("cases", "answers_sealed", OTHER_ROW),
        FieldContext("cases", "reporter_chat_sealed", ROW),
        FieldContext("users", "answers_sealed", ROW),
    ],
    ids=["other-row", "other-column", "other-table"],
)
def test_value_moved_elsewhere_does_not_open(moved: FieldContext) -> None:
    key = DataKey.generate()
    sealed = key.seal(b"secret", FieldContext("cases", "answers_sealed", ROW))
    with pytest.raises(DecryptionError):
        key.open(sealed, moved)


def test_every_flipped_bit_is_rejected() -> None:
    key = DataKey.generate()
    context = FieldContext("cases", "answers_sealed", ROW)
    sealed = key.seal(b"a short account", context)
    for position in range(len(sealed)):
        for bit in (0, 7):
            tampered = bytearray(sealed)
            tampered[position] ^= 1 << bit
            with pytest.raises(DecryptionError):
                key.open(bytes(tampered), context)


def test_truncated_and_empty_values_are_rejected() -> None:
    key = DataKey.generate()
    context = FieldContext("cases", "answers_sealed", ROW)
    sealed = key.seal(b"x", context)
    for cut in (0, 1, 5, len(sealed) - 1):
        with pytest.raises(DecryptionError):
            key.open(sealed[:cut], context)


def test_value_of_another_data_key_is_rejected() -> None:
    context = FieldContext("cases", "answers_sealed", ROW)
    sealed = DataKey.generate().seal(b"x", context)
    with pytest.raises(DecryptionError):
        DataKey.generate().open(sealed, context)


@given(st.binary(max_size=4096), st.text(max_size=30), st.uuids())
def test_round_trip_property(plaintext: bytes, column: str, row: uuid.UUID) -> None:
    key = DataKey.generate()
    context = FieldContext("t", column, row)
    assert key.open(key.seal(plaintext, context), context) == plaintext


@given(st.text(max_size=2000))
def test_keyring_purpose_round_trip_property(text: str) -> None:
    ring = KeyRing(KeyMaterial.generate())
    context = FieldContext("users", "chat_sealed", ROW)
    encoded = text.encode("utf-8", "surrogatepass")
    assert ring.open(Purpose.USER, ring.seal(Purpose.USER, encoded, context), context) == encoded


def test_purposes_do_not_share_keys(keyring: KeyRing) -> None:
    context = FieldContext("users", "chat_sealed", ROW)
    sealed = keyring.seal(Purpose.USER, b"123", context)
    with pytest.raises(DecryptionError):
        keyring.open(Purpose.DRAFT, sealed, context)


def test_data_key_wrap_is_bound_to_its_case(keyring: KeyRing) -> None:
    data_key = DataKey.generate()
    wrapped = keyring.wrap_data_key(data_key, FieldContext("key_wraps", "wrapped:system", ROW))
    assert (
        keyring.unwrap_data_key(wrapped, FieldContext("key_wraps", "wrapped:system", ROW))
        == data_key
    )
    with pytest.raises(DecryptionError):
        keyring.unwrap_data_key(wrapped, FieldContext("key_wraps", "wrapped:system", OTHER_ROW))


def test_old_keys_still_open_after_a_new_primary(key_material: KeyMaterial) -> None:
    context = FieldContext("users", "chat_sealed", ROW)
    sealed = KeyRing(key_material).seal(Purpose.USER, b"42", context)
    old_primary = key_material.primary
    key_material.add_primary()
    ring = KeyRing(key_material)
    assert ring.primary_id != old_primary
    assert ring.open(Purpose.USER, sealed, context) == b"42"
    del key_material.keks[old_primary]
    with pytest.raises(DecryptionError):
        KeyRing(key_material).open(Purpose.USER, sealed, context)


def test_blind_index_is_keyed_and_deterministic(keyring: KeyRing) -> None:
    assert keyring.blind_index("tg-user", 12345) == keyring.blind_index("tg-user", 12345)
    assert keyring.blind_index("tg-user", 12345) != keyring.blind_index("tg-user", 12346)
    assert keyring.blind_index("tg-user", 12345) != keyring.blind_index("tg-chat", 12345)
    other = KeyRing(KeyMaterial.generate())
    assert other.blind_index("tg-user", 12345) != keyring.blind_index("tg-user", 12345)
    assert len(keyring.blind_index("tg-user", 1)) == 32


def test_key_file_is_written_0600_and_reloads(tmp_path: Path, key_material: KeyMaterial) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, key_material, exclusive=True)
    assert os.stat(path).st_mode & 0o777 == 0o600
    loaded = load_key_file(path)
    assert loaded.keks == key_material.keks
    assert loaded.primary == key_material.primary
    assert loaded.blind_index_key == key_material.blind_index_key
    assert loaded.audit_key == key_material.audit_key


def test_key_file_is_never_overwritten_by_init(tmp_path: Path, key_material: KeyMaterial) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, key_material, exclusive=True)
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(path, KeyMaterial.generate(), exclusive=True)
    assert load_key_file(path).keks == key_material.keks


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_key_file_readable_by_others_is_refused(
    tmp_path: Path, key_material: KeyMaterial, mode: int
) -> None:
    path = tmp_path / "keys.json"
    write_key_file(path, key_material, exclusive=True)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_key_file(path)


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{}",
        '{"format": 1}',
        '{"format": 2, "keks": {}}',
        "not json",
        '{"format":1,"primary":"a","keks":{"a":"c2hvcnQ="},"blind_index_key":"","audit_key":""}',
    ],
)
def test_malformed_key_file_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "keys.json"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError):
        load_key_file(path)


def test_missing_key_file_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="keys init"):
        load_key_file(tmp_path / "absent.json")


def test_systemd_credentials_folder_is_trusted_whatever_the_mode(
    tmp_path: Path, key_material: KeyMaterial, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "intake_keys"
    write_key_file(path, key_material, exclusive=True)
    path.chmod(0o440)
    with pytest.raises(KeyFileError):
        load_key_file(path)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert load_key_file(path).primary == key_material.primary
