"""The write-behind path of one process: spool first, memory buffer, batched flushes.

``submit`` is what ``returner()`` and friends call on the master's hot path: it
appends one COPY row to this process's spool file (a ``write`` to the page
cache, so a killed process loses nothing it acknowledged) and keeps the row in a
bounded memory buffer. A background thread flushes the buffer to PostgreSQL by
size (``batch_size``) or age (``flush_interval``). When PostgreSQL is slow or
down the buffer fills, new rows stay on disk only, and the thread later reads
them back from the spool in order. Spools of dead processes are replayed too.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from salt_ext.engine.inventory_service import Backoff
from salt_ext.jobcache import spool as spools
from salt_ext.jobcache.sink import PgSink, Refused, Unavailable
from salt_ext.jobcache.spool import Pos, Spool

log = logging.getLogger(__name__)
_LOUD_EVERY = 60.0


@dataclass(frozen=True)
class WriterConfig:
    batch_size: int = 2000
    flush_interval: float = 0.2
    buffer_max: int = 50_000
    max_batch_bytes: int = 8 << 20
    retry_min: float = 0.5
    retry_max: float = 5.0
    orphan_scan_interval: float = 10.0
    exit_flush_timeout: float = 3.0


class Writer:
    """Spool + buffer + flusher thread for one process (see the module docstring)."""

    def __init__(self, spool: Spool, sink: PgSink, config: WriterConfig,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.spool = spool
        self.sink = sink
        self.config = config
        self._clock = clock
        self._cv = threading.Condition(threading.Lock())
        self._mem: list[bytes] = []
        self._mem_pos: list[Pos | None] = []
        self._first_at: float | None = None
        self._backlog = False
        self._cursor: Pos = spool.head  # spool rows before it are in memory or stored
        self._stalls = 0
        self._urgent = False
        self._inflight = False
        self._stop_at: float | None = None
        self._retry_at = 0.0
        self._backoff = Backoff(config.retry_min, config.retry_max)
        self._thread: threading.Thread | None = None
        self._down_since: float | None = None
        self._last_loud: dict[str, float] = {}
        self._next_orphan_scan = 0.0
        self.stats = {"submitted": 0, "stored": 0, "dropped": 0, "rejected": 0,
                      "replayed": 0, "batches": 0, "last_error": ""}

    # -- hot path ------------------------------------------------------------------
    def submit(self, line: bytes) -> bool:
        """Queue one row; False (and a loud log) only when neither disk nor memory can keep it."""
        with self._cv:
            self.stats["submitted"] += 1
            pos = self.spool.append(line)
            if not self._backlog and len(self._mem) < self.config.buffer_max:
                self._mem.append(line)
                self._mem_pos.append(pos)
                if pos is not None:
                    self._cursor = pos
                if self._first_at is None:
                    self._first_at = self._clock()
                if len(self._mem) == self.config.batch_size:  # wake the flusher once
                    self._cv.notify()
            elif pos is not None:
                if not self._backlog:
                    self._backlog = True
                    self._cv.notify()
            else:
                self.stats["dropped"] += 1
                self._loud("dropped", "serverflow returner: DROPPED a record: the spool is full "
                           "(%s) and %d records already wait in memory; %d dropped so far",
                           self.spool.full_reason, len(self._mem), self.stats["dropped"])
                return False
        if self._thread is None:
            self._start()
        return True

    def _loud(self, key: str, message: str, *args: object) -> None:
        """A CRITICAL line, at most once a minute per ``key``."""
        now = self._clock()
        if now - self._last_loud.get(key, -_LOUD_EVERY) >= _LOUD_EVERY:
            self._last_loud[key] = now
            log.critical(message, *args)

    # -- flusher ---------------------------------------------------------------------
    def _start(self) -> None:
        with self._cv:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="serverflow-returner",
                                                daemon=True)
                self._thread.start()

    def _due(self, now: float) -> bool:
        if now < self._retry_at and self._stop_at is None:
            return False
        if self._mem:
            return (self._urgent or self._stop_at is not None
                    or len(self._mem) >= self.config.batch_size
                    or now - (self._first_at or now) >= self.config.flush_interval)
        return self._backlog

    def _wait_for(self, now: float) -> float:
        if now < self._retry_at:
            return self._retry_at - now
        if self._mem and self._first_at is not None:
            return max(0.0, self.config.flush_interval - (now - self._first_at))
        return max(0.0, min(self.config.orphan_scan_interval, self._next_orphan_scan - now)) or 1.0

    def _run(self) -> None:
        while True:
            try:
                if not self._step():
                    return
            except Exception:  # the flusher must outlive any surprise
                log.exception("serverflow returner: flusher error (retrying)")
                time.sleep(self.config.retry_min)

    def _step(self) -> bool:
        """One unit of work; False when the writer is closed and done."""
        now = self._clock()
        if now >= self._next_orphan_scan and self._stop_at is None and now >= self._retry_at:
            self._next_orphan_scan = now + self.config.orphan_scan_interval
            self.replay_orphans()
        with self._cv:
            while not self._due(self._clock()):
                if self._stop_at is not None and (not self._mem and not self._backlog
                                                  or self._clock() >= self._stop_at):
                    self._cv.notify_all()
                    return False
                self._cv.wait(self._wait_for(self._clock()))
                if self._clock() >= self._next_orphan_scan and self._stop_at is None:
                    return True
            if self._stop_at is not None and self._clock() >= self._stop_at:
                return False
            self._inflight = True
            count, start, end = self._take()
            data = b"".join(self._mem[:count])
        if start is not None:
            data, end = self.spool.read(start, self.config.max_batch_bytes)
            if not data:
                self._caught_up(start, end)
                return True
        stored = self._deliver(self.spool.tenant_id, data)
        with self._cv:
            self._inflight = False
            if stored:
                if count:
                    del self._mem[:count]
                    del self._mem_pos[:count]
                    self._first_at = self._clock() if self._mem else None
                else:
                    self._cursor = end  # type: ignore[assignment]
                    self.stats["replayed"] += data.count(b"\n")
                if end is not None:
                    self.spool.ack(end)
                self.stats["stored"] += data.count(b"\n")
                self.stats["batches"] += 1
                self._urgent = self._urgent and bool(self._mem or self._backlog)
            self._cv.notify_all()
        # A writer that is closing gives up at the first failure: the spool keeps the rest.
        return stored or self._stop_at is None

    def _take(self) -> tuple[int, Pos | None, Pos | None]:
        """Under the lock: (rows from memory, spool start, spool end) of the next batch."""
        if not self._mem:
            return 0, self._cursor, None
        count, size = 0, 0
        for line in self._mem:
            if count and (count >= 4 * self.config.batch_size
                          or size + len(line) > self.config.max_batch_bytes):
                break
            count += 1
            size += len(line)
        end = next((p for p in reversed(self._mem_pos[:count]) if p is not None), None)
        return count, None, end

    def _caught_up(self, start: Pos, end: Pos) -> None:
        """The spool read found nothing past ``start``: back to memory mode once at the head."""
        with self._cv:
            self._inflight = False
            self._cursor = end
            if end == self.spool.head:
                self._backlog = False
                self._stalls = 0
            elif start == end:
                # A row being written right now, or a segment removed behind our back.
                self._stalls += 1
                if self._stalls > 1000:
                    log.error("serverflow returner: spool %s does not match its head %s; "
                              "resynchronising", self.spool.dir, self.spool.head)
                    self._cursor = self.spool.head
                    self._backlog = False
                    self._stalls = 0
            self._cv.notify_all()

    def _deliver(self, tenant_id: str, data: bytes) -> bool:
        """Store ``data`` (rows PostgreSQL refuses are set aside); False: retry later."""
        try:
            self._store(tenant_id, data)
        except Unavailable as exc:
            self._unavailable(str(exc))
            return False
        self._available()
        return True

    def _store(self, tenant_id: str, data: bytes) -> None:
        try:
            self.sink.write(tenant_id, data)
        except Refused as exc:
            lines = data.splitlines(keepends=True)
            if len(lines) == 1:
                self.stats["rejected"] += 1
                kept = spools.reject(self.spool.root, data, str(exc))
                log.error("serverflow returner: PostgreSQL refused a record (%s); kept in %s",
                          exc, kept)
                return
            half = len(lines) // 2  # find the bad rows; the good ones are stored
            self._store(tenant_id, b"".join(lines[:half]))
            self._store(tenant_id, b"".join(lines[half:]))

    def _unavailable(self, reason: str) -> None:
        now = self._clock()
        delay = self._backoff.failed(now)
        with self._cv:
            self._retry_at = now + delay
        self.stats["last_error"] = reason
        if self._down_since is None:
            self._down_since = now
            self._last_loud["down"] = now
            log.error("serverflow returner: %s; records wait in the spool %s and are retried "
                      "every %.1f-%.0fs", reason, self.spool.dir, self.config.retry_min,
                      self.config.retry_max)
        else:
            self._loud("down", "serverflow returner: PostgreSQL still unavailable after %.0fs "
                       "(%s); %d bytes wait in the spool %s", now - self._down_since, reason,
                       self.spool.unacked_bytes, self.spool.dir)

    def _available(self) -> None:
        if self._down_since is not None:
            log.warning("serverflow returner: PostgreSQL is back after %.0fs; replaying the spool",
                        self._clock() - self._down_since)
            self._down_since = None
        self._backoff.succeeded()
        self._retry_at = 0.0

    # -- spools of dead processes --------------------------------------------------
    def replay_orphans(self) -> int:
        """Replay (then remove) every spool directory whose owner is gone; rows replayed."""
        replayed = 0
        for directory in spools.writer_dirs(self.spool.root):
            if directory == self.spool.dir:
                continue
            orphan = spools.claim_orphan(directory)
            if orphan is None:
                continue
            try:
                tenant = orphan.tenant_id or self.spool.tenant_id
                for data, nxt in orphan.chunks(self.config.max_batch_bytes):
                    if not self._deliver(tenant, data):
                        return replayed  # database down: the next scan resumes from the ack
                    orphan.ack(nxt)
                    replayed += data.count(b"\n")
                orphan.finish()
                log.warning("serverflow returner: replayed the spool of a stopped process (%s)",
                            directory.name)
            finally:
                orphan.release()
        with self._cv:
            self.stats["replayed"] += replayed
        return replayed

    def wake(self) -> None:
        """Start the flusher if needed and have it look for spools of dead processes now."""
        with self._cv:
            self._next_orphan_scan = 0.0
            self._cv.notify_all()
        if self._thread is None:
            self._start()

    # -- waiting and closing ---------------------------------------------------------
    def idle(self) -> bool:
        with self._cv:
            return not self._mem and not self._backlog and not self._inflight

    def flush(self, timeout: float) -> bool:
        """Ask for an immediate flush and wait up to ``timeout`` s; True when all is stored."""
        deadline = self._clock() + timeout
        with self._cv:
            if not self._mem and not self._backlog and not self._inflight:
                return True
            self._urgent = True
            self._cv.notify_all()
        if self._thread is None:
            self._start()
        with self._cv:
            while self._mem or self._backlog or self._inflight:
                left = deadline - self._clock()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.05))
            return True

    def close(self, timeout: float | None = None) -> bool:
        """Flush for at most ``timeout`` s, stop the thread, release the spool (kept if
        anything is unflushed)."""
        budget = self.config.exit_flush_timeout if timeout is None else timeout
        with self._cv:
            self._stop_at = self._clock() + budget
            self._retry_at = 0.0
            self._cv.notify_all()
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(budget + 1.0)
        done = self.idle()
        if not done:
            log.warning("serverflow returner: exiting with %d unflushed bytes kept in %s "
                        "(replayed by the next process)", self.spool.unacked_bytes, self.spool.dir)
        self.spool.close()
        return done


def spool_root(cachedir: str, configured: str | None) -> Path:
    return Path(configured) if configured else Path(cachedir) / "serverflow" / "spool"
