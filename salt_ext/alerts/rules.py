"""Pure rules: which alert a presence change or a Salt return raises or resolves.

A *condition* is keyed by (minion, metric): at most one alert per key is active at a
time; ``Crossing(active=True)`` raises it (when not already active), ``active=False``
resolves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

PRESENCE = "presence"
# The functions whose returns can raise or resolve an alert (``for_return``).
WATCHED_FUNCTIONS = ("disk.usage", "status.loadavg")


@dataclass(frozen=True)
class Crossing:
    minion_id: str
    metric: str  # "presence", "disk:/var", "load5"
    active: bool  # True: the condition holds (raise), False: it cleared (resolve)
    severity: str = "warning"
    title: str = ""
    description: str = ""
    value: float | None = None
    threshold: float | None = None


def for_presence(minion_id: str, old: str, new: str, severity: str = "critical") -> Crossing | None:
    """Offline raises, back online resolves; unknown -> online (first sight) raises nothing."""
    if new == "offline":
        return Crossing(minion_id, PRESENCE, True, severity, f"{minion_id} is offline",
                        f"{minion_id} stopped answering the master (it was {old}).")
    if new == "online" and old == "offline":
        return Crossing(minion_id, PRESENCE, False, title=f"{minion_id} is back online",
                        description=f"{minion_id} answers the master again.")
    return None


def _percent(value: Any) -> float | None:
    try:
        return float(str(value).strip().rstrip("%"))
    except (TypeError, ValueError):
        return None


def for_disk(minion_id: str, usage: Any, limit: float) -> list[Crossing]:
    """``disk.usage`` return ({mount: {capacity: "93%", ...}}) -> one crossing per filesystem."""
    out = []
    if not isinstance(usage, Mapping):
        return out
    for mount, info in sorted(usage.items()):
        if not isinstance(info, Mapping):
            continue
        used = _percent(info.get("capacity"))
        if used is None:
            continue
        high = used > limit
        out.append(Crossing(minion_id, f"disk:{mount}", high, "critical" if used >= 98 else "warning",
                            f"Disk {mount} on {minion_id} is {used:.0f}% full" if high
                            else f"Disk {mount} on {minion_id} is back under {limit:.0f}%",
                            f"{mount} ({info.get('filesystem') or '?'}) uses {used:.0f}% (limit {limit:.0f}%).",
                            used, limit))
    return out


def for_load(minion_id: str, loadavg: Any, cores: int | None, per_core: float) -> list[Crossing]:
    """``status.loadavg`` return ({"5-min": 3.2, ...}) against cores x ``per_core``."""
    if not isinstance(loadavg, Mapping) or not cores:
        return []
    try:
        load = float(loadavg.get("5-min", loadavg.get("1-min")))
    except (TypeError, ValueError):
        return []
    limit = cores * per_core
    high = load > limit
    return [Crossing(minion_id, "load5", high, "warning",
                     f"Load on {minion_id} is {load:.2f} ({cores} cores)" if high
                     else f"Load on {minion_id} is back under {limit:.2f}",
                     f"5-minute load average {load:.2f} for {cores} core(s) (limit {limit:.2f}).", load, limit)]


def for_return(minion_id: str, function: str, result: Any, *, cores: int | None,
               disk_percent: float, load_per_core: float) -> list[Crossing]:
    """Crossings shown by a read's result, whoever ran it (chat, API, schedule)."""
    if function == "disk.usage":
        return for_disk(minion_id, result, disk_percent)
    if function == "status.loadavg":
        return for_load(minion_id, result, cores, load_per_core)
    return []
