"""Security settings (``serverflow:security:`` in the master config) and the key material.

Every key has a default and a one-line description. ``security_settings(settings)``
returns the merged block; ``with_secret_key(settings, opts)`` fills the one secret
the module needs when the operator did not set it.

One master secret (``serverflow:security:secret_key``) is stretched with HKDF
into one key per purpose, so no two features ever share a key:
TOTP-secret encryption, recovery-code pepper, API-key pepper, access-token
signing. Rotating it invalidates access tokens, API keys, recovery codes and
MFA enrolments (documented in the README's Security model).
"""

from __future__ import annotations

import copy
import functools
import os
import secrets
from pathlib import Path
from typing import Any, Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from salt_ext.errors import ServerFlowError

SECURITY_DEFAULTS: dict[str, Any] = {
    # Master secret for derived keys; None: read (or create, mode 0600) <pki_dir>/serverflow.secret.
    "secret_key": None,
    # File holding the master secret, used when secret_key is unset (None: <pki_dir>/serverflow.secret).
    "secret_key_file": None,
    # Shortest password user_add accepts (generated passwords are 20 characters).
    "password_min_length": 12,
    # argon2id cost: time (iterations), memory (KiB), parallelism (RFC 9106 second recommendation).
    "argon2": {"time_cost": 3, "memory_cost": 65536, "parallelism": 4},
    "lockout": {
        # Failed sign-ins (wrong password or wrong MFA code) in a row before the account locks.
        "max_failures": 5,
        # Seconds a locked account stays locked (AUTH001 "locked" until then).
        "lock_seconds": 900,
    },
    "tokens": {
        # Lifetime (seconds) of a JWT access token (spec §6.1: short-lived, 15 min).
        "access_ttl": 900,
        # Lifetime (seconds) of one refresh token; each use rotates it (sliding).
        "refresh_ttl": 1209600,
        # Absolute lifetime (seconds) of a sign-in: no rotation extends a family beyond it.
        "session_max_age": 2592000,
        # ``iss`` claim of access tokens.
        "issuer": "serverflow",
        # Clock skew (seconds) tolerated when checking exp/nbf.
        "leeway": 10,
    },
    "mfa": {
        # Issuer shown by authenticator apps.
        "issuer": "ServerFlow",
        # Accepted TOTP steps either side of now (1 = ±30 s); a used step is never accepted again.
        "valid_window": 1,
        # One-time recovery codes generated at enrolment.
        "recovery_codes": 10,
    },
    "api_keys": {
        # Days an API key lives unless apikey_create says otherwise; None: until revoked.
        "default_ttl_days": None,
    },
    "rate_limit": {
        # Switch the Redis rate limiter on or off.
        "enabled": True,
        # When Redis is unreachable: True lets requests through (logged), False refuses (SYS002).
        "fail_open": True,
        # Per bucket: at most `limit` requests per `window` seconds, per user and per tenant.
        "buckets": {
            "chat": {"user": {"limit": 30, "window": 60}, "tenant": {"limit": 300, "window": 60}},
            "login": {"user": {"limit": 10, "window": 300}, "tenant": {"limit": 300, "window": 60}},
            "api": {"user": {"limit": 120, "window": 60}, "tenant": {"limit": 1200, "window": 60}},
        },
    },
}

# Local accounts that run ``salt-run`` on the master itself: Salt name -> ServerFlow identity.
# (A top-level ``serverflow:cli_identities`` overrides this default.)
DEFAULT_CLI_IDENTITIES: dict[str, dict[str, Any]] = {"root": {"role": "owner"}}


def _merge(base: dict[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def security_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The ``security`` block of ``settings`` merged over SECURITY_DEFAULTS."""
    return _merge(SECURITY_DEFAULTS, settings.get("security") or {})


def with_secret_key(settings: dict[str, Any], opts: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``settings`` with ``security.secret_key`` filled from the key file when unset.

    The file is ``security.secret_key_file`` or ``<pki_dir>/serverflow.secret``;
    it is created (32 random bytes, hex, mode 0600) the first time, so every
    master process (workers, engine, runners) reads the same secret.
    """
    sec = security_settings(settings)
    if sec.get("secret_key"):
        return settings
    path = sec.get("secret_key_file")
    if not path and opts and opts.get("pki_dir"):
        path = os.path.join(str(opts["pki_dir"]), "serverflow.secret")
    if not path:
        return settings
    out = dict(settings)
    out["security"] = {**(settings.get("security") or {}), "secret_key": _read_or_create(Path(path))}
    return out


def _read_or_create(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another master process won the race
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def secret_key(settings: Mapping[str, Any]) -> str:
    """The master secret, or SYS003 saying how to set it."""
    value = security_settings(settings).get("secret_key")
    if not value:
        raise ServerFlowError("SYS003", "serverflow:security:secret_key is not set (and no key file "
                              "was found); set it in the master config to a long random string")
    return str(value)


@functools.lru_cache(maxsize=64)
def _derive(master: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"serverflow/security/v1",
                info=purpose.encode()).derive(master.encode())


def derived_key(settings: Mapping[str, Any], purpose: str) -> bytes:
    """A 32-byte key for one purpose ("mfa-secret", "recovery-code", "api-key", "access-token")."""
    return _derive(secret_key(settings), purpose)


def cli_identities(settings: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Local Salt user names (no eauth) mapped to a ServerFlow role."""
    found = settings.get("cli_identities")
    return dict(found) if isinstance(found, Mapping) else dict(DEFAULT_CLI_IDENTITIES)
