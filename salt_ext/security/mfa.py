"""TOTP multi-factor authentication (pyotp) and one-time recovery codes.

Enrolment is two steps: ``begin`` stores a new secret as *pending* and returns
it (otpauth URI for the authenticator app) with fresh recovery codes; ``confirm``
activates it once the user proves the app works by sending one valid code.
Until then sign-in does not ask for a code.

The TOTP secret must be readable to check codes, so it is encrypted
(AES-256-GCM, key derived from ``serverflow:security:secret_key``, the tenant
and user ids as associated data: a ciphertext copied to another row does not
decrypt). Recovery codes are only kept as peppered HMACs and work once.
A TOTP step, once accepted, is never accepted again (replay protection).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any, Mapping

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from salt_ext.errors import ServerFlowError
from salt_ext.security.settings import derived_key, security_settings

_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
_VERSION = "v1"


@dataclass(frozen=True)
class Enrollment:
    secret: str
    uri: str
    recovery_codes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"secret": self.secret, "otpauth_uri": self.uri, "recovery_codes": list(self.recovery_codes)}


def _aad(tenant_id: str, user_id: str) -> bytes:
    return f"serverflow-mfa:{tenant_id}:{user_id}".encode()


def encrypt_secret(settings: Mapping[str, Any], tenant_id: str, user_id: str, secret: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(derived_key(settings, "mfa-secret")).encrypt(nonce, secret.encode(), _aad(tenant_id, user_id))
    return f"{_VERSION}:" + base64.urlsafe_b64encode(nonce + sealed).decode()


def decrypt_secret(settings: Mapping[str, Any], tenant_id: str, user_id: str, blob: str) -> str:
    try:
        version, data = blob.split(":", 1)
        if version != _VERSION:
            raise ValueError(version)
        raw = base64.urlsafe_b64decode(data.encode())
        return AESGCM(derived_key(settings, "mfa-secret")).decrypt(
            raw[:12], raw[12:], _aad(tenant_id, user_id)).decode()
    except (ValueError, InvalidTag) as exc:
        raise ServerFlowError("SYS003", "the MFA secret cannot be decrypted (was "
                              "serverflow:security:secret_key changed?); re-enrol the user") from exc


def new_recovery_codes(count: int) -> list[str]:
    """``count`` codes like ``k7qm-x2rf-9dpa`` (60 bits each)."""
    def one() -> str:
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(12))
        return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"
    return [one() for _ in range(count)]


def normalize_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def looks_like_recovery_code(code: str) -> bool:
    norm = normalize_recovery_code(code)
    return len(norm) == 12 and all(ch in _RECOVERY_ALPHABET for ch in norm)


def hash_recovery_code(settings: Mapping[str, Any], user_id: str, code: str) -> str:
    msg = f"{user_id}:{normalize_recovery_code(code)}".encode()
    return hmac.new(derived_key(settings, "recovery-code"), msg, hashlib.sha256).hexdigest()


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(settings: Mapping[str, Any], secret: str, email: str) -> str:
    issuer = security_settings(settings)["mfa"]["issuer"]
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def matching_step(secret: str, code: str, *, last_step: int | None, window: int = 1,
                  now: float | None = None) -> int | None:
    """The TOTP time step ``code`` belongs to, if valid, within ``window`` and newer than ``last_step``."""
    code = (code or "").strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(_dt(now))
    found = None
    for step in range(current - window, current + window + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    if found is None or (last_step is not None and found <= last_step):
        return None
    return found


def _dt(now: float | None):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)


# -- database -----------------------------------------------------------------------------------
def begin(conn: Any, settings: Mapping[str, Any], tenant_id: str, user: Mapping[str, Any]) -> Enrollment:
    """Store a pending secret and fresh recovery codes for ``user`` (a users row)."""
    user_id = str(user["id"])
    secret = new_secret()
    codes = new_recovery_codes(int(security_settings(settings)["mfa"]["recovery_codes"]))
    # The codes replace the current ones only when the enrolment is confirmed.
    conn.execute(
        "UPDATE users SET mfa_pending_secret_enc = %s, mfa_pending_recovery_hashes = %s,"
        " updated_at = now() WHERE id = %s",
        (encrypt_secret(settings, tenant_id, user_id, secret),
         [hash_recovery_code(settings, user_id, c) for c in codes], user_id))
    return Enrollment(secret, provisioning_uri(settings, secret, user["email"]), codes)


def confirm(conn: Any, settings: Mapping[str, Any], tenant_id: str, user: Mapping[str, Any],
            code: str, now: float | None = None) -> None:
    """Activate the pending secret when ``code`` is valid for it; AUTH001 otherwise."""
    user_id = str(user["id"])
    pending = user.get("mfa_pending_secret_enc")
    if not pending:
        raise ServerFlowError("AUTH004", f"{user['email']} has no MFA enrolment waiting for "
                              "confirmation; run `salt-run serverflow.mfa_enroll` first")
    secret = decrypt_secret(settings, tenant_id, user_id, pending)
    window = int(security_settings(settings)["mfa"]["valid_window"])
    step = matching_step(secret, code, last_step=None, window=window, now=now)
    if step is None:
        raise ServerFlowError("AUTH001", "that code is not valid for the new authenticator; "
                              "check the device clock and try the current code")
    conn.execute(
        "UPDATE users SET mfa_enabled = true, mfa_secret_enc = mfa_pending_secret_enc,"
        " mfa_pending_secret_enc = NULL, mfa_last_step = %s,"
        " mfa_recovery_hashes = COALESCE(mfa_pending_recovery_hashes, '{}'),"
        " mfa_pending_recovery_hashes = NULL, updated_at = now() WHERE id = %s", (step, user_id))


def check(conn: Any, settings: Mapping[str, Any], tenant_id: str, user: Mapping[str, Any],
          code: str, now: float | None = None) -> str | None:
    """Accept a TOTP code (recording its step) or consume a recovery code.

    Returns ``"totp"`` or ``"recovery_code"``, or None when the code is not valid.
    """
    user_id = str(user["id"])
    if looks_like_recovery_code(code):
        digest = hash_recovery_code(settings, user_id, code)
        if any(hmac.compare_digest(digest, h) for h in (user.get("mfa_recovery_hashes") or [])):
            conn.execute("UPDATE users SET mfa_recovery_hashes = array_remove(mfa_recovery_hashes, %s)"
                         " WHERE id = %s", (digest, user_id))
            return "recovery_code"
        return None
    secret = decrypt_secret(settings, tenant_id, user_id, user["mfa_secret_enc"])
    window = int(security_settings(settings)["mfa"]["valid_window"])
    step = matching_step(secret, code, last_step=user.get("mfa_last_step"), window=window, now=now)
    if step is None:
        return None
    conn.execute("UPDATE users SET mfa_last_step = %s WHERE id = %s", (step, user_id))
    return "totp"


def disable(conn: Any, user_id: str) -> None:
    conn.execute("UPDATE users SET mfa_enabled = false, mfa_secret_enc = NULL, mfa_pending_secret_enc = NULL,"
                 " mfa_pending_recovery_hashes = NULL, mfa_last_step = NULL, mfa_recovery_hashes = '{}',"
                 " updated_at = now() WHERE id = %s", (user_id,))
