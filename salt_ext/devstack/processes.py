"""Start daemons detached, remember their pids, stop them by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Sequence

_CHILDREN: dict[int, subprocess.Popen] = {}


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def pid_file(run_dir: Path, name: str) -> Path:
    return run_dir / f"{name}.pid"


def record(run_dir: Path, name: str, pid: int) -> None:
    """Write ``pid starttime`` so a recycled pid is never mistaken for our process."""
    run_dir.mkdir(parents=True, exist_ok=True)
    pid_file(run_dir, name).write_text(f"{pid} {_start_time(pid) or ''}\n")


def running(run_dir: Path, name: str) -> int | None:
    """The pid of ``name`` if it is still the process we started, else None."""
    try:
        fields = pid_file(run_dir, name).read_text().split()
        pid = int(fields[0])
    except (OSError, ValueError, IndexError):
        return None
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        return None
    started = _start_time(pid)
    if started is None or (len(fields) > 1 and fields[1] != started):
        return None
    try:
        with open(f"/proc/{pid}/stat") as handle:
            if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                return None
    except OSError:
        return None
    return pid


def spawn(run_dir: Path, log_dir: Path, name: str, argv: Sequence[str],
          env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    """Start ``argv`` in its own session with output to ``<log_dir>/<name>.out``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{name}.out", "ab") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, **(env or {})}, cwd=cwd)
    _CHILDREN[proc.pid] = proc
    record(run_dir, name, proc.pid)
    return proc.pid


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop(run_dir: Path, name: str, timeout: float = 20.0, sig: int = signal.SIGTERM) -> bool:
    """Signal the process group of ``name`` and wait; SIGKILL after ``timeout``."""
    pid = running(run_dir, name)
    if pid is None:
        pid_file(run_dir, name).unlink(missing_ok=True)
        return False
    for s in (sig, signal.SIGKILL):
        try:
            os.killpg(pid, s)
        except ProcessLookupError:
            break
        except PermissionError:
            os.kill(pid, s)
        deadline = time.monotonic() + (timeout if s == sig else 5)
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        if not _alive(pid):
            break
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait(timeout=5)
    pid_file(run_dir, name).unlink(missing_ok=True)
    return True


def wait_port(port: int, timeout: float, host: str = "127.0.0.1") -> bool:
    """True once something accepts TCP connections on ``host:port``."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((host, port)) == 0:
                return True
        time.sleep(0.2)
    return False
