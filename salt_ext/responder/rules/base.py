"""What every rule receives, and the few cross-rule look-ups (CPU count, RAM, clock)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from salt_ext.responder.evidence import Obs, derive, inventory_ev, value
from salt_ext.responder.model import SEVERITY_RANK, Evidence, Finding, SuggestedAction
from salt_ext.responder.numbers import fmt_num, to_number
from salt_ext.responder.observe import Observations
from salt_ext.responder.thresholds import Thresholds


def fmt(ev: Evidence | None) -> str:
    """A numeric evidence value as the responder writes numbers (``"13%"`` → ``13``)."""
    number = value(ev)
    if number is None:
        return "?" if ev is None else str(ev.value)
    return fmt_num(number)


def evidence_list(*items: Evidence | None) -> list[Evidence]:
    return [item for item in items if item is not None]


def count_text(ev: Evidence | None, singular: str, plural: str | None = None) -> str:
    """``"1 package"``, ``"40 packages"`` from a count evidence (``"?"`` when unknown)."""
    if ev is None:
        return f"? {plural or singular + 's'}"
    return f"{fmt(ev)} {singular if value(ev) == 1 else (plural or singular + 's')}"


def join_names(names: list[str], limit: int) -> str:
    shown = ", ".join(names[:limit])
    return shown + (" and more" if len(names) > limit else "")


def process_name(cmd: Any) -> str:
    """A readable process name from ``ps.top``'s ``cmd`` (argv list or a kernel thread name)."""
    if isinstance(cmd, list) and cmd:
        first = str(cmd[0])
        name = os.path.basename(first.split()[0]) if first.strip() else first
        return name or first
    if isinstance(cmd, str) and cmd:
        return cmd
    return "?"


def command_line(cmd: Any, limit: int = 160) -> str:
    text = " ".join(str(part) for part in cmd) if isinstance(cmd, list) else str(cmd)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Context:
    question: str
    intent: str
    obs: Observations
    inventory: dict[str, dict]
    thresholds: Thresholds
    findings: list[Finding] = field(default_factory=list)
    recommendations: list[tuple[int, str]] = field(default_factory=list)
    actions: list[SuggestedAction] = field(default_factory=list)
    follow_ups: list[tuple[int, str]] = field(default_factory=list)
    notes: dict[tuple[str, str], Any] = field(default_factory=dict)

    @property
    def diagnosing(self) -> bool:
        return not self.intent.startswith(("QUERY", "REPORT"))

    def add(self, finding: Finding, *, recommend: str | None = None, follow_up: str | None = None) -> Finding:
        self.findings.append(finding)
        rank = SEVERITY_RANK[finding.severity]
        if recommend:
            self.recommendations.append((rank, recommend))
        if follow_up:
            self.follow_ups.append((rank, follow_up))
        return finding

    def follow(self, text: str, severity: str = "info") -> None:
        self.follow_ups.append((SEVERITY_RANK[severity], text))

    def propose(self, action: SuggestedAction) -> None:
        key = (action.function, tuple(action.targets), tuple(sorted(map(str, action.args.items()))))
        for known in self.actions:
            if (known.function, tuple(known.targets), tuple(sorted(map(str, known.args.items())))) == key:
                return
        self.actions.append(action)

    # -- cross-rule look-ups ------------------------------------------------

    def inventory_services(self, minion_id: str) -> list[str]:
        record = self.inventory.get(minion_id) if isinstance(self.inventory, dict) else None
        services = record.get("services") if isinstance(record, dict) else None
        return [str(s) for s in services] if isinstance(services, list) else []

    def cpu_count(self, minion_id: str) -> Evidence | None:
        """Logical CPUs of ``minion_id``: grains, then ``status.cpuinfo``, then the inventory."""
        key = (minion_id, "cpu_count")
        if key not in self.notes:
            self.notes[key] = self._cpu_count(minion_id)
        return self.notes[key]

    def _cpu_count(self, minion_id: str) -> Evidence | None:
        grains = self.obs.last(minion_id, "grains")
        if grains is not None:
            ev = grains.num_ev("num_cpus")
            if ev is not None and value(ev):
                return ev
        info = self.obs.last(minion_id, "cpuinfo")
        if info is not None:
            for key in ("ncpu", "hw.ncpu"):  # BSD
                ev = info.num_ev(key)
                if ev is not None and value(ev):
                    return ev
            ev = info.num_ev("processor")  # Linux: the last processor's index
            if ev is not None:
                return derive("add_one", ev, name="cpu_count")
        for keys in (("cpu_count",), ("grains", "num_cpus"), ("num_cpus",)):
            ev = inventory_ev(self.inventory, minion_id, *keys)
            if ev is not None and value(ev):
                return ev
        return None

    def mem_total(self, minion_id: str) -> tuple[Evidence | None, str]:
        """Total RAM and its unit (``kib``, ``mib``, ``bytes``): meminfo, grains, inventory."""
        meminfo = self.obs.last(minion_id, "meminfo")
        if meminfo is not None:
            ev = meminfo_ev(meminfo, "MemTotal")
            if ev is not None:
                return ev, "kib"
        grains = self.obs.last(minion_id, "grains")
        if grains is not None:
            ev = grains.num_ev("mem_total")
            if ev is not None and value(ev):
                return ev, "mib"
        ev = inventory_ev(self.inventory, minion_id, "memory_total")
        if ev is not None and to_number(ev.value):
            return ev, "bytes"
        return None, ""

    def clock(self, minion_id: str) -> Evidence | None:
        """The minion's current time (epoch s) from ``status.uptime``: boot time + uptime."""
        uptime = self.obs.last(minion_id, "uptime")
        if uptime is None or not isinstance(uptime.data, dict):
            return None
        return derive("sum", uptime.num_ev("since_t"), uptime.num_ev("seconds"), name="minion_time")


def meminfo_ev(obs: Obs, key: str) -> Evidence | None:
    """A ``status.meminfo`` value: ``{"value": "123", "unit": "kB"}`` or ``"123 kB"``."""
    if obs.has(key, "value"):
        return obs.num_ev(key, "value")
    return obs.num_ev(key)
