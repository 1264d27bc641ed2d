"""API keys for automation: created for a user with a role no higher than theirs,
shown once, stored as a peppered HMAC, revocable, with their last use recorded.

A key reads ``sfk_<key_id>_<secret>``. ``key_id`` (12 hex characters) is public:
it names the key in listings, in the audit trail and as the Salt user name
(eauth: username ``sfk_<key_id>``, password the whole key). The secret part has
256 bits of entropy, so an HMAC-SHA256 with a derived key is as strong a store
as a slow hash, and checks in microseconds.

The effective role is the lower of the key's role and its owner's current
role, and the key's tag scope narrows the owner's (it can never widen it): a
demoted or disabled owner demotes or disables the key with them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from salt_ext.errors import ErrorInfo, ServerFlowError
from salt_ext.security import audit
from salt_ext.security.identity import Principal, ensure_tenant, require_user, tenant_of, user_tags, normalize_tags
from salt_ext.security.roles import ROLE_RANK, canonical_role
from salt_ext.security.settings import derived_key, security_settings

KEY_PATTERN = re.compile(r"^sfk_(?P<key_id>[a-f0-9]{12})_(?P<secret>[A-Za-z0-9_-]{32,})$")


def _hash(settings: Mapping[str, Any], key_id: str, secret: str) -> str:
    return hmac.new(derived_key(settings, "api-key"), f"{key_id}:{secret}".encode(), hashlib.sha256).hexdigest()


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    def iso(value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    return {"key_id": row["key_id"], "username": f"sfk_{row['key_id']}", "name": row.get("name"),
            "role": row["role"], "scope_tags": list(row.get("scope_tags") or []),
            "user": row.get("email"), "created_by": row.get("created_by"),
            "created_at": iso(row.get("created_at")), "expires_at": iso(row.get("expires_at")),
            "last_used_at": iso(row.get("last_used_at")), "revoked_at": iso(row.get("revoked_at")),
            "revoked_by": row.get("revoked_by")}


def create(conn: Any, settings: Mapping[str, Any], owner: str, *, role: str | None = None,
           name: str | None = None, tags: Any = None, expires_days: float | None = None,
           created_by: str | None = None) -> dict[str, Any]:
    """A new key for user ``owner``; the returned ``key`` is the only time the secret is shown."""
    ensure_tenant(conn, settings)
    user = require_user(conn, owner)
    if user["disabled"]:
        raise ServerFlowError("AUTH003", f"{user['email']} is disabled; enable the user first")
    user_role = canonical_role(user["role"])
    wanted = canonical_role(role) if role else user_role
    if wanted is None or user_role is None:
        raise ServerFlowError("SYS003", f"unknown role {role or user['role']!r}")
    if ROLE_RANK[wanted] > ROLE_RANK[user_role]:
        raise ServerFlowError("AUTH003", f"a key cannot have more power than its user: {user['email']} "
                              f"is {user_role}, not {wanted}")
    scope = normalize_tags(tags)
    owner_scope = set(user_tags(user))
    if owner_scope and scope and not set(scope) <= owner_scope:
        raise ServerFlowError("EXEC005", f"a key's tags must be within its user's scope ({', '.join(sorted(owner_scope))})")
    scope = scope or sorted(owner_scope)
    if expires_days is None:
        expires_days = security_settings(settings)["api_keys"]["default_ttl_days"]
    expires = (datetime.now(timezone.utc) + timedelta(days=float(expires_days))) if expires_days else None
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = conn.execute(
        "INSERT INTO api_keys (tenant_id, user_id, key_id, secret_hash, name, role, scope_tags,"
        " created_by, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s) RETURNING *",
        (tenant_of(settings), user["id"], key_id, _hash(settings, key_id, secret), name, wanted,
         json.dumps(scope), created_by, expires)).fetchone()
    return {**_public({**row, "email": user["email"]}), "key": f"sfk_{key_id}_{secret}"}


def _key_id(value: str) -> str:
    value = (value or "").strip()
    match = KEY_PATTERN.match(value)
    if match:
        return match.group("key_id")
    return value[4:] if value.startswith("sfk_") else value


def revoke(conn: Any, key: str, *, revoked_by: str | None = None) -> dict[str, Any]:
    """Revoke by key id (``ab12...``, ``sfk_ab12...`` or the whole key); idempotent."""
    key_id = _key_id(key)
    row = conn.execute(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()),"
        " revoked_by = COALESCE(revoked_by, %s) WHERE key_id = %s RETURNING *,"
        " (SELECT email FROM users WHERE users.id = api_keys.user_id) AS email",
        (revoked_by, key_id)).fetchone()
    if row is None:
        raise ServerFlowError("AUTH001", f"no API key {key_id!r} in this tenant")
    return _public(row)


def list_keys(conn: Any, owner: str | None = None, *, include_revoked: bool = False) -> list[dict[str, Any]]:
    clauses, params = ["TRUE"], []
    if owner:
        clauses.append("lower(u.email) = lower(%s)")
        params.append(owner)
    if not include_revoked:
        clauses.append("k.revoked_at IS NULL")
    rows = conn.execute("SELECT k.*, u.email FROM api_keys k JOIN users u ON u.id = k.user_id WHERE "
                        + " AND ".join(clauses) + " ORDER BY k.created_at", params).fetchall()
    return [_public(r) for r in rows]


def _lookup(conn: Any, key_id: str) -> dict[str, Any] | None:
    return conn.execute(
        "SELECT k.*, u.email, u.role AS user_role, u.disabled AS user_disabled, u.settings AS user_settings,"
        " u.name AS user_name, (k.expires_at IS NOT NULL AND k.expires_at <= now()) AS expired"
        " FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_id = %s", (key_id,)).fetchone()


def _refusal(row: Mapping[str, Any] | None) -> str | None:
    if row is None:
        return "unknown_key"
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expired"]:
        return "expired"
    if row["user_disabled"]:
        return "user_disabled"
    return None


def _principal(settings: Mapping[str, Any], row: Mapping[str, Any]) -> Principal | None:
    key_role, user_role = canonical_role(row["role"]), canonical_role(row["user_role"])
    if key_role is None or user_role is None:
        return None
    role = key_role if ROLE_RANK[key_role] <= ROLE_RANK[user_role] else user_role
    key_scope = set(row.get("scope_tags") or [])
    owner_scope = set((row.get("user_settings") or {}).get("tags") or [])
    if key_scope and owner_scope:
        scope = key_scope & owner_scope
        if not scope:
            return None  # the owner's scope moved away from the key's: it may touch nothing
    else:
        scope = key_scope or owner_scope
    return Principal(tenant_id=tenant_of(settings), email=row["email"], role=role, id=str(row["user_id"]),
                     tags=tuple(sorted(scope)), method="apikey", display_name=row.get("name"),
                     api_key_id=f"sfk_{row['key_id']}")


def principal_for_key_id(conn: Any, settings: Mapping[str, Any], key_id: str) -> Principal | None:
    """The identity of a key Salt already authenticated (``__user__ == sfk_<key_id>``)."""
    row = _lookup(conn, _key_id(key_id))
    if _refusal(row) is not None:
        return None
    return _principal(settings, row)


def _authenticate(conn: Any, settings: Mapping[str, Any], key: str, username: str | None,
                  ip: str | None, user_agent: str | None) -> Principal | ErrorInfo:
    tid = tenant_of(settings)
    match = KEY_PATTERN.match((key or "").strip())
    row = _lookup(conn, match.group("key_id")) if match else None
    reason = _refusal(row) if match else "malformed_key"
    if reason is None and not hmac.compare_digest(_hash(settings, match.group("key_id"), match.group("secret")),
                                                  row["secret_hash"]):
        reason = "bad_secret"
    if reason is None and username and username.strip().lower() != f"sfk_{row['key_id']}":
        reason = "username_mismatch"
    principal = _principal(settings, row) if reason is None else None
    if reason is None and principal is None:
        reason = "scope_or_role_invalid"
    actor = f"sfk_{match.group('key_id')}" if match else (username or "apikey")
    if reason is not None:
        audit.append(conn, tid, audit.APIKEY_FAILED, user_id=str(row["user_id"]) if row else None,
                     actor=actor, resource_type="api_key", resource_id=actor, details={"reason": reason},
                     ip=ip, user_agent=user_agent)
        return ErrorInfo("AUTH001", "invalid, revoked or expired API key")
    conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = %s", (row["id"],))
    audit.append(conn, tid, audit.APIKEY_LOGIN, user_id=str(row["user_id"]), actor=actor,
                 resource_type="api_key", resource_id=actor, details={"role": principal.role},
                 ip=ip, user_agent=user_agent)
    return principal


def authenticate(db: Any, settings: Mapping[str, Any], key: str, *, username: str | None = None,
                 ip: str | None = None, user_agent: str | None = None) -> Principal:
    """The Principal of a valid key (``username``, when given, must be ``sfk_<key_id>``); AUTH001 otherwise."""
    with db.tenant(tenant_of(settings)) as conn:
        outcome = _authenticate(conn, settings, key, username, ip, user_agent)
    if isinstance(outcome, ErrorInfo):
        raise ServerFlowError(outcome.code, outcome.message)
    return outcome
