"""Password hashes: ARGON2ID, which Postroom and Dovecot both verify; older scrypt ones still read.

New hashes are argon2-cffi's PHC strings (``$argon2id$v=19$m=19456,t=2,p=1$salt$key``); the
``dovecot_users`` view gives them to Dovecot as ``{ARGON2ID}$argon2id$...``. Parallelism stays 1
because Dovecot verifies through libsodium, which only knows p=1. The parameters are OWASP's
first choice for Argon2id (19 MiB, two passes): one check costs about 20 ms. Hashes Postroom wrote
before (``scrypt$N$r$p$salt$key``) verify for SMTP AUTH only, and ``needs_rehash`` tells the
caller to replace them with an ARGON2ID hash after the next successful check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import argon2

from app.errors import PostroomError

MAX_PASSWORD_BYTES = 1024
ARGON2_PREFIX = "$argon2id$"

_HASHER = argon2.PasswordHasher(
    time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16
)


def check_password(password: str) -> bytes:
    """The password's UTF-8 bytes, or a refusal of an empty or overlong one."""
    if not password:
        raise PostroomError(
            "The password is empty. Type a password, or leave the user without one."
        )
    secret = password.encode("utf-8")
    if len(secret) > MAX_PASSWORD_BYTES:
        raise PostroomError(f"The password is longer than {MAX_PASSWORD_BYTES} bytes.")
    if "\0" in password:
        raise PostroomError("The password has a NUL character, which IMAP and POP3 cannot send.")
    return secret


def hash_password(password: str) -> str:
    """A self-describing ARGON2ID hash of ``password`` (PHC string format)."""
    return _HASHER.hash(check_password(password))


def verify_password(password: str, stored: str | None) -> bool:
    """True if ``password`` matches the stored hash (False for no hash or a malformed one)."""
    if not stored:
        return False
    secret = password.encode("utf-8")
    if len(secret) > MAX_PASSWORD_BYTES:
        return False
    if stored.startswith(ARGON2_PREFIX):
        try:
            return _HASHER.verify(stored, secret)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False
    return _verify_scrypt(secret, stored)


def needs_rehash(stored: str | None) -> bool:
    """True for a hash that verifies but is not today's ARGON2ID with today's parameters."""
    if not stored:
        return False
    if not stored.startswith(ARGON2_PREFIX):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except (argon2.exceptions.InvalidHashError, ValueError):
        return True


def _verify_scrypt(secret: bytes, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        actual = hashlib.scrypt(
            secret,
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
