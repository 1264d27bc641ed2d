"""Conversations, messages, executions and proposed actions in PostgreSQL (tenant-scoped)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from psycopg import Connection


def to_json(value: Any) -> str:
    return json.dumps(value, default=str)


def clean_row(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {k: (str(v) if k.endswith("id") and v is not None and not isinstance(v, (int, str))
                else v.isoformat() if isinstance(v, datetime) else v)
            for k, v in row.items()}


def ensure_conversation(conn: Connection, tenant_id: str, conversation_id: str,
                        title: str, created_by: str | None) -> bool:
    """Create the conversation if it does not exist; True when it was created."""
    cur = conn.execute(
        "INSERT INTO conversations (id, tenant_id, title, created_by) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (id) DO NOTHING", (conversation_id, tenant_id, title[:255], created_by))
    return cur.rowcount == 1


def recent_messages(conn: Connection, conversation_id: str, limit: int = 10) -> list[dict[str, Any]]:
    """The last ``limit`` messages, oldest first (the pipeline's context window)."""
    rows = conn.execute(
        "SELECT role, content, metadata, created_at FROM messages WHERE conversation_id = %s"
        " ORDER BY created_at DESC, id DESC LIMIT %s", (conversation_id, limit)).fetchall()
    return [clean_row(r) for r in reversed(rows)]


def add_message(conn: Connection, tenant_id: str, conversation_id: str, role: str, content: str,
                metadata: dict[str, Any] | None = None, tokens_used: int | None = None,
                created_at: datetime | None = None) -> str:
    # clock_timestamp, not now(): two messages of one transaction must keep their order
    row = conn.execute(
        "INSERT INTO messages (tenant_id, conversation_id, role, content, metadata, tokens_used, created_at)"
        " VALUES (%s, %s, %s, %s, %s::jsonb, %s, COALESCE(%s, clock_timestamp())) RETURNING id",
        (tenant_id, conversation_id, role, content, to_json(metadata or {}), tokens_used,
         created_at)).fetchone()
    conn.execute("UPDATE conversations SET updated_at = now() WHERE id = %s", (conversation_id,))
    return str(row["id"])


def start_execution(conn: Connection, tenant_id: str, *, conversation_id: str | None, jid: str,
                    targets: list[str], function: str, args: dict[str, Any],
                    requested_by: str | None) -> str:
    row = conn.execute(
        "INSERT INTO executions (tenant_id, conversation_id, job_id, targets, module, args, status,"
        " started_at, requested_by) VALUES (%s, %s, %s, %s::jsonb, %s, %s::jsonb, 'running', now(), %s)"
        " RETURNING id",
        (tenant_id, conversation_id, jid, to_json(targets), function, to_json(args), requested_by),
    ).fetchone()
    return str(row["id"])


def finish_execution(conn: Connection, execution_id: str, *, status: str, results: Any,
                     message_id: str | None = None) -> None:
    conn.execute(
        "UPDATE executions SET status = %s, results = %s::jsonb, completed_at = now(),"
        " message_id = COALESCE(%s, message_id) WHERE id = %s",
        (status, to_json(results), message_id, execution_id))


def propose_action(conn: Connection, tenant_id: str, *, conversation_id: str, message_id: str | None,
                   requested_by: str | None, function: str, targets: list[str],
                   args: dict[str, Any], label: str, reason: str, ttl_seconds: int,
                   preview: dict[str, Any] | None = None) -> str:
    from salt_ext.approvals.model import action_hash

    row = conn.execute(
        "INSERT INTO actions (tenant_id, conversation_id, message_id, requested_by, function, targets,"
        " args, label, reason, expires_at, action_hash, preview) VALUES (%s, %s, %s, %s, %s, %s::jsonb,"
        " %s::jsonb, %s, %s, now() + make_interval(secs => %s), %s, %s::jsonb) RETURNING id",
        (tenant_id, conversation_id, message_id, requested_by, function, to_json(targets), to_json(args),
         label, reason, ttl_seconds, action_hash(tenant_id, function, targets, args),
         None if preview is None else to_json(preview))).fetchone()
    return str(row["id"])


def list_conversations(conn: Connection, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT c.id, c.title, c.created_by, c.created_at, c.updated_at,"
        " (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS messages"
        " FROM conversations c ORDER BY c.updated_at DESC LIMIT %s", (limit,)).fetchall()
    return [clean_row(r) for r in rows]


def get_conversation(conn: Connection, conversation_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT id, title, created_by, created_at, updated_at FROM conversations"
                       " WHERE id::text = %s", (conversation_id,)).fetchone()
    if row is None:
        return None
    out = clean_row(row)
    out["messages"] = [clean_row(r) for r in conn.execute(
        "SELECT id, role, content, metadata, tokens_used, created_at FROM messages"
        " WHERE conversation_id = %s ORDER BY created_at, id", (row["id"],)).fetchall()]
    out["executions"] = [clean_row(r) for r in conn.execute(
        "SELECT id, job_id, module, targets, args, status, started_at, completed_at FROM executions"
        " WHERE conversation_id = %s ORDER BY created_at", (row["id"],)).fetchall()]
    out["actions"] = [clean_row(r) for r in conn.execute(
        "SELECT id, function, targets, args, label, status, preview, created_at, expires_at FROM actions"
        " WHERE conversation_id = %s ORDER BY created_at", (row["id"],)).fetchall()]
    return out
