"""The administration behind ``salt-run serverflow.user_* / apikey_* / mfa_enroll / audit*``.

Each function takes the settings, a Database and the acting Principal (from
``identity.principal_for_salt_user``), checks the ``administer`` permission
(and that a role is never granted or removed above the actor's own), does the
change and appends it to the audit trail in the same transaction.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from salt_ext.errors import ServerFlowError
from salt_ext.security import apikeys, audit, identity, mfa
from salt_ext.security.identity import Principal, tenant_of
from salt_ext.security.roles import authorize, canonical_role, may_grant


def _require_admin(actor: Principal) -> None:
    denied = authorize(actor, "administer")
    if denied:
        raise ServerFlowError(denied.code, denied.message, **denied.details)


def _require_grant(actor: Principal, role: str | None, what: str) -> None:
    if not may_grant(actor.role, role):
        raise ServerFlowError("AUTH003", f"{actor.name} is {actor.role} and may not {what} a user "
                              f"with role {canonical_role(role) or role}")


def _log(conn: Any, settings: Mapping[str, Any], actor: Principal, action: str, resource_type: str,
         resource_id: Any, **details: Any) -> None:
    audit.append(conn, tenant_of(settings), action, user_id=actor.id, actor=actor.name,
                 resource_type=resource_type, resource_id=resource_id, details=details)


def user_add(settings: Mapping[str, Any], db: Any, actor: Principal, email: str, role: str = "viewer", *,
             name: str | None = None, password: str | None = None, tags: Any = None) -> dict[str, Any]:
    _require_admin(actor)
    _require_grant(actor, role, "create")
    with db.tenant(tenant_of(settings)) as conn:
        user, generated = identity.add_user(conn, settings, email, role, name=name, password=password,
                                            tags=tags)
        _log(conn, settings, actor, audit.USER_ADD, "user", user["id"], email=user["email"],
             role=user["role"], tags=user["tags"])
    out: dict[str, Any] = {"user": user}
    if generated:
        out["password"] = generated
        out["note"] = "shown once: hand it to the user over a safe channel"
    return out


def user_list(settings: Mapping[str, Any], db: Any, actor: Principal, *,
              include_disabled: bool = True) -> list[dict[str, Any]]:
    _require_admin(actor)
    with db.tenant(tenant_of(settings)) as conn:
        return identity.list_users(conn, include_disabled=include_disabled)


def _set_disabled(settings: Mapping[str, Any], db: Any, actor: Principal, email: str,
                  disabled: bool) -> dict[str, Any]:
    _require_admin(actor)
    with db.tenant(tenant_of(settings)) as conn:
        target = identity.require_user(conn, email, for_update=True)
        _require_grant(actor, target["role"], "disable" if disabled else "enable")
        if disabled and canonical_role(target["role"]) == "owner":
            owners = conn.execute("SELECT count(*) AS n FROM users WHERE role = 'owner' AND NOT disabled"
                                  " AND id <> %s", (target["id"],)).fetchone()["n"]
            if owners == 0:
                raise ServerFlowError("AUTH003", f"{target['email']} is the last enabled owner; "
                                      "add another owner before disabling this one")
        user = identity.set_disabled(conn, email, disabled)
        _log(conn, settings, actor, audit.USER_DISABLE if disabled else audit.USER_ENABLE, "user",
             user["id"], email=user["email"])
    return user


def user_disable(settings: Mapping[str, Any], db: Any, actor: Principal, email: str) -> dict[str, Any]:
    """Disable a user: sign-in, API keys and refresh tokens stop working at once."""
    return _set_disabled(settings, db, actor, email, True)


def user_enable(settings: Mapping[str, Any], db: Any, actor: Principal, email: str) -> dict[str, Any]:
    """Re-enable a user and clear any lockout."""
    return _set_disabled(settings, db, actor, email, False)


def apikey_create(settings: Mapping[str, Any], db: Any, actor: Principal, email: str, *,
                  role: str | None = None, name: str | None = None, tags: Any = None,
                  expires_days: float | None = None) -> dict[str, Any]:
    _require_admin(actor)
    with db.tenant(tenant_of(settings)) as conn:
        owner = identity.require_user(conn, email)
        _require_grant(actor, role or owner["role"], "create a key for")
        created = apikeys.create(conn, settings, email, role=role, name=name, tags=tags,
                                 expires_days=expires_days, created_by=actor.name)
        _log(conn, settings, actor, audit.APIKEY_CREATE, "api_key", created["username"],
             owner=owner["email"], role=created["role"], scope_tags=created["scope_tags"],
             expires_at=created["expires_at"])
    created["note"] = ("the key is shown once; sign in with eauth serverflow, "
                       f"username {created['username']} and the key as password")
    return created


def apikey_revoke(settings: Mapping[str, Any], db: Any, actor: Principal, key: str) -> dict[str, Any]:
    _require_admin(actor)
    with db.tenant(tenant_of(settings)) as conn:
        revoked = apikeys.revoke(conn, key, revoked_by=actor.name)
        _log(conn, settings, actor, audit.APIKEY_REVOKE, "api_key", revoked["username"], owner=revoked["user"])
    return revoked


def apikey_list(settings: Mapping[str, Any], db: Any, actor: Principal, email: str | None = None, *,
                include_revoked: bool = False) -> list[dict[str, Any]]:
    _require_admin(actor)
    with db.tenant(tenant_of(settings)) as conn:
        return apikeys.list_keys(conn, email, include_revoked=include_revoked)


def mfa_enroll(settings: Mapping[str, Any], db: Any, actor: Principal, email: str,
               code: str | None = None, *, disable: bool = False) -> dict[str, Any]:
    """Start an enrolment (secret, otpauth URI, recovery codes, shown once), confirm it with
    ``code``, or switch MFA off with ``disable``. Users may do this for themselves."""
    self_service = actor.email.lower() == (email or "").strip().lower() and actor.id is not None
    if not self_service:
        _require_admin(actor)
    with db.tenant(tenant_of(settings)) as conn:
        user = identity.require_user(conn, email, for_update=True)
        if not self_service:
            _require_grant(actor, user["role"], "change MFA of")
        if disable:
            mfa.disable(conn, str(user["id"]))
            _log(conn, settings, actor, audit.MFA_ENROLL, "user", user["id"], email=user["email"], step="disabled")
            return {"email": user["email"], "mfa_enabled": False}
        if code:
            mfa.confirm(conn, settings, tenant_of(settings), user, str(code))
            _log(conn, settings, actor, audit.MFA_CONFIRM, "user", user["id"], email=user["email"])
            return {"email": user["email"], "mfa_enabled": True,
                    "note": "sign in with password:123456 (the current code) from now on"}
        enrollment = mfa.begin(conn, settings, tenant_of(settings), user)
        _log(conn, settings, actor, audit.MFA_ENROLL, "user", user["id"], email=user["email"], step="started")
    return {"email": user["email"], **enrollment.as_dict(), "mfa_enabled": bool(user["mfa_enabled"]),
            "note": ("add the secret or otpauth URI to an authenticator app, then confirm with "
                     f"`salt-run serverflow.mfa_enroll {user['email']} code=<current code>`; "
                     "the recovery codes are shown once and work once each")}


def audit_search(settings: Mapping[str, Any], db: Any, actor: Principal, *, user: str | None = None,
                 since: Any = None, action: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    _require_admin(actor)
    with db.tenant(tenant_of(settings)) as conn:
        return audit.search(conn, user=user, since=since, action=action, limit=limit)


def audit_verify(settings: Mapping[str, Any], db: Any, actor: Principal) -> dict[str, Any]:
    _require_admin(actor)
    with db.tenant(tenant_of(settings)) as conn:
        return audit.verify(conn, tenant_of(settings))


def audit_export(settings: Mapping[str, Any], db: Any, actor: Principal, path: str | None = None, *,
                 user: str | None = None, since: Any = None, action: str | None = None) -> dict[str, Any]:
    """Export as JSON lines to ``path`` (created 0600), or return the lines when no path is given."""
    import io

    _require_admin(actor)
    with db.tenant(tenant_of(settings)) as conn:
        if path:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                count = audit.export_jsonl(conn, handle, user=user, since=since, action=action)
            result: dict[str, Any] = {"path": os.path.abspath(path), "rows": count}
        else:
            buffer = io.StringIO()
            count = audit.export_jsonl(conn, buffer, user=user, since=since, action=action)
            result = {"rows": count, "jsonl": buffer.getvalue()}
        _log(conn, settings, actor, audit.AUDIT_EXPORT, "audit_logs", None, rows=count, path=path,
             filters={"user": user, "since": str(since) if since else None, "action": action})
    return result
