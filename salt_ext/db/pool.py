"""Tenant-scoped access to PostgreSQL through psycopg_pool.

Every transaction the product opens sets ``app.tenant_id`` with ``SET LOCAL``
semantics, so row-level security confines it to one tenant even on a pooled
connection that served another tenant a moment ago.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from salt_ext.config import redact_dsn
from salt_ext.errors import ServerFlowError

log = logging.getLogger(__name__)
# The pool retries in the background and would log every failed attempt; callers get
# one SYS001 error instead and decide how loudly to report it.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)


def database_error(exc: BaseException, dsn: str) -> ServerFlowError:
    """Turn a driver/pool exception into a one-line SYS001 error naming the database."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ServerFlowError(
        "SYS001",
        f"PostgreSQL at {redact_dsn(dsn)} is unreachable ({reason}); "
        "start it (`make up` starts the dev database) or fix serverflow:database:url",
    )


class Database:
    """A connection pool bound to one DSN; ``tenant(tid)`` yields a tenant-scoped transaction."""

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 4,
                 connect_timeout: float = 3, name: str = "serverflow") -> None:
        self.dsn = dsn
        self._connect_timeout = connect_timeout
        self._pool = ConnectionPool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            kwargs={"connect_timeout": int(max(1, connect_timeout)), "autocommit": False},
            open=False,
            name=name,
            # A dead server must not leave broken connections in the pool.
            check=ConnectionPool.check_connection,
        )
        self._opened = False

    @classmethod
    def from_settings(cls, settings: dict[str, Any], *, admin: bool = False) -> "Database":
        db = settings["database"]
        return cls(db["admin_url"] if admin else db["url"], min_size=db["pool_min"],
                   max_size=db["pool_max"], connect_timeout=db["connect_timeout"])

    def _ensure_open(self) -> None:
        if not self._opened:
            self._pool.open(wait=False)
            self._opened = True

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled connection; driver errors become SYS001 ServerFlowError."""
        self._ensure_open()
        try:
            with self._pool.connection(timeout=self._connect_timeout) as conn:
                conn.row_factory = dict_row
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise database_error(exc, self.dsn) from exc

    @contextlib.contextmanager
    def tenant(self, tenant_id: str) -> Iterator[psycopg.Connection]:
        """One transaction confined to ``tenant_id`` by row-level security."""
        with self.connection() as conn:
            with conn.transaction():
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
                yield conn

    def close(self) -> None:
        if self._opened:
            self._pool.close()
            self._opened = False


def connect_once(dsn: str, timeout: float = 3) -> psycopg.Connection:
    """A single unpooled connection (migrations, health checks)."""
    try:
        return psycopg.connect(dsn, connect_timeout=int(max(1, timeout)), row_factory=dict_row)
    except psycopg.OperationalError as exc:
        raise database_error(exc, dsn) from exc
