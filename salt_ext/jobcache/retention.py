"""``clean_old_jobs``: expire jobs, their returns and events in small transactions.

Each statement touches at most ``batch`` rows and commits, so the master's
writes never wait behind a long lock; one call stops after ``budget`` seconds
and the next Maintenance loop carries on. With ``archive`` the rows move to the
``*_archive`` tables in the same statement (``DELETE ... RETURNING`` feeding an
``INSERT``), so nothing is ever in neither table.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass

import psycopg

_JOBS = ("SELECT jid FROM salt_jobs WHERE tenant_id = %(t)s AND started_at < %(cutoff)s "
         "ORDER BY started_at LIMIT %(jobs)s")
_RETURNS_OF = ("SELECT ctid FROM salt_job_returns WHERE tenant_id = %(t)s AND jid = ANY(%(jids)s) "
               "LIMIT %(batch)s")
_EVENTS = ("SELECT ctid FROM salt_bus_events WHERE tenant_id = %(t)s AND created_at < %(cutoff)s "
           "ORDER BY created_at LIMIT %(batch)s")


def _delete(table: str, where: str, archive: bool) -> str:
    delete = f"DELETE FROM {table} WHERE {where}"
    if not archive:
        return delete
    return (f"WITH moved AS ({delete} RETURNING *) "
            f"INSERT INTO {table}_archive SELECT * FROM moved ON CONFLICT DO NOTHING")


@dataclass
class CleanResult:
    jobs: int = 0
    returns: int = 0
    events: int = 0
    finished: bool = True
    seconds: float = 0.0


def clean(conn: psycopg.Connection, tenant_id: str, *, keep_jobs_seconds: float,
          keep_events_seconds: float, batch: int = 5000, budget: float = 3.0,
          archive: bool = False) -> CleanResult:
    """Expire what is older than the retention; ``finished`` is False when the budget ran out.

    ``conn`` is in autocommit mode with the tenant set: every statement commits on its own.
    """
    started = time.monotonic()
    result = CleanResult()
    now = time.time()
    jobs_per_round = max(1, batch // 10)

    def out_of_time() -> bool:
        return time.monotonic() - started > budget

    if keep_jobs_seconds > 0:
        params = {"t": tenant_id, "cutoff": _ts(now - keep_jobs_seconds), "jobs": jobs_per_round,
                  "batch": batch}
        while True:
            if out_of_time():
                result.finished = False
                break
            jids = [r["jid"] for r in conn.execute(_JOBS, params)]
            if not jids:
                break
            params["jids"] = jids
            while True:  # returns of these jobs, batch rows per transaction
                moved = conn.execute(_delete(
                    "salt_job_returns", f"ctid = ANY(ARRAY({_RETURNS_OF}))", archive),
                    params).rowcount
                result.returns += moved
                if moved < batch or out_of_time():
                    break
            if out_of_time():
                result.finished = False
                break
            result.jobs += conn.execute(_delete(
                "salt_jobs", "tenant_id = %(t)s AND jid = ANY(%(jids)s)", archive),
                params).rowcount
    if keep_events_seconds > 0 and result.finished:
        params = {"t": tenant_id, "cutoff": _ts(now - keep_events_seconds), "batch": batch}
        while True:
            if out_of_time():
                result.finished = False
                break
            moved = conn.execute(_delete(
                "salt_bus_events", f"ctid = ANY(ARRAY({_EVENTS}))", archive), params).rowcount
            result.events += moved
            if moved < batch:
                break
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _ts(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.timezone.utc)
