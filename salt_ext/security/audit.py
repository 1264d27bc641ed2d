"""The audit trail: append, search, export and verify ``audit_logs`` (spec §4.1, §6.1 layer 5).

Three walls keep it honest:

1. the application role has no UPDATE/DELETE grant on ``audit_logs`` (0001);
2. triggers refuse UPDATE, DELETE and TRUNCATE even for the table owner (0004);
3. every row is hash-chained per tenant: ``hash = sha256(prev_hash || canonical(row))``,
   computed by a BEFORE INSERT trigger that holds a per-tenant advisory lock until
   commit, so concurrent writers get a single, gap-free chain in id order.
   ``verify`` recomputes every hash here, in Python, from the stored values and
   names the first row that does not match (edited, removed or reordered).

What a chain cannot see by itself: someone able to bypass both walls who also
rewrites every later hash, or removes the newest rows. Keep the ``head`` that
``verify`` returns (or an export) somewhere else to catch that.

Every detail passes through ``masking.mask`` before it is written.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import IO, Any

from salt_ext.errors import ServerFlowError
from salt_ext.security.masking import mask

GENESIS = "0" * 64

# Actions written by this package (the chat engine and approval flow add their own:
# chat.question, plan.created, policy.decision, action.proposed/approved/rejected/executed).
LOGIN = "auth.login"
LOGIN_FAILED = "auth.login_failed"
LOCKED = "auth.locked"
MFA_FAILED = "auth.mfa_failed"
APIKEY_LOGIN = "auth.apikey"
APIKEY_FAILED = "auth.apikey_failed"
TOKEN_REFRESH = "auth.token_refresh"
TOKEN_REUSE = "auth.refresh_reuse"
LOGOUT = "auth.logout"
RATE_LIMITED = "rate.limited"
USER_ADD = "user.add"
USER_DISABLE = "user.disable"
USER_ENABLE = "user.enable"
APIKEY_CREATE = "apikey.create"
APIKEY_REVOKE = "apikey.revoke"
MFA_ENROLL = "mfa.enroll"
MFA_CONFIRM = "mfa.confirm"
MFA_RECOVERY_USED = "mfa.recovery_code_used"
AUDIT_EXPORT = "audit.export"

_COLUMNS = ("id, tenant_id, user_id, action, resource_type, resource_id, details, "
            "ip_address::text AS ip_address, user_agent, created_at, prev_hash, hash")
_CANONICAL_FIELDS = (
    "id, tenant_id::text AS tenant_text, user_id::text AS user_text, action, resource_type, "
    "resource_id, details::text AS details_text, ip_address::text AS ip_text, user_agent, "
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS ts_text, "
    "prev_hash, hash")


def clean_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ipaddress.ip_address(str(value).strip().strip("[]")))
    except ValueError:
        return None


def append(conn: Any, tenant_id: str, action: str, *, user_id: str | None = None,
           actor: str | None = None, resource_type: str | None = None,
           resource_id: Any = None, details: dict[str, Any] | None = None,
           ip: str | None = None, user_agent: str | None = None) -> dict[str, Any]:
    """Append one entry in the caller's (tenant-scoped) transaction; returns id and hash.

    ``actor`` is the name Salt authenticated (kept in ``details.actor``); when
    ``user_id`` is not given it is looked up from ``actor`` in ``users``.
    Details are masked; an unparsable ``ip`` is kept in details, not in the column.
    """
    if not action or len(action) > 100:
        raise ServerFlowError("SYS003", f"audit action {action!r} must be 1-100 characters")
    body = dict(mask(details or {}))
    if actor:
        body.setdefault("actor", str(actor))
    address = clean_ip(ip)
    if ip and address is None:
        body["ip_raw"] = str(ip)[:100]
    row = conn.execute(
        "INSERT INTO audit_logs (tenant_id, user_id, action, resource_type, resource_id, details,"
        " ip_address, user_agent) VALUES (%s, COALESCE(%s::uuid, (SELECT id FROM users"
        " WHERE tenant_id = %s AND lower(email) = lower(%s) LIMIT 1)), %s, %s, %s, %s::jsonb,"
        " %s::inet, %s) RETURNING id, hash",
        (str(tenant_id), user_id, str(tenant_id), actor or "", action, resource_type,
         None if resource_id is None else str(resource_id)[:255], _json(body), address,
         (user_agent or None) and str(user_agent)[:1000]),
    ).fetchone()
    return {"id": row["id"], "hash": row["hash"]}


def _json(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


class Auditor:
    """``audit(action, user=..., ...)`` in its own short transaction; never raises by default.

    ``user`` is the acting identity's name (e-mail, or a local Salt user); the
    keyword shape matches what the approval service calls. With ``strict=True``
    a failed write raises (use it where an action must not happen unaudited).
    """

    def __init__(self, db: Any, tenant_id: str, *, strict: bool = False) -> None:
        self.db = db
        self.tenant_id = str(tenant_id)
        self.strict = strict

    def __call__(self, action: str, *, user: str | None = None, user_id: str | None = None,
                 resource_type: str | None = None, resource_id: Any = None,
                 details: dict[str, Any] | None = None, ip: str | None = None,
                 user_agent: str | None = None, **extra: Any) -> dict[str, Any] | None:
        if extra:
            details = {**(details or {}), **extra}
        try:
            with self.db.tenant(self.tenant_id) as conn:
                return append(conn, self.tenant_id, action, user_id=user_id, actor=user,
                              resource_type=resource_type, resource_id=resource_id,
                              details=details, ip=ip, user_agent=user_agent)
        except Exception:
            if self.strict:
                raise
            import logging

            logging.getLogger(__name__).warning("audit entry %s for %s could not be written",
                                                action, user, exc_info=True)
            return None


# -- search and export --------------------------------------------------------------------------
_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: Any, now: datetime | None = None) -> datetime | None:
    """A datetime from ``None``, a datetime, ``"15m"``/``"2h"``/``"7d"`` or an ISO date/time."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = str(value)
    match = _RELATIVE.match(text)
    if match:
        now = now or datetime.now(timezone.utc)
        try:
            return now - timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})
        except OverflowError:
            raise ServerFlowError("SYS003", f"since={text!r} reaches before year 1; use a shorter age") from None
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ServerFlowError("SYS003", f"since={text!r}: use an ISO time (2025-01-31T12:00) "
                              "or a relative age like 15m, 2h, 7d") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _where(user: str | None, since: Any, action: str | None,
           until: Any = None) -> tuple[str, list[Any]]:
    clauses, params = ["TRUE"], []
    if user:
        clauses.append("(user_id::text = %s OR lower(details->>'actor') = lower(%s)"
                       " OR user_id IN (SELECT id FROM users WHERE lower(email) = lower(%s)))")
        params += [str(user)] * 3
    start = parse_since(since)
    if start is not None:
        clauses.append("created_at >= %s")
        params.append(start)
    end = parse_since(until)
    if end is not None:
        clauses.append("created_at < %s")
        params.append(end)
    if action:
        if any(ch in action for ch in "*?"):
            pattern = action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            clauses.append("action LIKE %s")
            params.append(pattern.replace("*", "%").replace("?", "_"))
        else:
            clauses.append("action = %s")
            params.append(action)
    return " AND ".join(clauses), params


