"""Bring the whole stack up or down, and say what is running."""

from __future__ import annotations

import time
from typing import Any

from salt_ext.devstack import postgres, processes, redis_server, salt_daemons
from salt_ext.devstack.layout import Layout


def settings_for(layout: Layout) -> dict[str, Any]:
    """The effective ServerFlow settings of this stack's master."""
    from salt_ext.config import load_settings

    return load_settings(salt_daemons.master_config(layout))


def start_services(layout: Layout, *, fresh_database: bool = False) -> None:
    """PostgreSQL (initialised, provisioned, migrated) and Redis.

    ``fresh_database`` drops the product database first (the test suite starts clean).
    """
    from salt_ext.db.migrate import migrate

    layout.secrets()
    postgres.init_cluster(layout)
    postgres.start(layout)
    if fresh_database:
        postgres.drop_database(layout)
    postgres.provision(layout)
    migrate(layout.dsn("owner"))
    redis_server.start(layout)


def start_salt(layout: Layout, *, api: bool = True, master_extra: dict[str, Any] | None = None,
               timeout: float = 120) -> set[str]:
    """Master, minions and salt-api; returns the minions that answered."""
    salt_daemons.write_configs(layout, master_extra)
    salt_daemons.start_master(layout)
    for minion_id in layout.minions:
        salt_daemons.start_minion(layout, minion_id)
    answered = salt_daemons.wait_minions(layout, list(layout.minions), timeout=timeout)
    if api:
        salt_daemons.start_api(layout)
    return answered


def wait_inventory(layout: Layout, minion_ids: list[str], status: str = "online",
                   timeout: float = 60) -> dict[str, str]:
    """Poll the inventory until every minion has ``status``; returns the last statuses seen."""
    from salt_ext.inventory import queries

    settings = settings_for(layout)
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        try:
            seen = {s["minion_id"]: s["status"] for s in queries.servers(settings)}
        except Exception:
            seen = {}
        if all(seen.get(m) == status for m in minion_ids):
            break
        time.sleep(0.5)
    return seen


FIRST_ADMIN = "admin@serverflow.local"


def ensure_first_admin(layout: Layout) -> dict[str, Any]:
    """The stack's first user (role owner), created once; its generated password lives in
    ``secrets.json`` (``admin_password``) so `make up` can print it again."""
    from salt_ext.db import Database
    from salt_ext.security import identity, passwords
    from salt_ext.security.settings import with_secret_key

    password = salt_daemons.ensure_secret(layout, "admin_password", passwords.generate_password())
    settings = with_secret_key(settings_for(layout))
    db = Database.from_settings(settings)
    try:
        created = identity.ensure_user(db, settings, FIRST_ADMIN, password, role="owner", name="Admin")
    finally:
        db.close()
    return {"email": FIRST_ADMIN, "password": password, "created": created}


def up(layout: Layout, *, api: bool = True) -> dict[str, Any]:
    started = time.monotonic()
    start_services(layout)
    admin = ensure_first_admin(layout)
    answered = start_salt(layout, api=api)
    inventory = wait_inventory(layout, sorted(answered))
    return {"answered": sorted(answered), "inventory": inventory, "admin": admin,
            "seconds": round(time.monotonic() - started, 1)}


def down(layout: Layout) -> list[str]:
    stopped = salt_daemons.stop_all(layout)
    if redis_server.stop(layout):
        stopped.append("redis")
    if postgres.stop(layout):
        stopped.append("postgres")
    return stopped


def status(layout: Layout) -> dict[str, int | None]:
    names = ["postgres", "redis", "salt-master",
             *(f"minion-{m}" for m in layout.minions), "salt-api"]
    return {name: processes.running(layout.run, name) for name in names}
