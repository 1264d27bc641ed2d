"""Presence and facts of the fleet, held in memory and written through to PostgreSQL.

The tracker is the engine's model of the fleet: it decides transitions
(online/offline), remembers what still has to reach the database, and keeps it
until a write succeeds, so a database outage loses nothing and the inventory
catches up when the database returns.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable

from salt_ext.inventory.model import Server

ONLINE, OFFLINE, UNKNOWN = "online", "offline", "unknown"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Transition:
    """A change of a minion's presence, published as ``serverflow/server/<id>/<event>``."""

    minion_id: str
    old: str
    new: str
    at: datetime

    @property
    def event(self) -> str:
        return "connected" if self.new == ONLINE else "disconnected"

    @property
    def tag(self) -> str:
        return f"serverflow/server/{self.minion_id}/{self.event}"

    def data(self) -> dict[str, str]:
        return {"minion_id": self.minion_id, "status": self.new, "previous": self.old,
                "at": self.at.isoformat()}


@dataclass
class _Entry:
    status: str = UNKNOWN
    last_seen: datetime | None = None
    facts: Server | None = None
    facts_dirty: bool = False
    status_dirty: bool = False
    missed: int = 0  # consecutive sweeps without an answer


@dataclass
class PendingWrites:
    """What the database has not seen yet."""

    facts: list[Server] = field(default_factory=list)
    statuses: list[tuple[str, str, datetime | None]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.facts or self.statuses)


class InventoryTracker:
    """Thread-safe presence state machine with a write-behind buffer."""

    def __init__(self, misses_before_offline: int = 1) -> None:
        self.misses_before_offline = max(1, int(misses_before_offline))
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}

    def load(self, known: dict[str, str]) -> None:
        """Seed with statuses already stored (engine restart) without marking them dirty."""
        with self._lock:
            for minion_id, status in known.items():
                self._entries.setdefault(minion_id, _Entry(status=status or UNKNOWN))

    def known(self) -> set[str]:
        with self._lock:
            return set(self._entries)

    def status(self, minion_id: str) -> str:
        with self._lock:
            entry = self._entries.get(minion_id)
            return entry.status if entry else UNKNOWN

    def saw_facts(self, server: Server) -> None:
        """New grains-derived facts for a minion."""
        with self._lock:
            entry = self._entries.setdefault(server.minion_id, _Entry())
            entry.facts = server
            entry.facts_dirty = True

    def _set(self, minion_id: str, status: str, now: datetime) -> Transition | None:
        entry = self._entries.setdefault(minion_id, _Entry())
        old = entry.status
        if status == ONLINE:
            entry.last_seen = now
            entry.missed = 0
        entry.status = status
        entry.status_dirty = True
        if old != status and status in (ONLINE, OFFLINE):
            return Transition(minion_id, old, status, now)
        return None

    def mark(self, minion_ids: Iterable[str], status: str,
             now: datetime | None = None) -> list[Transition]:
        """Set minions online or offline; returns the transitions that happened."""
        now = now or utcnow()
        with self._lock:
            changed = [self._set(m, status, now) for m in minion_ids]
        return [t for t in changed if t]

    def sweep(self, expected: Iterable[str], answered: Iterable[str],
              now: datetime | None = None) -> list[Transition]:
        """Apply a ping sweep: answered minions are online; a silent one goes offline once it
        has missed ``misses_before_offline`` sweeps in a row (one slow answer is not an outage)."""
        now = now or utcnow()
        answered = set(answered)
        gone = []
        with self._lock:
            for minion_id in sorted(set(expected) - answered):
                entry = self._entries.setdefault(minion_id, _Entry())
                entry.missed += 1
                if entry.missed >= self.misses_before_offline or entry.status == UNKNOWN:
                    gone.append(minion_id)
        return self.mark(sorted(answered), ONLINE, now) + self.mark(gone, OFFLINE, now)

    def pending(self) -> PendingWrites:
        """A snapshot of unwritten changes (cleared only by ``written``)."""
        with self._lock:
            out = PendingWrites()
            for minion_id, entry in sorted(self._entries.items()):
                if entry.facts_dirty and entry.facts is not None:
                    out.facts.append(entry.facts)
                if entry.status_dirty:
                    out.statuses.append((minion_id, entry.status, entry.last_seen))
            return out

    def written(self, writes: PendingWrites) -> None:
        """Mark a snapshot as stored; changes made since the snapshot stay dirty."""
        with self._lock:
            for server in writes.facts:
                entry = self._entries.get(server.minion_id)
                if entry and entry.facts is server:
                    entry.facts_dirty = False
            for minion_id, status, seen in writes.statuses:
                entry = self._entries.get(minion_id)
                if entry and entry.status == status and entry.last_seen == seen:
                    entry.status_dirty = False
