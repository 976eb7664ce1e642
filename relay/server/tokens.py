"""Random bearer tokens, stored only as their SHA-256.

A token is 32 random bytes (URL-safe base64); its SHA-256 is what the database keeps, so a leaked database
opens nothing.  A salted slow hash would add nothing for random tokens: there is no dictionary to try.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["TOKEN_BYTES", "hash_token", "new_token", "tokens_equal"]

TOKEN_BYTES = 32
MAX_TOKEN_LENGTH = 256


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def tokens_equal(stored_hash: bytes, token: str) -> bool:
    """Constant-time comparison of a presented token with a stored hash."""
    return hmac.compare_digest(stored_hash, hash_token(token))
