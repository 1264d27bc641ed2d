"""Versioned SQL migrations: ``NNNN_name.sql`` files applied once each, in order.

Applied by ``make up``, by the engine at start and by ``salt-run serverflow.migrate``.
Concurrent runs serialise on an advisory lock; every file runs in its own
transaction and is recorded with its checksum, so a second run is a no-op and
an edited, already-applied file is reported instead of silently ignored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from salt_ext.db.pool import connect_once
from salt_ext.errors import ServerFlowError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK_KEY = 0x5345_5256  # "SERV": one advisory lock for every ServerFlow migrator
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations shipped with the package, in version order."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ServerFlowError("SYS003", f"migration file {path.name} is not named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ServerFlowError("SYS003", "two migration files share a version number")
    return found


def _ensure_table(conn: Any) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )


def applied(dsn: str) -> dict[int, dict[str, Any]]:
    """Applied migrations by version (empty when the table does not exist yet)."""
    with connect_once(dsn) as conn:
        exists = conn.execute("SELECT to_regclass('schema_migrations') AS t").fetchone()["t"]
        if not exists:
            return {}
        rows = conn.execute("SELECT version, name, checksum, applied_at FROM schema_migrations")
        return {row["version"]: row for row in rows}


def current_version(dsn: str) -> int:
    """The highest applied version, 0 for an empty database."""
    return max(applied(dsn), default=0)


def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> dict[str, Any]:
    """Apply pending migrations as the schema owner; returns what was applied and the version."""
    pending = available(directory)
    done: list[str] = []
    with connect_once(dsn) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            _ensure_table(conn)
            have = {r["version"]: r for r in conn.execute("SELECT version, checksum FROM schema_migrations")}
            mismatched = [m.version for m in pending
                          if m.version in have and have[m.version]["checksum"] != m.checksum]
            if mismatched:
                raise ServerFlowError(
                    "SYS003",
                    f"applied migrations {mismatched} differ from the shipped files; "
                    "add a new migration instead of editing an applied one",
                )
            for mig in pending:
                if mig.version in have:
                    continue
                with conn.transaction():
                    conn.execute(mig.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (mig.version, mig.name, mig.checksum),
                    )
                done.append(f"{mig.version:04d}_{mig.name}")
    return {"applied": done, "version": max((m.version for m in pending), default=0)}
