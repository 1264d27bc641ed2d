"""Writing spooled records to PostgreSQL: one COPY into a staging table, then idempotent upserts.

COPY cannot target a table with row-level security (nor skip duplicates), so each
batch is streamed into a session-local ``sf_stage`` table and moved with
``INSERT ... SELECT ... ON CONFLICT``, all in one transaction scoped to the tenant.
Replaying the same rows twice changes nothing: returns keep the first copy
(like local_cache), loads and end times take the last, minion lists merge.
"""

from __future__ import annotations

import psycopg
from psycopg import errors

from salt_ext.db.pool import database_error
from salt_ext.jobcache.records import STAGE_COLUMNS

_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS sf_stage (
    ord BIGSERIAL, kind TEXT, jid TEXT, name TEXT, fun TEXT, success BOOLEAN,
    retcode INTEGER, truncated BOOLEAN, at DOUBLE PRECISION, t0 DOUBLE PRECISION,
    doc TEXT, extra TEXT
) ON COMMIT DELETE ROWS
"""
APPLICATION_NAME = "serverflow-returner"
CONFLICT_RETRIES = 5
COPY_SQL = f"COPY sf_stage ({', '.join(STAGE_COLUMNS)}) FROM STDIN"

# One statement per record kind, run only when the batch holds that kind.
UPSERTS: dict[str, str] = {
    "l": """
        INSERT INTO salt_jobs AS j (tenant_id, jid, fun, load, load_source, started_at)
        SELECT DISTINCT ON (s.jid) %(t)s::uuid, s.jid, s.fun, s.doc::jsonb, 'publish',
               to_timestamp(s.t0)
        FROM sf_stage s WHERE s.kind = 'l' ORDER BY s.jid, s.ord DESC
        ON CONFLICT (tenant_id, jid) DO UPDATE SET
            load = EXCLUDED.load, fun = EXCLUDED.fun, load_source = 'publish'""",
    "L": """
        INSERT INTO salt_jobs AS j (tenant_id, jid, fun, load, load_source, started_at)
        SELECT DISTINCT ON (s.jid) %(t)s::uuid, s.jid, s.fun, s.doc::jsonb, 'return',
               to_timestamp(s.t0)
        FROM sf_stage s WHERE s.kind = 'L' ORDER BY s.jid, s.ord
        ON CONFLICT (tenant_id, jid) DO UPDATE SET
            load = EXCLUDED.load, fun = EXCLUDED.fun, load_source = 'return'
        WHERE j.load IS NULL""",
    # Minion lists of loads and save_minions, merged (one statement, so no jid twice).
    "m": """
        INSERT INTO salt_jobs AS j (tenant_id, jid, minions, started_at)
        SELECT %(t)s::uuid, s.jid, serverflow_text_union('{}', array_agg(m.name)),
               to_timestamp(min(s.t0))
        FROM sf_stage s, LATERAL jsonb_array_elements_text(s.extra::jsonb) AS m(name)
        WHERE s.kind IN ('l', 'L', 'm') GROUP BY s.jid ORDER BY s.jid
        ON CONFLICT (tenant_id, jid) DO UPDATE SET
            minions = serverflow_text_union(j.minions, EXCLUDED.minions)""",
    "r": """
        INSERT INTO salt_job_returns (tenant_id, jid, minion_id, fun, fun_args, success, retcode,
                                      full_ret, truncated, returned_at)
        SELECT %(t)s::uuid, s.jid, s.name, s.fun, s.extra::jsonb, s.success, s.retcode,
               s.doc::jsonb, s.truncated, to_timestamp(s.at)
        FROM sf_stage s WHERE s.kind = 'r' ORDER BY s.jid, s.name
        ON CONFLICT DO NOTHING;
        INSERT INTO salt_jobs (tenant_id, jid, started_at)
        SELECT DISTINCT ON (s.jid) %(t)s::uuid, s.jid, to_timestamp(s.t0)
        FROM sf_stage s WHERE s.kind = 'r' ORDER BY s.jid
        ON CONFLICT DO NOTHING""",
    "t": """
        INSERT INTO salt_jobs AS j (tenant_id, jid, endtime, started_at)
        SELECT DISTINCT ON (s.jid) %(t)s::uuid, s.jid, s.doc::jsonb #>> '{}', to_timestamp(s.t0)
        FROM sf_stage s WHERE s.kind = 't' ORDER BY s.jid, s.ord DESC
        ON CONFLICT (tenant_id, jid) DO UPDATE SET endtime = EXCLUDED.endtime""",
    "e": """
        INSERT INTO salt_bus_events (tenant_id, id, tag, data, master_id, truncated, created_at)
        SELECT %(t)s::uuid, s.jid::uuid, s.name, s.doc::jsonb, s.fun, s.truncated,
               to_timestamp(s.at)
        FROM sf_stage s WHERE s.kind = 'e'
        ON CONFLICT DO NOTHING""",
}
_ORDER = ("l", "L", "m", "r", "t", "e")
# Touching job_id fires the executions trigger (migration 0002), which folds every stored
# return of that jid into the row: one mechanism whether returns or the row come first.
LINK_EXECUTIONS = """
    UPDATE executions SET job_id = job_id
    WHERE tenant_id = %(t)s::uuid
      AND job_id IN (SELECT DISTINCT jid FROM sf_stage WHERE kind = 'r')"""


class Unavailable(Exception):
    """PostgreSQL cannot take the batch now (down, unreachable, misconfigured): retry later."""


class Refused(Exception):
    """PostgreSQL refused the rows themselves: retrying them unchanged can never succeed."""


# Two transactions that wanted the same rows: retried, not a sign of a sick database.
_CONFLICTS = (errors.DeadlockDetected, errors.SerializationFailure, errors.TransactionRollback)
# Errors caused by a row's content, not by the database's state.
_ROW_ERRORS = (errors.DataError, errors.IntegrityError, errors.ProgramLimitExceeded)


def kinds_in(data: bytes) -> set[str]:
    """The record kinds present in a block of COPY rows."""
    found = set()
    for kind in _ORDER:
        marker = kind.encode() + b"\t"
        if data.startswith(marker) or b"\n" + marker in data:
            found.add(kind)
    return found


class PgSink:
    """A dedicated connection that writes batches; reconnects after any failure."""

    def __init__(self, dsn: str, *, connect_timeout: float = 3, link_executions: bool = True,
                 statement_timeout_ms: int = 120_000) -> None:
        self.dsn = dsn
        self.connect_timeout = connect_timeout
        self.link_executions = link_executions
        self.statement_timeout_ms = statement_timeout_ms
        self._conn: psycopg.Connection | None = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(
                self.dsn, connect_timeout=int(max(1, self.connect_timeout)), autocommit=True,
                options=f"-c statement_timeout={self.statement_timeout_ms}",
                application_name=APPLICATION_NAME,
                keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
            conn.execute(_STAGE)
            conn.autocommit = False
            self._conn = conn
        return self._conn

    def write(self, tenant_id: str, data: bytes) -> None:
        """Store a block of COPY rows in one transaction; raise Unavailable or Refused.

        A deadlock or serialization failure (two master processes upserting the same job)
        is retried at once: it says nothing about the database's health.
        """
        for attempt in range(CONFLICT_RETRIES):
            try:
                return self._write(tenant_id, data)
            except _CONFLICTS as exc:
                if attempt == CONFLICT_RETRIES - 1:
                    raise Unavailable(f"{type(exc).__name__}: {_first_line(exc)}") from exc

    def _write(self, tenant_id: str, data: bytes) -> None:
        if not data:
            return
        present = kinds_in(data)
        params = {"t": tenant_id}
        try:
            conn = self._connection()
            with conn.transaction():
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
                with conn.cursor() as cur:
                    with cur.copy(COPY_SQL) as copy:
                        copy.write(data)
                    if present & {"l", "L"}:
                        present.add("m")
                    for kind in _ORDER:
                        if kind in present:
                            for statement in UPSERTS[kind].split(";"):
                                cur.execute(statement, params)
                    if "r" in present and self.link_executions:
                        cur.execute(LINK_EXECUTIONS, params)
        except _ROW_ERRORS as exc:
            raise Refused(_first_line(exc)) from exc
        except _CONFLICTS:
            raise  # the connection is fine; the caller retries
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise Unavailable(str(database_error(exc, self.dsn))) from exc
        except psycopg.Error as exc:  # missing table, privileges: the operator has to act
            self.close()
            raise Unavailable(f"{type(exc).__name__}: {_first_line(exc)} "
                              "(is the schema migrated? `salt-run serverflow.migrate`)") from exc

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a broken connection must never raise
                pass
            self._conn = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
