"""Reading the job cache: PostgreSQL, plus rows still waiting in the local spool.

Every answer merges the database with the spool's unflushed rows, so a reader
sees a job the moment ``save_load``/``returner`` returned (read-your-writes, as
with local_cache) and the master keeps answering while PostgreSQL is down.
The spool is scanned *before* the database is queried: a row flushed in between
is then found in the database, never missed by both.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import psycopg

from salt_ext.db.pool import connect_once
from salt_ext.engine.inventory_service import describe
from salt_ext.errors import ServerFlowError
from salt_ext.jobcache import spool as spools
from salt_ext.jobcache.encoding import copy_text, parse_copy_line

log = logging.getLogger(__name__)

_FIND_JOB = "saltutil.find_job"


@dataclass
class Pending:
    """Unflushed rows found in the spool, folded the way the database folds them."""

    loads: dict[str, dict[str, Any]] = field(default_factory=dict)
    derived: dict[str, dict[str, Any]] = field(default_factory=dict)
    minions: dict[str, set[str]] = field(default_factory=dict)
    returns: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    funs: dict[str, dict[str, tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    endtimes: dict[str, str] = field(default_factory=dict)

    def add(self, fields: list[str | None]) -> None:
        kind, jid = fields[0], fields[1] or ""
        try:
            doc = json.loads(fields[9]) if fields[9] is not None else None
            extra = json.loads(fields[10]) if fields[10] is not None else None
        except ValueError:
            return
        if kind in ("l", "L", "m") and isinstance(extra, list):
            self.minions.setdefault(jid, set()).update(str(m) for m in extra)
        if kind == "l" and isinstance(doc, dict):
            self.loads[jid] = doc
        elif kind == "L" and isinstance(doc, dict):
            self.derived.setdefault(jid, doc)
        elif kind == "r" and isinstance(doc, dict) and fields[2]:
            self.returns.setdefault(jid, {}).setdefault(fields[2], doc)
            if fields[3]:
                self.funs.setdefault(fields[3], {})[fields[2]] = (jid, doc)
        elif kind == "t" and doc is not None:
            self.endtimes[jid] = str(doc)

    def load(self, jid: str) -> dict[str, Any] | None:
        return self.loads.get(jid) or self.derived.get(jid)

    def all_loads(self) -> dict[str, dict[str, Any]]:
        return {**self.derived, **self.loads}


# Newest unflushed bytes a reader looks at per spool directory: everything in normal operation
# (a flush every 0.2 s), the most recent jobs during a long outage.
READ_LIMIT = 8 << 20


def scan(root: Path, kinds: str, jid: str | None = None) -> Pending:
    """Fold the spool's newest unflushed rows of ``kinds`` (optionally of one jid)."""
    key = re.escape(copy_text(jid).encode()) if jid is not None else rb"[^\t\n]*"
    pattern = re.compile(rb"(?m)^[" + re.escape(kinds.encode()) + rb"]\t" + key + rb"\t[^\n]*\n")
    pending = Pending()
    for directory in spools.writer_dirs(root):
        for block in spools.pending_bytes(directory, READ_LIMIT):
            for match in pattern.finditer(block):
                pending.add(parse_copy_line(match.group(0)))
    return pending


