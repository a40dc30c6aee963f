"""PIN hashing: scrypt from ``cryptography``, slow by design, run off the event loop."""

from __future__ import annotations

import asyncio
import hmac
import re

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

#: The production cost: 2**15 with r=8 takes 32 MB and tens of milliseconds a guess.
PRODUCTION_N = 2**15
SALT_BYTES = 16
HASH_BYTES = 32
PIN_PATTERN = re.compile(r"[0-9]{6,12}")
#: Any plain message of digits is taken as a PIN attempt (and deleted at once).
DIGITS = re.compile(r"[0-9]{1,64}")


def is_valid_pin(text: str) -> bool:
    return PIN_PATTERN.fullmatch(text) is not None


def looks_like_pin(text: str) -> bool:
    return DIGITS.fullmatch(text.strip()) is not None


class PinHasher:
    """Derives PIN hashes with a fixed scrypt cost ``n`` (r=8, p=1).

    A cost below :data:`PRODUCTION_N` is refused unless asked for by name
    (``weak_for_tests=True``): the test suite's only way to go faster.
    """

    def __init__(self, n: int = PRODUCTION_N, *, weak_for_tests: bool = False) -> None:
        if n < PRODUCTION_N and not weak_for_tests:
            raise ValueError(f"scrypt n must be at least {PRODUCTION_N}")
        if n < 2 or n & (n - 1):
            raise ValueError("scrypt n must be a power of two")
        self.n = n

    @staticmethod
    def derive_sync(pin: str, salt: bytes, n: int) -> bytes:
        kdf = Scrypt(salt=salt, length=HASH_BYTES, n=n, r=8, p=1)
        return kdf.derive(pin.encode())

    async def derive(self, pin: str, salt: bytes, n: int | None = None) -> bytes:
        """The hash of ``pin`` under ``salt``, computed in a worker thread."""
        return await asyncio.to_thread(self.derive_sync, pin, salt, n or self.n)


def same(a: bytes | None, b: bytes | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a, b)
