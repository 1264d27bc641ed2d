"""The job-cache contract for one process: what ``_returners/serverflow.py`` calls.

One ``JobCache`` per process and configuration (``JobCache.for_opts``). Writes
(``returner``, ``save_load``, ``save_minions``, ``update_endtime``,
``event_return``) only build a COPY row and hand it to the process's writer;
they never wait for PostgreSQL and never raise into Salt. Reads merge
PostgreSQL with the unflushed spool.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import psycopg

from salt_ext.config import load_settings
from salt_ext.engine.inventory_service import describe
from salt_ext.errors import ServerFlowError
from salt_ext.jobcache import records, retention
from salt_ext.jobcache.jids import NocacheMarks, allocate
from salt_ext.jobcache.queries import JobReader
from salt_ext.jobcache.records import BadRecord, TagFilter
from salt_ext.jobcache.sink import PgSink
from salt_ext.jobcache.spool import Spool
from salt_ext.jobcache.writer import Writer, WriterConfig, spool_root

log = logging.getLogger(__name__)
_DERIVED_MEMORY = 4096


@dataclass(frozen=True)
class ReturnerSettings:
    """Everything the returner reads from the Salt opts (``serverflow:`` and Salt's own keys)."""

    tenant_id: str
    dsn: str
    connect_timeout: float
    cachedir: Path
    spool_root: Path
    batch_size: int
    flush_interval: float
    buffer_max: int
    spool_segment_bytes: int
    spool_max_bytes: int
    spool_fsync: bool
    max_return_bytes: int
    exit_flush_timeout: float
    retry_max: float
    clean_batch: int
    clean_budget: float
    archive: bool
    keep_jobs_seconds: float
    keep_events_seconds: float
    event_tags_allow: tuple[str, ...]
    event_tags_deny: tuple[str, ...]
    link_executions: bool
    store_endtime: bool
    unique_jid: bool
    master_id: str

    @classmethod
    def from_opts(cls, opts: Mapping[str, Any]) -> "ReturnerSettings":
        settings = load_settings(opts)
        ret = settings["returner"]
        cachedir = str(opts.get("cachedir") or ".")
        keep_jobs = float(opts.get("keep_jobs_seconds", 86400) or 0)
        keep_events = ret.get("keep_events_seconds")
        return cls(
            tenant_id=str(settings["tenant_id"]),
            dsn=settings["database"]["url"],
            connect_timeout=float(settings["database"]["connect_timeout"]),
            cachedir=Path(cachedir),
            spool_root=spool_root(cachedir, ret.get("spool_dir")),
            batch_size=max(1, int(ret["batch_size"])),
            flush_interval=max(0.0, float(ret["flush_interval"])),
            buffer_max=max(1, int(ret["buffer_max"])),
            spool_segment_bytes=max(4096, int(ret["spool_segment_bytes"])),
            spool_max_bytes=max(0, int(ret["spool_max_bytes"] or 0)),
            spool_fsync=bool(ret["spool_fsync"]),
            max_return_bytes=max(0, int(ret["max_return_bytes"] or 0)),
            exit_flush_timeout=max(0.0, float(ret["exit_flush_timeout"])),
            retry_max=max(0.5, float(ret["retry_max"])),
            clean_batch=max(1, int(ret["clean_batch"])),
            clean_budget=max(0.1, float(ret["clean_budget"])),
            archive=bool(ret["archive"]),
            keep_jobs_seconds=keep_jobs,
            keep_events_seconds=keep_jobs if keep_events is None else float(keep_events),
            event_tags_allow=tuple(ret.get("event_tags_allow") or ()),
            event_tags_deny=tuple(ret.get("event_tags_deny") or ()),
            link_executions=bool(ret["link_executions"]),
            store_endtime=bool(opts.get("job_cache_store_endtime")),
            unique_jid=bool(opts.get("unique_jid")),
            master_id=str(opts.get("id") or ""),
        )

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.dsn, self.tenant_id, str(self.spool_root))


