"""Password hashing with argon2id (argon2-cffi), and generated passwords.

Hashes are PHC strings (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``): the
parameters travel with the hash, so raising the cost later only needs
``needs_rehash`` at the next successful sign-in.
"""

from __future__ import annotations

import functools
import secrets
import string
from typing import Any, Mapping

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from salt_ext.errors import ServerFlowError
from salt_ext.security.settings import security_settings

_ALPHABET = string.ascii_letters + string.digits + "-_.~"


@functools.lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism,
                          hash_len=32, salt_len=16, type=Type.ID)


def hasher(settings: Mapping[str, Any] | None = None) -> PasswordHasher:
    cost = security_settings(settings or {})["argon2"]
    return _hasher(int(cost["time_cost"]), int(cost["memory_cost"]), int(cost["parallelism"]))


def hash_password(password: str, settings: Mapping[str, Any] | None = None) -> str:
    """An argon2id PHC string for ``password``."""
    return hasher(settings).hash(password)


def verify_password(stored_hash: str | None, password: str,
                    settings: Mapping[str, Any] | None = None) -> bool:
    """Whether ``password`` matches; a missing or malformed hash never matches.

    When there is no hash (unknown user, key-only account) a dummy verification
    still runs, so a failure takes as long whoever the user is.
    """
    ph = hasher(settings)
    if not stored_hash:
        _dummy_verify(ph, password)
        return False
    try:
        return ph.verify(stored_hash, password)
    except VerifyMismatchError:
        return False
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str, settings: Mapping[str, Any] | None = None) -> bool:
    try:
        return hasher(settings).check_needs_rehash(stored_hash)
    except InvalidHashError:
        return True


@functools.lru_cache(maxsize=8)
def _dummy_hash(ph: PasswordHasher) -> str:
    return ph.hash(secrets.token_hex(16))


def _dummy_verify(ph: PasswordHasher, password: str) -> None:
    try:
        ph.verify(_dummy_hash(ph), password)
    except (VerificationError, InvalidHashError):
        pass


def generate_password(length: int = 20) -> str:
    """A random password with letters, digits and ``-_.~`` (at least one of each class)."""
    while True:
        value = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if (any(c.islower() for c in value) and any(c.isupper() for c in value)
                and any(c.isdigit() for c in value)):
            return value


def check_password_policy(password: str, settings: Mapping[str, Any] | None = None) -> None:
    """AUTH001 when ``password`` is too short or trivially weak."""
    minimum = int(security_settings(settings or {})["password_min_length"])
    if len(password) < minimum:
        raise ServerFlowError("AUTH001", f"a password needs at least {minimum} characters")
    if len(set(password)) < 4:
        raise ServerFlowError("AUTH001", "a password needs more than three distinct characters")
