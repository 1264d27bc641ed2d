"""Inventory reads for the runners and the API: settings in, JSON-safe dicts out."""

from __future__ import annotations

from typing import Any, Iterable

from salt_ext.db import Database
from salt_ext.errors import ServerFlowError
from salt_ext.inventory import store


def _tags(tag: str | Iterable[str] | None) -> list[str]:
    if not tag:
        return []
    if isinstance(tag, str):
        return [t for t in tag.replace(",", " ").split() if t]
    return [str(t) for t in tag]


def servers(settings: dict[str, Any], *, status: str | None = None,
            tag: str | Iterable[str] | None = None, search: str | None = None,
            db: Database | None = None) -> list[dict[str, Any]]:
    """Servers of this master's tenant matching every filter."""
    if status and status not in ("online", "offline", "unknown"):
        raise ServerFlowError("SYS003", f"status must be online, offline or unknown, not {status!r}")
    own = db is None
    db = db or Database.from_settings(settings)
    try:
        with db.tenant(settings["tenant_id"]) as conn:
            found, _ = store.list_servers(conn, status=status, tags=_tags(tag), search=search)
    finally:
        if own:
            db.close()
    return [s.as_dict() for s in found]


def server(settings: dict[str, Any], key: str, *, db: Database | None = None) -> dict[str, Any]:
    """One server by minion id or UUID; SRV001 (with near matches) when unknown."""
    own = db is None
    db = db or Database.from_settings(settings)
    try:
        with db.tenant(settings["tenant_id"]) as conn:
            found = store.get_server(conn, key)
            if found is None:
                every, _ = store.list_servers(conn)
    finally:
        if own:
            db.close()
    if found is None:
        import difflib

        near = difflib.get_close_matches(key, [s.minion_id for s in every], n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise ServerFlowError("SRV001", f"no server {key!r} in the inventory{hint}", near=near)
    return found.as_dict()
