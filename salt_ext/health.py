"""Component health for ``salt-run serverflow.health``: each check says ok or what is wrong."""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

from salt_ext.config import redact_dsn
from salt_ext.db.migrate import available, current_version
from salt_ext.engine.inventory_service import describe
from salt_ext.engine.runtime import heartbeat_path


def _check(fn: Callable[[], str]) -> dict[str, Any]:
    try:
        return {"ok": True, "detail": fn()}
    except Exception as exc:
        return {"ok": False, "detail": describe(exc)}


def check_database(settings: dict[str, Any]) -> str:
    from salt_ext.db.pool import connect_once

    with connect_once(settings["database"]["url"]) as conn:
        conn.execute("SELECT 1")
    return f"connected to {redact_dsn(settings['database']['url'])}"


def check_migrations(settings: dict[str, Any]) -> str:
    have = current_version(settings["database"]["admin_url"])
    want = max((m.version for m in available()), default=0)
    if have < want:
        raise RuntimeError(f"schema at version {have}, package ships {want}: "
                           "run `salt-run serverflow.migrate`")
    return f"schema version {have}"


def check_redis(settings: dict[str, Any]) -> str:
    import redis

    url = settings["redis"]["url"]
    redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2).ping()
    return f"PONG from {redact_dsn(url)}"


def check_engine(opts: dict[str, Any], settings: dict[str, Any]) -> str:
    path = heartbeat_path(opts)
    try:
        with open(path) as handle:
            beat = json.load(handle)
    except FileNotFoundError:
        raise RuntimeError("no heartbeat: is `engines: [serverflow: {}]` in the master config "
                           "and the master running?") from None
    age = time.time() - float(beat.get("at", 0))
    limit = 3 * float(settings["engine"]["heartbeat_interval"]) + 5
    if age > limit:
        raise RuntimeError(f"last heartbeat {age:.0f}s ago (pid {beat.get('pid')})")
    try:
        os.kill(int(beat["pid"]), 0)
    except (OSError, KeyError, ValueError):
        raise RuntimeError(f"engine pid {beat.get('pid')} is not running") from None
    return f"alive (pid {beat['pid']}, heartbeat {age:.0f}s ago, database: {beat.get('database')})"


def check_minions(connected: Callable[[], list[str]], accepted: list[str]) -> str:
    answered = connected()
    missing = sorted(set(accepted) - set(answered))
    if missing:
        raise RuntimeError(f"{len(answered)}/{len(accepted)} minions answer; silent: {', '.join(missing)}")
    return f"{len(answered)}/{len(accepted)} minions answer"


def report(opts: dict[str, Any], settings: dict[str, Any],
           connected: Callable[[], list[str]], accepted: list[str]) -> dict[str, Any]:
    """Every component's state and an overall ``ok``."""
    components = {
        "database": _check(lambda: check_database(settings)),
        "migrations": _check(lambda: check_migrations(settings)),
        "redis": _check(lambda: check_redis(settings)),
        "engine": _check(lambda: check_engine(opts, settings)),
        "minions": _check(lambda: check_minions(connected, accepted)),
    }
    return {"ok": all(c["ok"] for c in components.values()), "components": components}
