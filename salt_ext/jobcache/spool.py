"""The durable local spool: append-only COPY rows on the master's disk until PostgreSQL has them.

Layout under the spool root (default ``<cachedir>/serverflow/spool``)::

    w-<created ms>-<pid>-<rand>/   one directory per writing process
        lock                       flock()ed by the owner for its whole life
        meta.json                  tenant the rows belong to
        seg-00000001.copy ...      rows in COPY text format, in arrival order
        ack                        "<segment> <offset>": everything before is in PostgreSQL
    rejected/                      rows PostgreSQL refused (kept for inspection, never retried)

A process that dies (even by ``kill -9``) releases its flock; the first live
process that scans the root claims the directory and replays it in order.
Nothing here deletes unacknowledged rows: when the disk (or ``spool_max_bytes``)
is full, new rows are refused and the oldest are kept.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

Pos = tuple[int, int]  # (segment number, byte offset in it)
_SEG = re.compile(r"^seg-(\d{8})\.copy$")
_ACK_WIDTH = 30
FULL_RETRY_SECONDS = 1.0


def segment_name(number: int) -> str:
    return f"seg-{number:08d}.copy"


def _segments(directory: Path) -> list[int]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for m in map(_SEG.match, names) if m)


def read_ack(directory: Path) -> Pos | None:
    try:
        with open(directory / "ack", "rb") as handle:
            seg, off = handle.read(_ACK_WIDTH).split()
        return int(seg), int(off)
    except (OSError, ValueError):
        return None


def _write_ack(fd: int, pos: Pos) -> None:
    os.pwrite(fd, f"{pos[0]:08d} {pos[1]:020d}\n".encode(), 0)


def read_meta(directory: Path) -> dict:
    try:
        return json.loads((directory / "meta.json").read_text())
    except (OSError, ValueError):
        return {}


def _read_from(directory: Path, pos: Pos, limit: int) -> tuple[bytes, Pos]:
    """Up to ``limit`` bytes of whole rows starting at ``pos``; ``pos`` moves to the next segment
    when this one is exhausted and a later one exists."""
    seg, off = pos
    while True:
        try:
            with open(directory / segment_name(seg), "rb") as handle:
                handle.seek(off)
                data = handle.read(limit)
        except FileNotFoundError:
            data = b""
        cut = data.rfind(b"\n") + 1
        if cut:
            return data[:cut], (seg, off + cut)
        later = [s for s in _segments(directory) if s > seg]
        if not later:
            return b"", (seg, off)
        seg, off = later[0], 0


def pending_bytes(directory: Path, limit: int | None = None) -> Iterator[bytes]:
    """The whole rows of ``directory`` not yet acknowledged, oldest first; with ``limit``
    only the newest ``limit`` bytes of them (a reader during a long outage looks at what
    was just written, not at gigabytes of backlog)."""
    ack = read_ack(directory)
    ranges = []  # (segment, start, end) of unacknowledged bytes
    for seg in _segments(directory):
        if ack is not None and seg < ack[0]:
            continue
        start = ack[1] if ack is not None and seg == ack[0] else 0
        try:
            end = os.stat(directory / segment_name(seg)).st_size
        except FileNotFoundError:
            continue
        if end > start:
            ranges.append([seg, start, end])
    skip = sum(end - start for _, start, end in ranges) - limit if limit else 0
    for seg, start, end in ranges:
        if skip >= end - start:
            skip -= end - start
            continue
        cut, skip = start + max(0, skip), 0
        try:
            with open(directory / segment_name(seg), "rb") as handle:
                aligned = cut == start
                if not aligned:
                    handle.seek(cut - 1)
                    aligned = handle.read(1) == b"\n"
                handle.seek(cut)
                data = handle.read(end - cut)
        except FileNotFoundError:
            continue  # acknowledged and removed meanwhile: the database has it
        if not aligned:  # started inside a row: drop its tail
            data = data[data.find(b"\n") + 1:] if b"\n" in data else b""
        data = data[:data.rfind(b"\n") + 1]
        if data:
            yield data


def writer_dirs(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if p.name.startswith("w-") and p.is_dir())
    except FileNotFoundError:
        return []


class SpoolFull(OSError):
    """Raised inside ``append`` when the cap is reached (handled there)."""


class Spool:
    """This process's spool directory. Not thread-safe: the writer serialises calls."""

    def __init__(self, root: Path, tenant_id: str, *, segment_bytes: int, max_bytes: int,
                 fsync: bool = False) -> None:
        self.root = Path(root)
        self.segment_bytes = int(segment_bytes)
        self.max_bytes = int(max_bytes)
        self.fsync = fsync
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = f"{int(time.time() * 1000):013d}-{os.getpid()}-{secrets.token_hex(3)}"
        staging = self.root / f".new-{stamp}"
        staging.mkdir(mode=0o700)
        self._lock_fd = os.open(staging / "lock", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        (staging / "meta.json").write_text(json.dumps(
            {"tenant_id": tenant_id, "pid": os.getpid(), "created": time.time()}))
        self._ack_fd = os.open(staging / "ack", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        # Claimers only look at "w-*": the directory appears there already locked.
        self.dir = self.root / f"w-{stamp}"
        os.rename(staging, self.dir)
        self.tenant_id = tenant_id
        self._seg = 0
        self._fd = -1
        self._size = 0
        self._starts: dict[int, int] = {}  # segment -> stream offset of its first byte
        self._acked: Pos = (1, 0)
        self._full_until = 0.0
        self._unacked = 0
        self.full_reason = ""
        self._rotate()
        _write_ack(self._ack_fd, self._acked)

    # -- positions ---------------------------------------------------------------
    @property
    def head(self) -> Pos:
        return (self._seg, self._size)

    def _stream(self, pos: Pos) -> int:
        return self._starts.get(pos[0], 0) + pos[1]

    @property
    def unacked_bytes(self) -> int:
        return self._stream(self.head) - self._stream(self._acked)

    # -- writing -------------------------------------------------------------------
    def _rotate(self) -> None:
        start = self._stream(self.head) if self._seg else 0
        self._seg += 1
        fd = os.open(self.dir / segment_name(self._seg),
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd, self._size = fd, 0
        self._starts[self._seg] = start

    def append(self, line: bytes) -> Pos | None:
        """Append one row; its end position, or None when the spool cannot take it."""
        if self._full_until and time.monotonic() < self._full_until:
            return None
        try:
            if self.max_bytes and self._unacked + len(line) > self.max_bytes:
                raise SpoolFull(errno.ENOSPC, f"spool_max_bytes ({self.max_bytes}) reached")
            if self._size >= self.segment_bytes:
                self._rotate()
            written = os.write(self._fd, line)
            if written != len(line):
                os.ftruncate(self._fd, self._size)  # never leave half a row behind
                raise OSError(errno.ENOSPC, "short write (disk full)")
            if self.fsync:
                os.fdatasync(self._fd)
        except OSError as exc:
            self._mark_full(exc, time.monotonic())
            return None
        self._size += written
        self._unacked += written
        if self.full_reason:
            log.warning("serverflow returner: spool %s accepts rows again", self.dir)
            self.full_reason = ""
            self._full_until = 0.0
        return self.head

    def _mark_full(self, exc: OSError, now: float) -> None:
        reason = exc.strerror or str(exc)
        try:  # a failed write may still have left bytes behind
            if os.fstat(self._fd).st_size != self._size:
                os.ftruncate(self._fd, self._size)
        except OSError:
            pass
        if reason != self.full_reason:
            log.critical("serverflow returner: spool %s is full (%s): keeping the %d oldest "
                         "unflushed bytes; new records wait in memory or are dropped",
                         self.dir, reason, self.unacked_bytes)
        self.full_reason = reason
        self._full_until = now + FULL_RETRY_SECONDS

    # -- acknowledging -------------------------------------------------------------------
    def ack(self, pos: Pos) -> None:
        """Everything before ``pos`` is in PostgreSQL: record it and drop finished segments."""
        if self._stream(pos) <= self._stream(self._acked):
            return
        self._acked = pos
        if pos == self.head and self._size >= min(self.segment_bytes, 1 << 20):
            self._rotate()  # start afresh so the finished segment can go
            self._acked = self.head
        self._unacked = self.unacked_bytes
        _write_ack(self._ack_fd, self._acked)
        for seg in [s for s in self._starts if s < self._acked[0]]:
            try:
                os.unlink(self.dir / segment_name(seg))
            except FileNotFoundError:
                pass
            del self._starts[seg]
        if self._full_until and self.full_reason.startswith("spool_max_bytes"):
            self._full_until = 0.0  # the cap has room again

    def read(self, pos: Pos, limit: int) -> tuple[bytes, Pos]:
        """Whole rows from ``pos`` (for the flusher catching up from disk)."""
        return _read_from(self.dir, pos, limit)

    def close(self) -> None:
        """Release the directory; it is removed when nothing in it is unacknowledged."""
        for fd in (self._fd, self._ack_fd):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.unacked_bytes == 0:
            shutil.rmtree(self.dir, ignore_errors=True)
        try:
            os.close(self._lock_fd)
        except OSError:
            pass

    def abandon(self) -> None:
        """In a forked child: drop the inherited descriptors without touching the parent's files."""
        for fd in (self._fd, self._ack_fd, self._lock_fd):
            try:
                os.close(fd)
            except OSError:
                pass


@dataclass
class Orphan:
    """A dead process's spool directory, locked by us while we replay it."""

    dir: Path
    tenant_id: str
    lock_fd: int
    pos: Pos

    def chunks(self, limit: int) -> Iterator[tuple[bytes, Pos]]:
        """Blocks of whole rows from the acknowledged position on, with where each ends."""
        pos = self.pos
        while True:
            data, pos = _read_from(self.dir, pos, limit)
            if not data:
                return
            yield data, pos

    def ack(self, pos: Pos) -> None:
        self.pos = pos
        fd = os.open(self.dir / "ack", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        try:
            _write_ack(fd, pos)
        finally:
            os.close(fd)
        for seg in _segments(self.dir):
            if seg < pos[0]:
                (self.dir / segment_name(seg)).unlink(missing_ok=True)

    def finish(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.release()

    def release(self) -> None:
        try:
            os.close(self.lock_fd)
        except OSError:
            pass


def claim_orphan(directory: Path) -> Orphan | None:
    """Lock a spool directory whose owner is gone; None when its owner is alive."""
    try:
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    if not directory.exists():  # replayed and removed by someone else meanwhile
        os.close(fd)
        return None
    segments = _segments(directory)
    pos = read_ack(directory)
    if segments and (pos is None or pos[0] < segments[0]):
        pos = (segments[0], 0)
    return Orphan(directory, str(read_meta(directory).get("tenant_id") or ""), fd,
                  pos or (1, 0))


def reject(root: Path, data: bytes, reason: str) -> Path | None:
    """Keep rows PostgreSQL refused, with the reason, under ``rejected/``."""
    target = Path(root) / "rejected"
    try:
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = target / f"{int(time.time() * 1000)}-{os.getpid()}-{secrets.token_hex(3)}.copy"
        path.write_bytes(f"-- {reason}\n".encode("utf-8", "replace") + data)
        return path
    except OSError as exc:
        log.critical("serverflow returner: cannot keep %d refused bytes (%s): %s",
                     len(data), reason, exc)
        return None
