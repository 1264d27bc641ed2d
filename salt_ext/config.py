"""ServerFlow settings: everything lives under one ``serverflow:`` key of the master config.

Each key below has a default and a one-line description; ``load_settings(opts)``
merges the operator's values over these defaults.  Secrets (database passwords,
API keys) are never logged: use ``redacted()`` for anything printed.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Mapping

DEFAULT_TENANT_ID = "00000000-0000-4000-8000-000000000001"

DEFAULTS: dict[str, Any] = {
    # One master per tenant: the tenant every row this master writes belongs to.
    "tenant_id": DEFAULT_TENANT_ID,
    "tenant_name": "Default",
    "tenant_slug": "default",
    "database": {
        # Application DSN: a non-owner role, so row-level security applies to it.
        "url": "postgresql://serverflow_app@127.0.0.1:5432/serverflow",
        # Owner DSN used for migrations only (defaults to ``url``).
        "admin_url": None,
        "pool_min": 1,
        "pool_max": 4,
        "connect_timeout": 3,
        # Apply pending migrations when the engine starts.
        "migrate_on_start": True,
    },
    "redis": {
        "url": "redis://127.0.0.1:6379/0",
    },
    "inventory": {
        # Seconds between the engine's own test.ping sweeps (presence fallback).
        "ping_interval": 30,
        # Seconds a minion has to answer a sweep ping.
        "ping_timeout": 5,
        # Consecutive unanswered sweeps before a minion is marked offline.
        "misses_before_offline": 2,
        # Seconds between full grains refreshes of every known minion.
        "refresh_interval": 600,
        # Grain (then pillar) key holding a minion's tags and services.
        "tags_key": "serverflow:tags",
        "services_key": "serverflow:services",
    },
    "engine": {
        # Backoff bounds (seconds) while the database or Redis is unreachable.
        "retry_min": 1,
        "retry_max": 30,
        # How often the engine refreshes its heartbeat file.
        "heartbeat_interval": 5,
    },
}

_SECRET_KEY = re.compile(r"(password|passwd|secret|token|api_?key|private_?key|credential)", re.I)
_DSN_PASSWORD = re.compile(r"(://[^:/@]+:)([^@]+)(@)")


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_settings(opts: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the effective settings from a Salt opts dict (``opts['serverflow']``)."""
    settings = _merge(DEFAULTS, (opts or {}).get("serverflow") or {})
    if not settings["database"].get("admin_url"):
        settings["database"]["admin_url"] = settings["database"]["url"]
    return settings


def redact_dsn(dsn: str) -> str:
    """Hide the password of a connection string."""
    return _DSN_PASSWORD.sub(r"\1***\3", dsn or "")


def redacted(value: Any, key: str = "") -> Any:
    """A copy of settings safe to print: secret-looking keys and DSN passwords masked."""
    if isinstance(value, Mapping):
        return {k: redacted(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v, key) for v in value]
    if isinstance(value, str):
        if _SECRET_KEY.search(key) and value:
            return "***"
        return redact_dsn(value)
    return value
