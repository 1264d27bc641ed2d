"""The ``alerts`` table (row-level security: always inside ``db.tenant(...)``)."""

from __future__ import annotations

from typing import Any

from salt_ext.alerts.rules import Crossing

_SELECT = ("SELECT a.id, s.minion_id, a.server_id, a.severity, a.title, a.description, a.metric_name,"
           " a.metric_value, a.threshold, a.status, a.created_at, a.resolved_at"
           " FROM alerts a LEFT JOIN servers s ON s.id = a.server_id")


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("id", "server_id"):
        out[key] = str(out[key]) if out.get(key) is not None else None
    for key in ("metric_value", "threshold"):
        out[key] = float(out[key]) if out.get(key) is not None else None
    for key in ("created_at", "resolved_at"):
        out[key] = out[key].isoformat() if out.get(key) is not None else None
    return out


def raise_alert(conn: Any, tenant_id: str, crossing: Crossing) -> dict[str, Any] | None:
    """Store an active alert for the crossing unless one is active for the same minion and
    metric; returns the new alert, or None when it was already active (or the server is unknown)."""
    server = conn.execute("SELECT id FROM servers WHERE minion_id = %s", (crossing.minion_id,)).fetchone()
    if server is None:
        return None
    # one active alert per (server, metric): serialize raisers of the same server
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"alert:{server['id']}",))
    active = conn.execute("SELECT id FROM alerts WHERE server_id = %s AND metric_name = %s AND status = 'active'",
                          (server["id"], crossing.metric)).fetchone()
    if active is not None:
        return None
    row = conn.execute(
        "INSERT INTO alerts (tenant_id, server_id, severity, title, description, metric_name, metric_value,"
        " threshold, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'active') RETURNING id",
        (tenant_id, server["id"], crossing.severity, crossing.title[:255], crossing.description,
         crossing.metric, crossing.value, crossing.threshold)).fetchone()
    return get_alert(conn, str(row["id"]))


def resolve_alerts(conn: Any, crossing: Crossing) -> list[dict[str, Any]]:
    """Resolve the active alerts of the crossing's minion and metric; returns them resolved."""
    rows = conn.execute(
        "UPDATE alerts a SET status = 'resolved', resolved_at = now() FROM servers s"
        " WHERE s.id = a.server_id AND s.minion_id = %s AND a.metric_name = %s AND a.status = 'active'"
        " RETURNING a.id", (crossing.minion_id, crossing.metric)).fetchall()
    return [found for r in rows if (found := get_alert(conn, str(r["id"])))]


def get_alert(conn: Any, alert_id: str) -> dict[str, Any] | None:
    row = conn.execute(_SELECT + " WHERE a.id::text = %s", (alert_id,)).fetchone()
    return _clean(row) if row else None


def list_alerts(conn: Any, *, status: str | None = None, limit: int = 50,
                offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Newest first; ``status`` active or resolved (None: both)."""
    where, params = ("", []) if not status else (" WHERE a.status = %s", [status])
    total = conn.execute("SELECT count(*) AS n FROM alerts a" + where, params).fetchone()["n"]
    rows = conn.execute(_SELECT + where + " ORDER BY a.created_at DESC, a.id LIMIT %s OFFSET %s",
                        [*params, limit, offset]).fetchall()
    return [_clean(r) for r in rows], total
