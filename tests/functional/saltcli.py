"""Helpers to drive the test stack through Salt's own CLIs and event bus."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import yaml

from salt_ext.devstack.layout import Layout


def run_cli(layout: Layout, tool: str, *args: str, config_dir: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    argv = [str(layout.venv_bin / tool), "-c", str(config_dir or layout.etc), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def run_json(layout: Layout, tool: str, *args: str, **kwargs: Any) -> Any:
    proc = run_cli(layout, tool, *args, "--out=json", **kwargs)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads(proc.stdout)


def config_variant(layout: Layout, tmp_path: Path, change: Callable[[dict], None]) -> Path:
    """A copy of the master config dir with ``change`` applied (same daemons, other settings)."""
    config = yaml.safe_load((layout.etc / "master").read_text())
    change(config)
    target = tmp_path / "etc"
    target.mkdir()
    (target / "master").write_text(yaml.safe_dump(config))
    return target


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    """Poll until ``predicate`` returns something truthy; returns it (or the last falsy value)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = predicate()
    return value


class EventListener:
    """Subscribes to the master event bus of the test stack."""

    def __init__(self, layout: Layout) -> None:
        import salt.config
        import salt.utils.event

        opts = salt.config.master_config(str(layout.etc / "master"))
        self.event = salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=True)

    def wait(self, tag: str, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.event.get_event(wait=1, tag=tag, full=True)
            if got and got["tag"] == tag:
                return got["data"]
        return None

    def close(self) -> None:
        self.event.destroy()


@contextmanager
def added_minion(layout: Layout, minion_id: str, tags: list[str]) -> Iterator["EventListener"]:
    """A minion beyond the stack's own, configured (not started) with a bus listener already
    open; afterwards it is stopped and its key deleted, so the next test never sees it."""
    from salt_ext.devstack import salt_daemons

    layout.minions[minion_id] = {"tags": list(tags), "services": []}
    salt_daemons.write_minion_config(layout, minion_id)
    listener = EventListener(layout)
    try:
        yield listener
    finally:
        listener.close()
        salt_daemons.stop_minion(layout, minion_id)
        del layout.minions[minion_id]
        run_cli(layout, "salt-key", "-d", minion_id, "-y")

