"""Password hashing with argon2id, and a check that costs the same for unknown accounts."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 takes any length; a megabyte "password" would only burn CPU

_HASHER = PasswordHasher()  # argon2id with the library's RFC 9106 low-memory profile


@functools.cache
def _dummy() -> str:
    """Verified against when the account is unknown or has no password yet, so that
    both take one full argon2 verification: the time does not tell which names exist.

    Made on first use, not at import: every command's parser imports this module,
    and a hash costs a fraction of a second (`statusd set` must start fast).
    """
    return _HASHER.hash("statusd: no such account")


def hash_password(password: str) -> str:
    """The argon2id hash to store."""
    return _HASHER.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """True when `password` matches `stored`; the same work when `stored` is None."""
    dummy = _dummy()  # first made here whatever the account: no first answer tells a name either
    try:
        return _HASHER.verify(stored or dummy, password[:MAX_LENGTH]) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _HASHER.check_needs_rehash(stored)


def problem(password: str) -> str | None:
    """Why a new password is refused, in one sentence, or None."""
    if len(password) < MIN_LENGTH:
        return f"the password should have at least {MIN_LENGTH} characters (a few words are easiest)"
    if len(password) > MAX_LENGTH:
        return f"the password should have at most {MAX_LENGTH} characters"
    return None
