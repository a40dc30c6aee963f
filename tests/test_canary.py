"""The canary scanner finds a canary in every encoding it claims to, anywhere in a blob."""

from __future__ import annotations

import base64
import json

import pytest

from tests.canary import encodings, new_canary, scan


@pytest.fixture
def canary() -> str:
    return new_canary()


def test_canary_has_cyrillic_tajik_letters_and_an_emoji(canary: str) -> None:
    assert "Канарейка" in canary
    assert all(letter in canary for letter in "ӣӯҳқғҷ")
    assert "🐦" in canary
    assert new_canary() != canary


def test_nothing_found_in_unrelated_bytes(canary: str) -> None:
    assert scan(b"\x00" * 1000 + "Канарейка".encode() + bytes(range(256)), [canary]) == []


@pytest.mark.parametrize("prefix", [b"", b"x", b"xy", b"xyz"])
def test_every_encoding_is_found_at_any_offset(canary: str, prefix: bytes) -> None:
    utf8 = canary.encode()
    stored = [
        utf8,
        canary.encode("utf-16-le"),
        canary.encode("utf-16-be"),
        utf8.hex().encode(),
        utf8.hex().upper().encode(),
        base64.b64encode(prefix + utf8 + b"tail"),
        base64.urlsafe_b64encode(prefix + utf8),
        json.dumps({"account": canary}).encode(),
    ]
    for blob in stored:
        assert scan(b"head" + blob + b"tail", [canary]), blob[:40]


def test_telegram_id_is_found_as_decimal() -> None:
    telegram_id = "7123456789"
    assert "decimal" in encodings(telegram_id)
    found = scan(b'{"chat": 7123456789}', [telegram_id])
    assert found
    assert scan(b"{'chat': 712345678}", [telegram_id]) == []
