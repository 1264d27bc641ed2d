"""Job ids without a database round trip: unique across every process of one master.

Salt's jid is the UTC time to the microsecond. Two master workers can publish in
the same microsecond; local_cache resolves that with a directory per jid. Here a
small state file under the cachedir, locked with ``lockf`` (never blocking for
long), remembers the last jid handed out and the next one is always later.

``nocache`` jobs (returns must not be stored) are marked with an empty file, as
local_cache does, so every worker process can check them with one ``stat``.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import logging
import os
import re
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)
_FORMAT = "%Y%m%d%H%M%S%f"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,200}$")


def _after(last: str, now: datetime.datetime) -> str:
    candidate = now.strftime(_FORMAT)
    if candidate > last[:20] or len(last) < 20:
        return candidate
    try:
        previous = datetime.datetime.strptime(last[:20], _FORMAT)
    except ValueError:
        return candidate
    return (previous + datetime.timedelta(microseconds=1)).strftime(_FORMAT)


# POSIX record locks (lockf) exclude processes, not threads, and are not inherited by a
# forked child (a flock held across a fork in another thread would outlive its holder).
_THREADS = threading.Lock()
LOCK_WAIT = 0.5


def _forked() -> None:
    global _THREADS
    _THREADS = threading.Lock()  # a lock held by another thread at fork time is gone with it


os.register_at_fork(after_in_child=_forked)


def _lock(fd: int) -> bool:
    """Take the state file's lock; give up (False) after ``LOCK_WAIT`` s rather than block."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            if time.monotonic() > deadline:
                log.warning("serverflow returner: jid state file is locked by a stuck process; "
                            "allocating from the clock alone")
                return False
            time.sleep(0.0005)


def allocate(state_file: Path, now: datetime.datetime | None = None,
             suffix: str | None = None) -> str:
    """A new jid later than every jid this master handed out (``suffix``: Salt's unique_jid)."""
    with _THREADS:
        if not state_file.parent.is_dir():
            state_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(state_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            locked = _lock(fd)
            last = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            jid = _after(last, now or datetime.datetime.now(tz=datetime.timezone.utc))
            if locked:
                os.pwrite(fd, jid.encode().ljust(32, b" "), 0)
        finally:
            os.close(fd)  # closing releases the lock
    return f"{jid}_{suffix}" if suffix else jid


class NocacheMarks:
    """Empty files naming the jids whose returns must not be stored."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @staticmethod
    def _name(jid: str) -> str:
        """The file name for ``jid``: itself when harmless, else a digest (no path tricks)."""
        return jid if _SAFE_NAME.match(jid) else hashlib.sha256(jid.encode()).hexdigest()

    def mark(self, jid: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / self._name(jid)).touch()

    def marked(self, jid: str) -> bool:
        return os.path.exists(os.path.join(self.directory, self._name(jid)))

    def expire(self, older_than: float) -> int:
        """Remove marks older than ``older_than`` seconds; how many were removed."""
        removed = 0
        cutoff = time.time() - older_than
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if entry.stat().st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                pass
        return removed
