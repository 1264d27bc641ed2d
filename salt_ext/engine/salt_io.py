"""The engine's edge with Salt: the master event bus, LocalClient and the minion data cache.

Everything that touches a Salt daemon lives here so the engine's logic stays
testable with plain data.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Iterator

log = logging.getLogger(__name__)


def accepted_minions(opts: dict[str, Any]) -> list[str]:
    """Minion ids whose keys the master has accepted."""
    path = os.path.join(opts["pki_dir"], "minions")
    try:
        return sorted(n for n in os.listdir(path) if not n.startswith("."))
    except FileNotFoundError:
        return []


class SaltGateway:
    """Master-side Salt access for one engine process."""

    def __init__(self, opts: dict[str, Any]) -> None:
        import salt.cache
        import salt.utils.event

        self.opts = opts
        self._listener = salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=True)
        self._fire_lock = threading.Lock()
        self._cache = salt.cache.factory(opts)
        self._client = None
        self._client_lock = threading.Lock()

    def _local(self):
        import salt.client

        with self._client_lock:
            if self._client is None:
                self._client = salt.client.get_local_client(mopts=self.opts)
            return self._client

    def local_client(self):
        """A LocalClient of its own for one conversation turn (they are not thread-safe)."""
        import salt.client

        return salt.client.get_local_client(mopts=self.opts)

    def next_event(self, wait: float) -> dict[str, Any] | None:
        """The next bus event ``{"tag", "data"}`` or None after ``wait`` seconds."""
        return self._listener.get_event(wait=wait, full=True, auto_reconnect=True)

    def fire(self, tag: str, data: dict[str, Any]) -> None:
        with self._fire_lock:
            self._listener.fire_event(data, tag)

    def accepted_minions(self) -> list[str]:
        return accepted_minions(self.opts)

    def cached_facts(self, minion_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Grains and pillar from the master's minion data cache (no job needed)."""
        try:
            grains = self._cache.fetch("grains", minion_id) or None
        except Exception as exc:  # a cache backend error must not stop the engine
            log.debug("serverflow: grains cache read failed for %s: %s", minion_id, exc)
            grains = None
        try:
            pillar = self._cache.fetch("pillar", minion_id) or None
        except Exception:
            pillar = None
        return grains, pillar

    def run(self, target: Any, fun: str, *, tgt_type: str = "glob", timeout: float = 5,
            arg: list[Any] | None = None, kwarg: dict[str, Any] | None = None) -> dict[str, Any]:
        """A blocking LocalClient call: ``{minion_id: return}`` for the minions that answered."""
        return self._local().cmd(target, fun, arg=arg or [], kwarg=kwarg, tgt_type=tgt_type,
                                 timeout=timeout) or {}

    def ping(self, minion_ids: list[str], timeout: float) -> set[str]:
        if not minion_ids:
            return set()
        answered = self.run(minion_ids, "test.ping", tgt_type="list", timeout=timeout)
        return {m for m, ret in answered.items() if ret is True}

    def grains(self, minion_id: str, timeout: float) -> dict[str, Any] | None:
        ret = self.run(minion_id, "grains.items", timeout=timeout).get(minion_id)
        return ret if isinstance(ret, dict) else None


def iter_events(gateway: SaltGateway, stop: threading.Event, wait: float = 0.5) -> Iterator[dict | None]:
    """Events until ``stop`` is set; yields None on idle ticks so callers can run timers."""
    while not stop.is_set():
        yield gateway.next_event(wait)