def _row(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("tenant_id", "user_id"):
        if out.get(key) is not None:
            out[key] = str(out[key])
    if isinstance(out.get("created_at"), datetime):
        out["created_at"] = out["created_at"].astimezone(timezone.utc).isoformat()
    return out


def search(conn: Any, *, user: str | None = None, since: Any = None, action: str | None = None,
           until: Any = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first. ``user``: e-mail, actor name or user id; ``action``: exact or glob (``auth.*``)."""
    where, params = _where(user, since, action, until)
    limit = max(1, min(int(limit), 10000))
    rows = conn.execute(f"SELECT {_COLUMNS} FROM audit_logs WHERE {where}"
                        " ORDER BY id DESC LIMIT %s", (*params, limit)).fetchall()
    return [_row(r) for r in rows]


def iter_rows(conn: Any, *, user: str | None = None, since: Any = None, action: str | None = None,
              until: Any = None, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every matching row, oldest first, fetched in batches (keyset pagination on id)."""
    where, params = _where(user, since, action, until)
    last = 0
    while True:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM audit_logs WHERE {where} AND id > %s"
                            " ORDER BY id LIMIT %s", (*params, last, batch)).fetchall()
        if not rows:
            return
        for row in rows:
            yield _row(row)
        last = rows[-1]["id"]


def export_jsonl(conn: Any, out: IO[str], **filters: Any) -> int:
    """Write matching rows (oldest first, with prev_hash and hash) as JSON lines; returns the count."""
    count = 0
    for row in iter_rows(conn, **filters):
        out.write(json.dumps(row, default=str, ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count


# -- verification ---------------------------------------------------------------------------------
def _js(value: str | None) -> str:
    return "null" if value is None else json.dumps(value, ensure_ascii=False)


def canonical(row: dict[str, Any]) -> str:
    """The text the trigger hashes (``serverflow_audit_canonical``), rebuilt from stored values.

    PostgreSQL's jsonb text escapes exactly what ``json.dumps(ensure_ascii=False)``
    escapes, and ``details`` is taken as its own jsonb text, so this matches byte for byte.
    """
    parts = [str(int(row["id"])), _js(row["tenant_text"]), _js(row["user_text"]), _js(row["action"]),
             _js(row["resource_type"]), _js(row["resource_id"]),
             "null" if row["details_text"] is None else row["details_text"],
             _js(row["ip_text"]), _js(row["user_agent"]), _js(row["ts_text"])]
    return "[" + ", ".join(parts) + "]"


def row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(row)).encode("utf-8")).hexdigest()


def verify(conn: Any, tenant_id: str, *, batch: int = 2000) -> dict[str, Any]:
    """Walk the tenant's chain in id order; the first broken row and why, or ok.

    Returns ``{"ok", "rows", "head": {"id", "hash"}, "broken_id", "reason"}``.
    """
    expected_prev = GENESIS
    count, last_id, head = 0, 0, None
    while True:
        rows = conn.execute(
            f"SELECT {_CANONICAL_FIELDS} FROM audit_logs WHERE tenant_id = %s AND id > %s"
            " ORDER BY id LIMIT %s", (str(tenant_id), last_id, batch)).fetchall()
        if not rows:
            break
        for row in rows:
            count += 1
            problem = None
            if row["hash"] is None or row["prev_hash"] is None:
                problem = "row has no hash: it was inserted with the chain trigger disabled"
            elif row["prev_hash"] != expected_prev:
                problem = ("prev_hash does not match the hash of the row before it: a row before "
                           "this one was removed, inserted or rewritten"
                           if count > 1 else "the first row does not start the chain: earlier rows were removed")
            elif row_hash(row["prev_hash"], row) != row["hash"]:
                problem = "content does not match its hash: the row was changed after it was written"
            if problem:
                return {"ok": False, "rows": count, "broken_id": row["id"], "reason": problem,
                        "head": head}
            expected_prev = row["hash"]
            head = {"id": row["id"], "hash": row["hash"]}
        last_id = rows[-1]["id"]
    return {"ok": True, "rows": count, "broken_id": None, "reason": None, "head": head}
