"""Session tokens (spec §5.2.1, §6.1): short JWT access tokens and rotating refresh tokens.

- Access token: a JWT (HS256, key derived from ``serverflow:security:secret_key``)
  living ``security.tokens.access_ttl`` seconds (15 min); claims: ``sub`` (user id),
  ``tid`` (tenant), ``email``, ``role``, ``tags``, ``amr`` (how the user signed in),
  ``typ=access``, ``iat/nbf/exp``, ``jti``. Checking one needs no database.
- Refresh token: an opaque ``sfr_<random>`` string, stored only as its SHA-256,
  in a *family* started by one sign-in. Each use marks it used and hands out a
  successor (rotation). A used token presented again means it was stolen (or
  replayed): the whole family is revoked and the user must sign in again
  (reuse detection). A family never outlives ``session_max_age``. Refreshing
  re-reads the user, so a disabled or demoted user does not keep old powers.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import jwt

from salt_ext.errors import ErrorInfo, ServerFlowError
from salt_ext.security import audit
from salt_ext.security.identity import Principal, authenticate, principal_from_row, tenant_of
from salt_ext.security.settings import derived_key, security_settings

ALGORITHM = "HS256"
REFRESH_PREFIX = "sfr_"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str | None
    refresh_expires_at: datetime | None
    principal: Principal

    def as_dict(self) -> dict[str, Any]:
        """The shape of spec §5.2.1 ``POST /auth/login`` (and ``/auth/refresh``)."""
        out: dict[str, Any] = {"access_token": self.access_token, "token_type": "Bearer",
                               "expires_in": self.expires_in,
                               "user": {"id": self.principal.id, "email": self.principal.email,
                                        "name": self.principal.display_name, "role": self.principal.role}}
        if self.refresh_token:
            out["refresh_token"] = self.refresh_token
            out["refresh_expires_at"] = self.refresh_expires_at.isoformat() if self.refresh_expires_at else None
        return out


def _conf(settings: Mapping[str, Any]) -> dict[str, Any]:
    return security_settings(settings)["tokens"]


# -- access tokens (no database) ------------------------------------------------------------------
def issue_access_token(settings: Mapping[str, Any], principal: Principal, *,
                       now: float | None = None) -> tuple[str, int]:
    """A signed access token for ``principal`` and its lifetime in seconds."""
    conf = _conf(settings)
    ttl = int(conf["access_ttl"])
    issued = int(time.time() if now is None else now)
    claims = {"iss": conf["issuer"], "sub": principal.id or principal.email, "tid": principal.tenant_id,
              "email": principal.email, "role": principal.role, "tags": list(principal.tags),
              "amr": principal.method, "typ": "access", "iat": issued, "nbf": issued,
              "exp": issued + ttl, "jti": uuid.uuid4().hex, "uid": principal.id}
    if principal.api_key_id:
        claims["akid"] = principal.api_key_id
    token = jwt.encode(claims, derived_key(settings, "access-token"), algorithm=ALGORITHM,
                       headers={"kid": "sf1"})
    return token, ttl


def verify_access_token(settings: Mapping[str, Any], token: str) -> Principal:
    """The Principal a valid access token speaks for; AUTH002 when expired, AUTH001 otherwise."""
    conf = _conf(settings)
    try:
        claims = jwt.decode(token or "", derived_key(settings, "access-token"), algorithms=[ALGORITHM],
                            issuer=conf["issuer"], leeway=float(conf["leeway"]),
                            options={"require": ["exp", "iat", "sub", "tid", "typ", "role"]})
    except jwt.ExpiredSignatureError:
        raise ServerFlowError("AUTH002", "the access token has expired; refresh it or sign in again") from None
    except jwt.PyJWTError as exc:
        raise ServerFlowError("AUTH001", f"invalid access token ({type(exc).__name__})") from None
    if claims.get("typ") != "access":
        raise ServerFlowError("AUTH001", "not an access token")
    if str(claims["tid"]) != tenant_of(settings):
        raise ServerFlowError("AUTH001", "the access token belongs to another tenant")
    return Principal(tenant_id=str(claims["tid"]), email=str(claims.get("email") or claims["sub"]),
                     role=str(claims["role"]), id=claims.get("uid"),
                     tags=tuple(claims.get("tags") or ()), method="token",
                     api_key_id=claims.get("akid"), extra={"jti": claims.get("jti"), "amr": claims.get("amr")})


# -- refresh tokens --------------------------------------------------------------------------------
def new_refresh_token() -> str:
    return REFRESH_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256((token or "").encode()).hexdigest()


def _insert_refresh(conn: Any, settings: Mapping[str, Any], user_id: str, *, family_id: str,
                    parent_id: str | None, family_expires_at: datetime, ip: str | None,
                    user_agent: str | None) -> tuple[str, datetime]:
    token = new_refresh_token()
    expires = min(datetime.now(timezone.utc) + timedelta(seconds=int(_conf(settings)["refresh_ttl"])),
                  family_expires_at)
    conn.execute(
        "INSERT INTO refresh_tokens (tenant_id, user_id, family_id, parent_id, token_hash, expires_at,"
        " family_expires_at, ip_address, user_agent) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::inet, %s)",
        (tenant_of(settings), user_id, family_id, parent_id, hash_token(token), expires, family_expires_at,
         audit.clean_ip(ip), user_agent))
    return token, expires


def start_session(db: Any, settings: Mapping[str, Any], principal: Principal, *, ip: str | None = None,
                  user_agent: str | None = None) -> TokenPair:
    """Access + refresh token for a freshly authenticated user (a new refresh family)."""
    access, ttl = issue_access_token(settings, principal)
    if principal.id is None or principal.api_key_id:
        return TokenPair(access, ttl, None, None, principal)  # keys and local users get no refresh token
    family_expires = datetime.now(timezone.utc) + timedelta(seconds=int(_conf(settings)["session_max_age"]))
    with db.tenant(tenant_of(settings)) as conn:
        refresh, expires = _insert_refresh(conn, settings, principal.id, family_id=str(uuid.uuid4()),
                                           parent_id=None, family_expires_at=family_expires, ip=ip,
                                           user_agent=user_agent)
    return TokenPair(access, ttl, refresh, expires, principal)


def login(db: Any, settings: Mapping[str, Any], email: str, password: str, mfa_code: str | None = None,
          *, ip: str | None = None, user_agent: str | None = None) -> TokenPair:
    """Spec ``POST /auth/login``: authenticate (lockout, MFA) and start a session."""
    principal = authenticate(db, settings, email, password, totp=mfa_code, ip=ip, user_agent=user_agent)
    return start_session(db, settings, principal, ip=ip, user_agent=user_agent)


def _revoke_family(conn: Any, family_id: Any, reason: str) -> int:
    return conn.execute("UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = %s"
                        " WHERE family_id = %s AND revoked_at IS NULL", (reason, family_id)).rowcount


def _refresh(conn: Any, settings: Mapping[str, Any], token: str, ip: str | None,
             user_agent: str | None) -> TokenPair | ErrorInfo:
    tid = tenant_of(settings)
    row = conn.execute(
        "SELECT t.*, now() > t.expires_at OR now() > t.family_expires_at AS expired,"
        " u.email, u.role, u.settings, u.name, u.disabled, u.id AS uid"
        " FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = %s"
        " FOR UPDATE OF t", (hash_token(token),)).fetchone()
    where = {"ip": ip, "user_agent": user_agent}
    if row is None:
        return ErrorInfo("AUTH001", "unknown refresh token; sign in again")
    if row["revoked_at"] is not None:
        return ErrorInfo("AUTH001", "this session has ended; sign in again")
    if row["used_at"] is not None:
        revoked = _revoke_family(conn, row["family_id"], "reuse_detected")
        audit.append(conn, tid, audit.TOKEN_REUSE, user_id=str(row["user_id"]), actor=row["email"],
                     resource_type="refresh_family", resource_id=str(row["family_id"]),
                     details={"revoked_tokens": revoked, "token_id": str(row["id"])}, **where)
        return ErrorInfo("AUTH001", "this refresh token was already used, so it may have been stolen: "
                         "every token of this sign-in is revoked; sign in again")
    if row["expired"]:
        return ErrorInfo("AUTH002", "the session has expired; sign in again")
    if row["disabled"]:
        _revoke_family(conn, row["family_id"], "user_disabled")
        return ErrorInfo("AUTH001", "this account is disabled")
    conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE id = %s", (row["id"],))
    new_token, expires = _insert_refresh(conn, settings, str(row["user_id"]), family_id=str(row["family_id"]),
                                         parent_id=str(row["id"]), family_expires_at=row["family_expires_at"],
                                         ip=ip, user_agent=user_agent)
    principal = principal_from_row(settings, {**row, "id": row["uid"]}, "token")
    audit.append(conn, tid, audit.TOKEN_REFRESH, user_id=str(row["user_id"]), actor=row["email"],
                 resource_type="refresh_family", resource_id=str(row["family_id"]), details={}, **where)
    access, ttl = issue_access_token(settings, principal)
    return TokenPair(access, ttl, new_token, expires, principal)


def refresh(db: Any, settings: Mapping[str, Any], refresh_token: str, *, ip: str | None = None,
            user_agent: str | None = None) -> TokenPair:
    """Spec ``POST /auth/refresh``: rotate the refresh token and issue a new access token."""
    with db.tenant(tenant_of(settings)) as conn:
        outcome = _refresh(conn, settings, refresh_token, ip, user_agent)
    if isinstance(outcome, ErrorInfo):
        raise ServerFlowError(outcome.code, outcome.message)
    return outcome


def logout(db: Any, settings: Mapping[str, Any], refresh_token: str, *, ip: str | None = None,
           user_agent: str | None = None) -> bool:
    """Spec ``POST /auth/logout``: end the sign-in the refresh token belongs to; True when it existed."""
    tid = tenant_of(settings)
    with db.tenant(tid) as conn:
        row = conn.execute("SELECT t.family_id, t.user_id, u.email FROM refresh_tokens t JOIN users u"
                           " ON u.id = t.user_id WHERE t.token_hash = %s", (hash_token(refresh_token),)).fetchone()
        if row is None:
            return False
        _revoke_family(conn, row["family_id"], "logout")
        audit.append(conn, tid, audit.LOGOUT, user_id=str(row["user_id"]), actor=row["email"],
                     resource_type="refresh_family", resource_id=str(row["family_id"]), ip=ip,
                     user_agent=user_agent)
    return True