class JobReader:
    """The read half of the job-cache contract for one tenant.

    One connection per process, opened on first use with the tenant set for the
    session. After a failure the database is left alone for ``pause`` seconds, so a
    master whose PostgreSQL is down answers from the spool at once, not after a
    connect timeout per question.
    """

    def __init__(self, dsn: str, tenant_id: str, spool_root: Path, *,
                 connect_timeout: float = 3, pause: float = 2.0) -> None:
        self.dsn = dsn
        self.tenant_id = tenant_id
        self.spool_root = spool_root
        self.connect_timeout = connect_timeout
        self.pause = pause
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()
        self._quiet_until = 0.0

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            conn = connect_once(self.dsn, self.connect_timeout)
            conn.autocommit = True
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (self.tenant_id,))
            self._conn = conn
        return self._conn

    @contextlib.contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """This reader's connection (autocommit, tenant set), for one caller at a time.
        A failure closes it and keeps the database alone for ``pause`` seconds."""
        if time.monotonic() < self._quiet_until:
            raise ServerFlowError("SYS001", "PostgreSQL failed a moment ago; not retried yet")
        with self._lock:
            try:
                yield self._connection()
            except (ServerFlowError, psycopg.Error):
                self._drop()
                self._quiet_until = time.monotonic() + self.pause
                raise

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _query(self, sql: str, params: Any = ()) -> list[dict[str, Any]] | None:
        """Rows, or None (logged) when PostgreSQL cannot answer: callers use the spool alone.

        A connection that broke while idle (PostgreSQL restarted since the last question) is
        replaced and the query asked again at once: only a fresh connection's failure counts.
        """
        try:
            if time.monotonic() >= self._quiet_until:
                with self._lock:
                    if self._conn is not None and not self._conn.closed:
                        try:
                            return list(self._conn.execute(sql, params))
                        except (psycopg.OperationalError, psycopg.InterfaceError):
                            self._drop()  # stale: fall through to a fresh connection
            with self.connection() as conn:
                return list(conn.execute(sql, params))
        except (ServerFlowError, psycopg.Error) as exc:
            log.warning("serverflow job cache: PostgreSQL cannot answer (%s); using the local "
                        "spool only", describe(exc))
            return None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def load(self, jid: str) -> tuple[dict[str, Any], list[str]]:
        """(load or {}, sorted minions) of one job.

        Raises ServerFlowError (SYS001) when PostgreSQL cannot answer and the spool does not
        hold the job: ``{}`` would tell Salt the jid does not exist (LocalClient then stops
        waiting for the job's returns), when in truth it is unknown for now.
        """
        pending = scan(self.spool_root, "lLm", jid)
        rows = self._query("SELECT load, minions FROM salt_jobs "
                           "WHERE tenant_id = %s AND jid = %s", (self.tenant_id, jid))
        if rows is None and pending.load(jid) is None:
            raise ServerFlowError("SYS001", f"job {jid} is not in the local spool and PostgreSQL "
                                  "cannot answer now")
        row = rows[0] if rows else {}
        load = pending.loads.get(jid)
        if load is None:
            load = row.get("load") if row.get("load") is not None else pending.derived.get(jid)
        minions = set(row.get("minions") or []) | pending.minions.get(jid, set())
        return dict(load or {}), sorted(minions)

    def returns(self, jid: str) -> dict[str, dict[str, Any]]:
        """``{minion: {"return": ..., "retcode": ..., "success": ...}}`` of one job."""
        pending = scan(self.spool_root, "r", jid)
        rows = self._query("SELECT minion_id, full_ret FROM salt_job_returns "
                           "WHERE tenant_id = %s AND jid = %s", (self.tenant_id, jid)) or []
        found = dict(pending.returns.get(jid, {}))
        found.update({r["minion_id"]: r["full_ret"] for r in rows})
        return found

    def jobs(self, *, count: int | None = None, skip_find_job: bool = False,
             with_endtime: bool = False) -> list[tuple[str, dict[str, Any], str | None]]:
        """``(jid, load, endtime)`` of jobs with a known load, by jid; the last ``count``."""
        pending = scan(self.spool_root, "lLt" if with_endtime else "lL")
        sql = ["SELECT jid, load, endtime FROM salt_jobs WHERE tenant_id = %s AND load IS NOT NULL"]
        params: list[Any] = [self.tenant_id]
        if skip_find_job:
            sql.append("AND fun IS DISTINCT FROM %s")
            params.append(_FIND_JOB)
        if count is not None:
            sql.append('ORDER BY jid COLLATE "C" DESC LIMIT %s')
            params.append(int(count))
        rows = self._query(" ".join(sql), params) or []
        merged: dict[str, tuple[dict[str, Any], str | None]] = {
            r["jid"]: (r["load"], r["endtime"]) for r in rows}
        for jid, load in pending.all_loads().items():
            if skip_find_job and load.get("fun") == _FIND_JOB:
                continue
            if jid not in merged or jid in pending.loads:
                merged[jid] = (load, merged.get(jid, (None, None))[1])
        for jid, endtime in pending.endtimes.items():
            if jid in merged:
                merged[jid] = (merged[jid][0], endtime)
        ordered = sorted(merged.items())
        if count is not None:
            ordered = ordered[-int(count):] if count > 0 else []
        return [(jid, load, endtime) for jid, (load, endtime) in ordered]

    def endtime(self, jid: str) -> str | None:
        pending = scan(self.spool_root, "t", jid)
        if jid in pending.endtimes:
            return pending.endtimes[jid]
        rows = self._query("SELECT endtime FROM salt_jobs WHERE tenant_id = %s AND jid = %s",
                           (self.tenant_id, jid)) or []
        return rows[0]["endtime"] if rows else None

    def last_by_function(self, fun: str) -> dict[str, dict[str, Any]]:
        """The latest return of ``fun`` per minion (``get_fun``)."""
        pending = scan(self.spool_root, "r")
        rows = self._query(
            "SELECT DISTINCT ON (minion_id) minion_id, jid, full_ret FROM salt_job_returns "
            "WHERE tenant_id = %s AND fun = %s ORDER BY minion_id, returned_at DESC",
            (self.tenant_id, fun)) or []
        found = {r["minion_id"]: {**r["full_ret"], "jid": r["jid"], "fun": fun} for r in rows}
        for minion, (jid, doc) in pending.funs.get(fun, {}).items():
            if minion not in found or jid > found[minion]["jid"]:
                found[minion] = {**doc, "jid": jid, "fun": fun}
        return found

    def minion_ids(self) -> list[str]:
        """Every minion with a stored return (a loose index scan, not a full DISTINCT)."""
        pending = scan(self.spool_root, "r")
        rows = self._query(
            """WITH RECURSIVE m AS (
                   (SELECT minion_id FROM salt_job_returns WHERE tenant_id = %(t)s
                    ORDER BY minion_id LIMIT 1)
                   UNION ALL
                   SELECT (SELECT r.minion_id FROM salt_job_returns r
                           WHERE r.tenant_id = %(t)s AND r.minion_id > m.minion_id
                           ORDER BY r.minion_id LIMIT 1)
                   FROM m WHERE m.minion_id IS NOT NULL)
               SELECT minion_id FROM m WHERE minion_id IS NOT NULL""",
            {"t": self.tenant_id}) or []
        names = {r["minion_id"] for r in rows}
        for returns in pending.returns.values():
            names.update(returns)
        return sorted(names)
