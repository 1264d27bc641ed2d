"""Inventory persistence: the ``servers`` table, always inside a tenant-scoped transaction."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterable

from psycopg import Connection

from salt_ext.inventory.model import Server

_COLUMNS = ("id", "minion_id", "hostname", "ip_addresses", "os", "os_family", "os_release",
            "kernel", "cpu_count", "memory_total", "grains", "tags", "services", "status",
            "last_seen_at")
_SELECT = "SELECT " + ", ".join(_COLUMNS) + " FROM servers"


def ensure_tenant(conn: Connection, tenant_id: str, name: str, slug: str) -> None:
    """Create this master's tenant row if missing (the transaction must be scoped to it)."""
    conn.execute(
        "INSERT INTO tenants (id, name, slug) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING",
        (tenant_id, name, slug),
    )


def _row_to_server(row: dict[str, Any]) -> Server:
    data = {k: row[k] for k in _COLUMNS}
    data["id"] = str(data["id"])
    for key in ("ip_addresses", "tags", "services"):
        data[key] = list(data[key] or [])
    data["grains"] = dict(data["grains"] or {})
    return Server(**data)


def upsert_facts(conn: Connection, tenant_id: str, server: Server) -> None:
    """Insert or refresh a server's facts (grains-derived fields); status is left alone."""
    conn.execute(
        """
        INSERT INTO servers (tenant_id, minion_id, hostname, ip_addresses, os, os_family,
                             os_release, kernel, cpu_count, memory_total, grains, tags, services)
        VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb)
        ON CONFLICT (tenant_id, minion_id) DO UPDATE SET
            hostname = EXCLUDED.hostname, ip_addresses = EXCLUDED.ip_addresses,
            os = EXCLUDED.os, os_family = EXCLUDED.os_family, os_release = EXCLUDED.os_release,
            kernel = EXCLUDED.kernel, cpu_count = EXCLUDED.cpu_count,
            memory_total = EXCLUDED.memory_total, grains = EXCLUDED.grains,
            tags = EXCLUDED.tags, services = EXCLUDED.services, updated_at = now()
        """,
        (tenant_id, server.minion_id, server.hostname, json.dumps(server.ip_addresses), server.os,
         server.os_family, server.os_release, server.kernel, server.cpu_count,
         server.memory_total, json.dumps(server.grains, default=str), json.dumps(server.tags),
         json.dumps(server.services)),
    )


def set_status(conn: Connection, tenant_id: str, minion_id: str, status: str,
               seen_at: datetime | None) -> None:
    """Record a minion's presence; ``last_seen_at`` only moves forward."""
    conn.execute(
        """
        INSERT INTO servers (tenant_id, minion_id, status, last_seen_at)
        VALUES (%s, %s, %s, %s)
        ON CONFLICT (tenant_id, minion_id) DO UPDATE SET
            status = EXCLUDED.status,
            last_seen_at = GREATEST(servers.last_seen_at, EXCLUDED.last_seen_at),
            updated_at = now()
        """,
        (tenant_id, minion_id, status, seen_at),
    )


def list_servers(conn: Connection, *, status: str | None = None, tags: Iterable[str] = (),
                 search: str | None = None, limit: int | None = None,
                 offset: int = 0) -> tuple[list[Server], int]:
    """Servers matching every filter, by minion id; returns (page, total count)."""
    where: list[str] = []
    params: list[Any] = []
    if status:
        where.append("status = %s")
        params.append(status)
    tags = [t for t in tags if t]
    if tags:
        where.append("tags @> %s::jsonb")
        params.append(json.dumps(tags))
    if search:
        where.append("(minion_id ILIKE %s OR hostname ILIKE %s OR ip_addresses::text ILIKE %s"
                     " OR os ILIKE %s)")
        like = f"%{search}%"
        params.extend([like] * 4)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    total = conn.execute("SELECT count(*) AS n FROM servers" + clause, params).fetchone()["n"]
    sql = _SELECT + clause + " ORDER BY minion_id"
    page_params = list(params)
    if limit is not None:
        sql += " LIMIT %s OFFSET %s"
        page_params += [limit, offset]
    rows = conn.execute(sql, page_params).fetchall()
    return [_row_to_server(r) for r in rows], total


def get_server(conn: Connection, key: str) -> Server | None:
    """One server by minion id or by its UUID."""
    row = conn.execute(_SELECT + " WHERE minion_id = %s OR id::text = %s", (key, key)).fetchone()
    return _row_to_server(row) if row else None


def delete_server(conn: Connection, key: str) -> bool:
    """Remove a server from the inventory (the minion's key is left to Salt)."""
    cur = conn.execute("DELETE FROM servers WHERE minion_id = %s OR id::text = %s", (key, key))
    return cur.rowcount > 0
