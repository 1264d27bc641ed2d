"""A private Redis for the stack (no persistence, loopback only)."""

from __future__ import annotations

import shutil

from salt_ext.devstack import processes
from salt_ext.devstack.layout import Layout
from salt_ext.devstack.postgres import StackError


def start(layout: Layout) -> int:
    pid = processes.running(layout.run, "redis")
    if pid:
        return pid
    binary = shutil.which("redis-server")
    if not binary:
        raise StackError("redis-server not found: `apt-get install redis-server` (make up does this)")
    data = layout.home / "redis"
    data.mkdir(parents=True, exist_ok=True)
    pid = processes.spawn(layout.run, layout.logs, "redis", [
        binary, "--port", str(layout.ports.redis), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", "--dir", str(data), "--daemonize", "no",
    ])
    if not processes.wait_port(layout.ports.redis, 15):
        raise StackError(f"redis-server did not open port {layout.ports.redis}; "
                         f"see {layout.logs / 'redis.out'}")
    return pid


def stop(layout: Layout) -> bool:
    return processes.stop(layout.run, "redis")
