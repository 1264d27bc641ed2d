"""Users and sign-in: add, list, disable, authenticate (argon2id, lockout, TOTP), and
the identity behind a name Salt authenticated.

Sign-in outcomes (spec §10.2): AUTH001 for a wrong e-mail/password/code, a
disabled account or a locked one (the message says until when); AUTH004 when
the password is right but the account has MFA and no code came with it.
Every attempt, good or bad, is appended to ``audit_logs``. A failure (wrong
password or wrong MFA code) counts towards the lockout; after
``security.lockout.max_failures`` in a row the account locks for
``lock_seconds``, and each further failure while the count stays at the limit
locks it again. A successful sign-in resets the count.

With the Salt eauth module the MFA code travels in the password field:
``password:123456`` (split at the last colon, only for accounts with MFA),
or ``password:abcd-efgh-jkmn`` with a recovery code. API keys sign in with
username ``sfk_<key_id>`` and the whole key as password (see ``apikeys``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from salt_ext.errors import ErrorInfo, ServerFlowError
from salt_ext.security import audit, mfa, passwords
from salt_ext.security.roles import ROLE_PERMISSIONS, canonical_role, permissions_for
from salt_ext.security.settings import cli_identities, security_settings

_EMAIL = re.compile(r"^[^@\s]{1,128}@[^@\s]{1,126}$")
API_KEY_USER = re.compile(r"^sfk_[a-z0-9]{6,32}$")


@dataclass(frozen=True)
class Principal:
    """An authenticated identity: who (``email``), in which tenant, with which role and scope.

    ``method``: password, password+totp, password+recovery_code, apikey, token,
    salt (a name Salt already authenticated) or local (the master's own shell).
    ``name`` is the e-mail (or the API key id, or the local Salt user): the
    string the audit trail and the approval flow record as the actor.
    """

    tenant_id: str
    email: str
    role: str
    id: str | None = None
    tags: tuple[str, ...] = ()
    method: str = "password"
    display_name: str | None = None
    api_key_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        return self.api_key_id or self.email

    @property
    def permissions(self) -> frozenset[str]:
        return permissions_for(self.role)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "tenant_id": self.tenant_id, "email": self.email, "name": self.name,
                "role": self.role, "tags": list(self.tags), "method": self.method,
                "display_name": self.display_name, "api_key_id": self.api_key_id,
                "permissions": sorted(self.permissions)}


def tenant_of(settings: Mapping[str, Any]) -> str:
    return str(settings["tenant_id"])


def ensure_tenant(conn: Any, settings: Mapping[str, Any]) -> None:
    """This master's tenant row (users reference it); a slug taken elsewhere gets a suffix."""
    tid = tenant_of(settings)
    name = settings.get("tenant_name") or "Default"
    slug = settings.get("tenant_slug") or "default"
    conn.execute("INSERT INTO tenants (id, name, slug) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                 (tid, name, slug))
    if conn.execute("SELECT 1 FROM tenants WHERE id = %s", (tid,)).fetchone() is None:
        conn.execute("INSERT INTO tenants (id, name, slug) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                     (tid, name, f"{slug}-{tid[:8]}"))


def normalize_tags(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = value.split(",")
    tags = sorted({str(t).strip() for t in value if str(t).strip()})
    for tag in tags:
        if len(tag) > 100 or any(ch.isspace() for ch in tag):
            raise ServerFlowError("SYS003", f"tag {tag!r} is not a valid minion tag")
    return tags


def user_tags(row: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple((row.get("settings") or {}).get("tags") or ())


def public_user(row: Mapping[str, Any]) -> dict[str, Any]:
    """A users row without any secret (for listings and runner output)."""
    def iso(value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    return {"id": str(row["id"]), "email": row["email"], "name": row.get("name"),
            "role": canonical_role(row["role"]) or row["role"], "tags": list(user_tags(row)),
            "disabled": bool(row.get("disabled")), "mfa_enabled": bool(row.get("mfa_enabled")),
            "mfa_pending": bool(row.get("mfa_pending_secret_enc")),
            "locked_until": iso(row.get("locked_until")), "failed_logins": row.get("failed_logins", 0),
            "last_login_at": iso(row.get("last_login_at")), "created_at": iso(row.get("created_at"))}


def get_user(conn: Any, key: str, *, for_update: bool = False) -> dict[str, Any] | None:
    """A users row by e-mail (any case) or id, in the transaction's tenant."""
    lock = " FOR UPDATE" if for_update else ""
    return conn.execute(
        "SELECT *, (locked_until IS NOT NULL AND locked_until > now()) AS locked FROM users"
        f" WHERE lower(email) = lower(%s) OR id::text = %s{lock}", (str(key), str(key))).fetchone()


def require_user(conn: Any, key: str, *, for_update: bool = False) -> dict[str, Any]:
    row = get_user(conn, key, for_update=for_update)
    if row is None:
        raise ServerFlowError("AUTH001", f"no user {key!r} in this tenant")
    return row


def list_users(conn: Any, *, include_disabled: bool = True) -> list[dict[str, Any]]:
    where = "" if include_disabled else " WHERE NOT disabled"
    rows = conn.execute("SELECT *, false AS locked FROM users" + where + " ORDER BY lower(email)").fetchall()
    return [public_user(r) for r in rows]


def add_user(conn: Any, settings: Mapping[str, Any], email: str, role: str = "viewer", *,
             name: str | None = None, password: str | None = None,
             tags: Any = None) -> tuple[dict[str, Any], str | None]:
    """Create a user; returns (public row, the generated password or None when one was given)."""
    email = (email or "").strip()
    if not _EMAIL.match(email) or len(email) > 255:
        raise ServerFlowError("SYS003", f"{email!r} is not an e-mail address")
    canonical = canonical_role(role)
    if canonical is None:
        raise ServerFlowError("SYS003", f"unknown role {role!r}; one of {', '.join(ROLE_PERMISSIONS)}")
    generated = None
    if password is None:
        generated = password = passwords.generate_password()
    else:
        passwords.check_password_policy(password, settings)
    ensure_tenant(conn, settings)
    if get_user(conn, email) is not None:
        raise ServerFlowError("SYS003", f"a user {email} already exists in this tenant")
    row = conn.execute(
        "INSERT INTO users (tenant_id, email, password_hash, name, role, settings, password_changed_at)"
        " VALUES (%s, %s, %s, %s, %s, %s::jsonb, now()) RETURNING *, false AS locked",
        (tenant_of(settings), email, passwords.hash_password(password, settings), name, canonical,
         json.dumps({"tags": normalize_tags(tags)} if tags else {}))).fetchone()
    return public_user(row), generated


def set_disabled(conn: Any, key: str, disabled: bool) -> dict[str, Any]:
    """Disable (revoking refresh tokens) or re-enable (clearing any lockout) a user."""
    row = require_user(conn, key, for_update=True)
    # settings.disabled mirrors the column for readers that only look at settings.
    updated = conn.execute(
        "UPDATE users SET disabled = %s, disabled_at = CASE WHEN %s THEN now() END,"
        " failed_logins = CASE WHEN %s THEN failed_logins ELSE 0 END,"
        " locked_until = CASE WHEN %s THEN locked_until END,"
        " settings = jsonb_set(COALESCE(settings, '{}'::jsonb), '{disabled}', to_jsonb(%s::boolean)),"
        " updated_at = now() WHERE id = %s RETURNING *, false AS locked",
        (disabled, disabled, disabled, disabled, disabled, row["id"])).fetchone()
    if disabled:
        conn.execute("UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = 'user_disabled'"
                     " WHERE user_id = %s AND revoked_at IS NULL", (row["id"],))
    return public_user(updated)


def set_password(conn: Any, settings: Mapping[str, Any], key: str, password: str) -> None:
    passwords.check_password_policy(password, settings)
    row = require_user(conn, key, for_update=True)
    conn.execute("UPDATE users SET password_hash = %s, password_changed_at = now(), failed_logins = 0,"
                 " locked_until = NULL, updated_at = now() WHERE id = %s",
                 (passwords.hash_password(password, settings), row["id"]))
    conn.execute("UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = 'password_changed'"
                 " WHERE user_id = %s AND revoked_at IS NULL", (row["id"],))


def principal_from_row(settings: Mapping[str, Any], row: Mapping[str, Any], method: str) -> Principal:
    return Principal(tenant_id=tenant_of(settings), email=row["email"],
                     role=canonical_role(row["role"]) or "none", id=str(row["id"]),
                     tags=user_tags(row), method=method, display_name=row.get("name"))


# -- sign-in --------------------------------------------------------------------------------------
def split_mfa(password: str) -> tuple[str, str | None]:
    """``"secret:123456"`` -> ``("secret", "123456")``; recovery codes too; else ``(password, None)``."""
    head, sep, tail = password.rpartition(":")
    if sep and head and (re.fullmatch(r"\d{6}", tail.strip()) or mfa.looks_like_recovery_code(tail)):
        return head, tail.strip()
    return password, None


def _record_failure(conn: Any, settings: Mapping[str, Any], row: Mapping[str, Any]) -> Mapping[str, Any]:
    lock = security_settings(settings)["lockout"]
    return conn.execute(
        "UPDATE users SET failed_logins = failed_logins + 1, last_failed_login_at = now(),"
        " locked_until = CASE WHEN failed_logins + 1 >= %s THEN now() + %s * interval '1 second'"
        " ELSE locked_until END WHERE id = %s"
        " RETURNING failed_logins, locked_until, (locked_until IS NOT NULL AND locked_until > now()) AS locked",
        (int(lock["max_failures"]), float(lock["lock_seconds"]), row["id"])).fetchone()


def _locked_message(until: datetime | None) -> str:
    when = until.strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(until, datetime) else "later"
    return f"too many failed sign-ins: the account is locked until {when}; an admin can unlock it " \
           "with `salt-run serverflow.user_enable`"


def _authenticate(conn: Any, settings: Mapping[str, Any], email: str, password: str, *,
                  totp: str | None, combined: bool, ip: str | None,
                  user_agent: str | None) -> Principal | ErrorInfo:
    tid = tenant_of(settings)
    where = {"ip": ip, "user_agent": user_agent}

    def log(action: str, row: Mapping[str, Any] | None, **details: Any) -> None:
        audit.append(conn, tid, action, user_id=str(row["id"]) if row else None, actor=email,
                     resource_type="user", resource_id=str(row["id"]) if row else None,
                     details=details, **where)

    invalid = ErrorInfo("AUTH001", "invalid e-mail, password or code")
    row = get_user(conn, email, for_update=True) if email else None
    if row is None or not row.get("password_hash"):
        passwords.verify_password(None, password or "", settings)  # same cost as a real check
        log(audit.LOGIN_FAILED, row, reason="unknown_user" if row is None else "no_password")
        return invalid
    if row["disabled"]:
        passwords.verify_password(None, password or "", settings)
        log(audit.LOGIN_FAILED, row, reason="disabled")
        return ErrorInfo("AUTH001", "this account is disabled")
    if row["locked"]:
        log(audit.LOGIN_FAILED, row, reason="locked", locked_until=str(row["locked_until"]))
        return ErrorInfo("AUTH001", _locked_message(row["locked_until"]),
                         {"locked_until": row["locked_until"].isoformat()})
    if combined and totp is None and row["mfa_enabled"]:
        password, totp = split_mfa(password or "")
    if not passwords.verify_password(row["password_hash"], password or "", settings):
        after = _record_failure(conn, settings, row)
        log(audit.LOGIN_FAILED, row, reason="bad_password", failed_logins=after["failed_logins"])
        if after["locked"]:
            log(audit.LOCKED, row, locked_until=str(after["locked_until"]))
        return invalid
    method = "password"
    if row["mfa_enabled"]:
        if not totp:
            log(audit.LOGIN_FAILED, row, reason="mfa_required")
            return ErrorInfo("AUTH004", "this account uses two-factor authentication: send the "
                             "6-digit code (eauth: password:123456) or a recovery code")
        used = mfa.check(conn, settings, tid, row, totp)
        if used is None:
            after = _record_failure(conn, settings, row)
            log(audit.MFA_FAILED, row, failed_logins=after["failed_logins"])
            if after["locked"]:
                log(audit.LOCKED, row, locked_until=str(after["locked_until"]))
            return ErrorInfo("AUTH001", "invalid two-factor code (each code works once)")
        method = f"password+{used}"
        if used == "recovery_code":
            remaining = len(row.get("mfa_recovery_hashes") or []) - 1
            log(audit.MFA_RECOVERY_USED, row, remaining=remaining)
    if passwords.needs_rehash(row["password_hash"], settings):
        conn.execute("UPDATE users SET password_hash = %s WHERE id = %s",
                     (passwords.hash_password(password, settings), row["id"]))
    conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = now()"
                 " WHERE id = %s", (row["id"],))
    log(audit.LOGIN, row, method=method)
    return principal_from_row(settings, row, method)


def authenticate(db: Any, settings: Mapping[str, Any], email: str, password: str, *,
                 totp: str | None = None, combined: bool = False, ip: str | None = None,
                 user_agent: str | None = None) -> Principal:
    """Check e-mail + password (+ TOTP or recovery code); the Principal, or ServerFlowError.

    ``combined=True`` reads the code from ``password`` (``secret:123456``) for MFA
    accounts, as the eauth module does. Counters and audit rows are committed
    even when sign-in fails.
    """
    with db.tenant(tenant_of(settings)) as conn:
        outcome = _authenticate(conn, settings, (email or "").strip(), password or "", totp=totp,
                                combined=combined, ip=ip, user_agent=user_agent)
    if isinstance(outcome, ErrorInfo):
        raise ServerFlowError(outcome.code, outcome.message, **outcome.details)
    return outcome


def authenticate_secret(db: Any, settings: Mapping[str, Any], username: str, secret: str, *,
                        ip: str | None = None, user_agent: str | None = None) -> Principal:
    """What eauth calls: an API key (username ``sfk_<id>``) or ``password[:code]``."""
    from salt_ext.security import apikeys

    if API_KEY_USER.match(username or ""):
        return apikeys.authenticate(db, settings, secret, username=username, ip=ip, user_agent=user_agent)
    return authenticate(db, settings, username, secret, combined=True, ip=ip, user_agent=user_agent)


# -- names Salt already authenticated ------------------------------------------------------------
def principal_for_salt_user(db: Any, settings: Mapping[str, Any], salt_user: str | None, *,
                            master_user: str | None = None) -> Principal:
    """The identity behind ``__user__`` in a runner (Salt has authenticated it already).

    - ``sfk_<id>``: the API key's role and scope (not its owner's);
    - an e-mail: that user, when enabled;
    - a local account (no ``@``): ``serverflow:cli_identities`` (default root -> owner);
      the user the master runs as and ``sudo_*`` (root through sudo) act as owner.
    Anything else is AUTH003.
    """
    name = (salt_user or "").strip()
    tid = tenant_of(settings)
    if "@" not in name and name:
        local = cli_identities(settings).get(name)
        if local is None and (name == master_user or name.startswith("sudo_")):
            local = {"role": "owner"}
        if local is not None:
            return Principal(tenant_id=tid, email=str(local.get("name") or name),
                             role=canonical_role(local.get("role")) or "none",
                             tags=tuple(local.get("tags") or ()), method="local")
    if API_KEY_USER.match(name):
        from salt_ext.security import apikeys

        with db.tenant(tid) as conn:
            found = apikeys.principal_for_key_id(conn, settings, name[len("sfk_"):])
        if found is not None:
            return found
    elif "@" in name:
        with db.tenant(tid) as conn:
            row = get_user(conn, name)
        if row is not None and not row["disabled"]:
            return principal_from_row(settings, row, "salt")
    raise ServerFlowError("AUTH003", f"{name or 'an unknown user'} has no ServerFlow role here; "
                          "an admin can add one with `salt-run serverflow.user_add`")


def ensure_user(db: Any, settings: Mapping[str, Any], email: str, password: str, role: str = "owner",
                name: str | None = None) -> bool:
    """Create ``email`` with ``password`` unless it exists (devstack's first admin); True when created."""
    with db.tenant(tenant_of(settings)) as conn:
        ensure_tenant(conn, settings)
        if get_user(conn, email) is not None:
            return False
        created, _ = add_user(conn, settings, email, role, name=name, password=password)
        audit.append(conn, tenant_of(settings), audit.USER_ADD, actor="bootstrap", resource_type="user",
                     resource_id=created["id"], details={"email": email, "role": created["role"]})
    return True
