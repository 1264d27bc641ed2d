"""The test stack's master with the serverflow job cache on, whatever the stack's default."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import yaml

from salt_ext.devstack import processes, salt_daemons
from salt_ext.devstack.layout import Layout
from salt_ext.jobcache import MASTER_SETTINGS


def restart_master(layout: Layout, extra: dict[str, Any] | None) -> None:
    """Rewrite the master config with ``extra`` and restart the master; minions reconnect."""
    processes.stop(layout.run, "salt-master")
    salt_daemons.write_configs(layout, extra)
    salt_daemons.start_master(layout)
    answered = salt_daemons.wait_minions(layout, list(layout.minions), timeout=180)
    assert answered == set(layout.minions), answered


LOCAL_CACHE = {"master_job_cache": "local_cache", "event_return": []}


def uses_serverflow(layout: Layout) -> bool:
    config = yaml.safe_load((layout.etc / "master").read_text())
    return all(config.get(key) == value for key, value in MASTER_SETTINGS.items())


def switch_to(layout: Layout, serverflow: bool) -> bool:
    """Restart the master with the serverflow job cache on or off; False if it already was."""
    if uses_serverflow(layout) == serverflow:
        return False
    restart_master(layout, MASTER_SETTINGS if serverflow else LOCAL_CACHE)
    return True


@contextlib.contextmanager
def serverflow_master(layout: Layout) -> Iterator[Layout]:
    """The master with ``MASTER_SETTINGS``; put back as the stack had it afterwards."""
    switched = switch_to(layout, True)
    try:
        yield layout
    finally:
        if switched:
            restart_master(layout, None)
