"""Password hashes for SMTP authentication (scrypt, from the standard library)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from app.errors import PostroomError

# RFC 7914's interactive-login parameters: about 50 ms and 16 MiB per check.
_N, _R, _P = 2**14, 8, 1
_KEY_BYTES = 32
_MAX_PASSWORD_BYTES = 1024


def hash_password(password: str) -> str:
    """A self-describing scrypt hash of ``password``: ``scrypt$N$r$p$salt$key``."""
    if not password:
        raise PostroomError(
            "The password is empty. Type a password, or leave the user without one."
        )
    secret = password.encode("utf-8")
    if len(secret) > _MAX_PASSWORD_BYTES:
        raise PostroomError(f"The password is longer than {_MAX_PASSWORD_BYTES} bytes.")
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(secret, salt=salt, n=_N, r=_R, p=_P, dklen=_KEY_BYTES)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(key)])


def verify_password(password: str, stored: str | None) -> bool:
    """True if ``password`` matches the stored hash (False for no hash or a malformed one)."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        actual = hashlib.scrypt(
            password.encode("utf-8")[: _MAX_PASSWORD_BYTES + 1],
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=128 * 1024 * 1024,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
