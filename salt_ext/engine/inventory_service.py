"""Live inventory: follows minion starts, returns and presence on the bus, pings the fleet,
and writes servers to PostgreSQL (write-behind, retried until the database answers)."""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Callable

from salt_ext.errors import ServerFlowError
from salt_ext.inventory import store
from salt_ext.inventory.grains import server_from_grains
from salt_ext.inventory.model import Server
from salt_ext.inventory.tracker import OFFLINE, ONLINE, InventoryTracker, Transition

log = logging.getLogger(__name__)

_JOB_RETURN = re.compile(r"^salt/job/[^/]+/ret/(?P<minion>.+)$")
_MINION_START = re.compile(r"^salt/minion/(?P<minion>.+)/start$")
_DATA_REFRESH = re.compile(r"^minion/refresh/(?P<minion>.+)$")


class InventoryService:
    """The inventory handler of the engine; ``submit`` runs blocking work off the event loop."""

    def __init__(self, settings: dict[str, Any], gateway: Any, backend: "Backend",
                 submit: Callable[..., Any], publish: Callable[[Transition], None]) -> None:
        self.settings = settings
        self.inv = settings["inventory"]
        self.gateway = gateway
        self.backend = backend
        self.submit = submit
        self.publish = publish
        self.tracker = InventoryTracker(self.inv["misses_before_offline"])
        self._next_sweep = 0.0
        self._next_refresh = 0.0

    # -- events -----------------------------------------------------------------
    def handle(self, tag: str, data: dict[str, Any]) -> None:
        if m := _JOB_RETURN.match(tag):
            minion = m.group("minion")
            self._publish(self.tracker.mark([minion], ONLINE))
            if data.get("fun") == "grains.items" and isinstance(data.get("return"), dict):
                self.tracker.saw_facts(self._server(minion, data["return"], None))
            return
        minion = None
        if m := _MINION_START.match(tag):
            minion = m.group("minion")
        elif tag == "minion_start":
            minion = data.get("id")
        if minion:
            self._publish(self.tracker.mark([minion], ONLINE))
            self.submit("facts:" + minion, self.fetch_facts, minion)
            return
        if m := _DATA_REFRESH.match(tag):
            self.submit("facts:" + m.group("minion"), self.fetch_facts, m.group("minion"))
        elif tag == "salt/presence/change":
            # Presence is per source IP: several minions behind one address hide each
            # other's departure, so "lost" is trusted but "new" is confirmed by a ping.
            self._publish(self.tracker.mark(data.get("lost") or [], OFFLINE))
            if data.get("new"):
                self.submit("ping:new", self.confirm, list(data["new"]))
        elif tag == "salt/key" and data.get("act") == "delete" and data.get("id"):
            self._publish(self.tracker.mark([data["id"]], OFFLINE))

    def tick(self, now: float) -> None:
        if now >= self._next_sweep:
            self._next_sweep = now + float(self.inv["ping_interval"])
            self.submit("sweep", self.sweep)
        if now >= self._next_refresh:
            self._next_refresh = now + float(self.inv["refresh_interval"])
            for minion in self.gateway.accepted_minions():
                self.submit("facts:" + minion, self.fetch_facts, minion)

    # -- blocking work (worker threads) -------------------------------------------
    def _server(self, minion: str, grains: Any, pillar: Any) -> Server:
        return server_from_grains(minion, grains, pillar, tags_key=self.inv["tags_key"],
                                  services_key=self.inv["services_key"])

    def fetch_facts(self, minion: str) -> None:
        grains, pillar = self.gateway.cached_facts(minion)
        if not grains:
            grains = self.gateway.grains(minion, timeout=float(self.inv["ping_timeout"]))
        self.tracker.saw_facts(self._server(minion, grains, pillar))

    def sweep(self) -> None:
        expected = sorted(set(self.gateway.accepted_minions()) | self.tracker.known())
        answered = self.gateway.ping(expected, timeout=float(self.inv["ping_timeout"]))
        self._publish(self.tracker.sweep(expected, answered))

    def confirm(self, minions: list[str]) -> None:
        answered = self.gateway.ping(minions, timeout=float(self.inv["ping_timeout"]))
        self._publish(self.tracker.mark(sorted(answered), ONLINE))

    def flush(self) -> int:
        """Write pending changes; raises ServerFlowError (SYS001) while the database is down."""
        pending = self.tracker.pending()
        if not pending:
            return 0
        self.backend.write_inventory(pending)
        self.tracker.written(pending)
        return len(pending.facts) + len(pending.statuses)

    def _publish(self, transitions: list[Transition]) -> None:
        for transition in transitions:
            log.info("serverflow: %s is %s", transition.minion_id, transition.new)
            self.publish(transition)


class Backend:
    """The engine's database side: migrations at start, tenant row, inventory writes."""

    def __init__(self, settings: dict[str, Any], database: Any) -> None:
        self.settings = settings
        self.db = database
        self.tenant_id = settings["tenant_id"]
        self.ready = False

    def prepare(self, tracker: InventoryTracker) -> None:
        from salt_ext.db.migrate import migrate

        if self.settings["database"]["migrate_on_start"]:
            migrate(self.settings["database"]["admin_url"])
        with self.db.tenant(self.tenant_id) as conn:
            store.ensure_tenant(conn, self.tenant_id, self.settings["tenant_name"],
                                self.settings["tenant_slug"])
            servers, _ = store.list_servers(conn)
        tracker.load({s.minion_id: s.status for s in servers})
        self.ready = True

    def write_inventory(self, pending: Any) -> None:
        with self.db.tenant(self.tenant_id) as conn:
            for server in pending.facts:
                store.upsert_facts(conn, self.tenant_id, server)
            for minion, status, seen in pending.statuses:
                store.set_status(conn, self.tenant_id, minion, status, seen)


class Backoff:
    """Exponential retry delay between ``low`` and ``high`` seconds."""

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = float(low), float(high)
        self.delay = 0.0
        self.next_at = 0.0

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def failed(self, now: float) -> float:
        self.delay = min(self.high, max(self.low, self.delay * 2 or self.low))
        self.next_at = now + self.delay
        return self.delay

    def succeeded(self) -> None:
        self.delay = 0.0
        self.next_at = 0.0


def describe(exc: BaseException) -> str:
    """One line for a log: the ServerFlow error sentence, or the exception's first line."""
    if isinstance(exc, ServerFlowError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def monotonic() -> float:
    return time.monotonic()