class JobCache:
    """The contract's verbs for one configuration in this process (see the module docstring)."""

    _registry: dict[tuple[str, str, str], "JobCache"] = {}
    _by_opts: dict[int, tuple[Mapping[str, Any], "JobCache"]] = {}
    _registry_pid = os.getpid()
    _registry_lock = threading.Lock()

    def __init__(self, settings: ReturnerSettings) -> None:
        self.settings = settings
        self.nocache = NocacheMarks(settings.cachedir / "serverflow" / "nocache")
        self.tags = TagFilter(settings.event_tags_allow, settings.event_tags_deny)
        self.bad_records = 0
        self._derived: dict[str, None] = {}
        self._nocache_seen: dict[Any, bool] = {}
        self._lock = threading.Lock()
        self._writer: Writer | None = None
        self._reader: JobReader | None = None

    # -- one per process and configuration ---------------------------------------------
    @classmethod
    def for_opts(cls, opts: Mapping[str, Any]) -> "JobCache":
        """The JobCache of this process for ``opts`` (a loader's ``__opts__``: looked up by
        identity first, so the hot path does not re-read the settings on every call)."""
        known = cls._by_opts.get(id(opts))  # emptied in forked children (register_at_fork)
        if known is not None and known[0] is opts:
            return known[1]
        settings = ReturnerSettings.from_opts(opts)
        with cls._registry_lock:
            if cls._registry_pid != os.getpid():
                cls._after_fork()
            found = cls._registry.get(settings.key)
            if found is None or found.settings != settings:
                found = cls._registry[settings.key] = cls(settings)
            cls._by_opts[id(opts)] = (opts, found)
            return found

    @classmethod
    def _after_fork(cls) -> None:
        """In a forked child: forget the parent's writers (their files stay the parent's)."""
        for cache in cls._registry.values():
            if cache._writer is not None:
                cache._writer.spool.abandon()
        cls._registry = {}
        cls._by_opts = {}
        cls._registry_pid = os.getpid()
        cls._registry_lock = threading.Lock()

    @property
    def writer(self) -> Writer:
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    self._writer = self._make_writer()
        return self._writer

    def _make_writer(self) -> Writer:
        s = self.settings
        spool = Spool(s.spool_root, s.tenant_id, segment_bytes=s.spool_segment_bytes,
                      max_bytes=s.spool_max_bytes, fsync=s.spool_fsync)
        sink = PgSink(s.dsn, connect_timeout=s.connect_timeout, link_executions=s.link_executions)
        writer = Writer(spool, sink, WriterConfig(
            batch_size=s.batch_size, flush_interval=s.flush_interval, buffer_max=s.buffer_max,
            retry_max=s.retry_max, exit_flush_timeout=s.exit_flush_timeout))
        pid = os.getpid()
        closed: list[bool] = []

        def at_exit() -> None:
            if os.getpid() == pid and self._writer is writer and not closed:
                closed.append(True)
                writer.close()
                sink.close()

        atexit.register(at_exit)
        # multiprocessing children (Salt's master processes) skip atexit but run these.
        multiprocessing.util.Finalize(writer, at_exit, exitpriority=10)
        return writer

    @property
    def reader(self) -> JobReader:
        if self._reader is None:
            with self._lock:
                if self._reader is None:
                    s = self.settings
                    self._reader = JobReader(s.dsn, s.tenant_id, s.spool_root,
                                             connect_timeout=s.connect_timeout)
        return self._reader

    # -- writes (never raise into Salt) --------------------------------------------------
    def _bad(self, exc: Exception, what: str) -> None:
        self.bad_records += 1
        log.error("serverflow returner: %s not stored: %s (%d refused so far)", what, exc,
                  self.bad_records)

    def _nocache_job(self, jid: Any) -> bool:
        """Is ``jid`` marked nocache? One ``stat`` per job and process, not per return: the
        mark is made by prep_jid before the job is published, so it never appears later."""
        try:
            return self._nocache_seen[jid]
        except KeyError:
            pass
        except TypeError:  # unhashable: return_row refuses it with the reason
            return False
        marked = isinstance(jid, (str, int)) and self.nocache.marked(str(jid))
        if len(self._nocache_seen) >= _DERIVED_MEMORY:
            self._nocache_seen.clear()
        self._nocache_seen[jid] = marked
        return marked

    def prep_jid(self, nocache: bool = False, passed_jid: Any = None) -> str:
        """A new unique jid (or the caller's, checked); ``nocache`` marks it for no returns."""
        if passed_jid is None or passed_jid == "":
            jid = allocate(self.settings.cachedir / "serverflow" / "last_jid",
                           suffix=str(os.getpid()) if self.settings.unique_jid else None)
        else:  # Salt passes every return's jid through here: checked once per jid (cached)
            records.jid_columns(passed_jid)
            jid = passed_jid if isinstance(passed_jid, str) else str(passed_jid)
        if nocache:
            self.nocache.mark(jid)
        return jid

    def returner(self, load: Mapping[str, Any]) -> None:
        try:
            if load.get("jid") == "req":  # a minion-initiated job without a jid yet
                load = {**load, "jid": self.prep_jid(nocache=bool(load.get("nocache")))}
            if self._nocache_job(load.get("jid")):
                return
            self.writer.submit(records.return_row(load, self.settings.max_return_bytes))
        except BadRecord as exc:
            self._bad(exc, f"return from {str(load.get('id'))[:80]!r}")
        except Exception:  # never fail a job because of the cache
            log.exception("serverflow returner: return from %r not stored", load.get("id"))

    def save_load(self, jid: Any, load: Mapping[str, Any],
                  minions: Iterable[Any] | None = None) -> None:
        try:
            if "return" in load and "id" in load:
                # Salt hands every return to save_load too: it only counts for jobs whose
                # publish load never reached us (minion-initiated jobs, other masters).
                key = str(jid)
                if key in self._derived:
                    return
                if len(self._derived) >= _DERIVED_MEMORY:
                    self._derived.clear()
                self._derived[key] = None
                if minions is None and load.get("tgt") == load.get("id"):
                    minions = [load["id"]]
                row = records.load_row(jid, load, minions, self.settings.max_return_bytes,
                                       derived=True)
            else:
                row = records.load_row(jid, load, minions, self.settings.max_return_bytes)
            self.writer.submit(row)
        except BadRecord as exc:
            self._bad(exc, "job load")
        except Exception:
            log.exception("serverflow returner: load of job %r not stored", jid)

    def save_minions(self, jid: Any, minions: Iterable[Any], syndic_id: Any = None) -> None:
        try:
            self.writer.submit(records.minions_row(jid, minions, syndic_id))
        except BadRecord as exc:
            self._bad(exc, "minion list")

    def update_endtime(self, jid: Any, endtime: Any) -> None:
        try:
            self.writer.submit(records.endtime_row(jid, endtime))
        except BadRecord as exc:
            self._bad(exc, "end time")

    def event_return(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Queue the events whose tags pass the allow/deny lists; how many were queued."""
        queued = 0
        limit = self.settings.max_return_bytes
        for event in events:
            try:
                tag = event.get("tag")
                if not isinstance(tag, str) or not tag or not self.tags(tag):
                    continue
                self.writer.submit(records.event_row(tag, event.get("data"),
                                                     self.settings.master_id, limit))
                queued += 1
            except Exception:
                log.exception("serverflow returner: event not stored")
        return queued

    # -- reads ---------------------------------------------------------------------------
    def get_load(self, jid: Any) -> dict[str, Any]:
        load, minions = self.reader.load(str(jid))
        if not load:
            return {}
        if minions:
            load["Minions"] = minions
        return load

    def get_jid(self, jid: Any) -> dict[str, dict[str, Any]]:
        return self.reader.returns(str(jid))

    def jobs(self, count: int | None = None, skip_find_job: bool = False):
        return self.reader.jobs(count=count, skip_find_job=skip_find_job,
                                with_endtime=self.settings.store_endtime)

    def get_endtime(self, jid: Any) -> str | bool:
        return self.reader.endtime(str(jid)) or False

    def get_fun(self, fun: str) -> dict[str, dict[str, Any]]:
        return self.reader.last_by_function(str(fun))

    def get_minions(self) -> list[str]:
        return self.reader.minion_ids()

    # -- retention -----------------------------------------------------------------------
    def clean_old_jobs(self) -> retention.CleanResult:
        """Expire old rows (batched) and make sure spools of dead processes get replayed."""
        self.writer.wake()
        s = self.settings
        try:
            with self.reader.connection() as conn:
                result = retention.clean(conn, s.tenant_id, keep_jobs_seconds=s.keep_jobs_seconds,
                                         keep_events_seconds=s.keep_events_seconds,
                                         batch=s.clean_batch, budget=s.clean_budget,
                                         archive=s.archive)
        except (ServerFlowError, psycopg.Error) as exc:  # Maintenance must keep running
            log.warning("serverflow job cache: old jobs not cleaned this time: %s", describe(exc))
            result = retention.CleanResult(finished=False)
        if s.keep_jobs_seconds > 0:
            self.nocache.expire(s.keep_jobs_seconds)
        return result

    def close(self, timeout: float = 2.0) -> None:
        """Flush for up to ``timeout`` s and release everything (tests, tools; exit does it too)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close(timeout)
            writer.sink.close()
        if self._reader is not None:
            self._reader.close()

    def flush(self, timeout: float) -> bool:
        """Wait until this process's records are in PostgreSQL (tests, tools)."""
        return self._writer.flush(timeout) if self._writer is not None else True


def _forget_after_fork() -> None:
    # The child has one thread: no lock to take (the parent's may be held forever).
    if JobCache._registry_pid != os.getpid():
        JobCache._after_fork()


os.register_at_fork(after_in_child=_forget_after_fork)
