"""Case references: 8 random Crockford base32 characters shown as ``XXXX-XXXX``.

Random (40 bits), not sequential and not derived from any id, so a reference
reveals neither how many cases exist nor when one was made.
"""

from __future__ import annotations

import secrets

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})


def new_reference() -> str:
    chars = "".join(secrets.choice(CROCKFORD) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def normalise_reference(text: str) -> str | None:
    """Accept what a person types (lower case, no dash, O for 0); None if invalid."""
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum()).translate(_ALIASES)
    if len(cleaned) != 8 or any(ch not in CROCKFORD for ch in cleaned):
        return None
    return f"{cleaned[:4]}-{cleaned[4:]}"
