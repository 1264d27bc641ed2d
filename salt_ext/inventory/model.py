"""The inventory record the rest of the product reasons about."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Server:
    """One managed minion as the inventory knows it.

    ``os`` is Salt's ``os`` grain (Ubuntu, Debian, Rocky, Windows ...),
    ``os_family`` its ``os_family`` grain; ``services`` are service names known
    to run there (from the ``serverflow:services`` grain/pillar or discovery).
    """

    minion_id: str
    hostname: str | None = None
    ip_addresses: list[str] = field(default_factory=list)
    os: str | None = None
    os_family: str | None = None
    os_release: str | None = None
    kernel: str | None = None
    cpu_count: int | None = None
    memory_total: int | None = None  # bytes
    tags: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    grains: dict[str, Any] = field(default_factory=dict)
    status: str = "unknown"  # online | offline | unknown
    last_seen_at: datetime | None = None
    id: str | None = None  # database UUID, once stored

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.last_seen_at is not None:
            out["last_seen_at"] = self.last_seen_at.isoformat()
        return out
