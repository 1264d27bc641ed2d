"""Reading values out of Salt returns as evidence, and computing from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from salt_ext.responder.model import Derivation, Evidence
from salt_ext.responder.numbers import OPS, compute_len, to_number

_MISSING = object()


def walk(data: Any, keys: tuple[Any, ...]) -> Any:
    """``data[k1][k2]...`` or ``_MISSING`` (lists take integer keys)."""
    for key in keys:
        if isinstance(data, dict):
            if key not in data:
                return _MISSING
            data = data[key]
        elif isinstance(data, (list, tuple)) and isinstance(key, int) and -len(data) <= key < len(data):
            data = data[key]
        else:
            return _MISSING
    return data


def is_missing(value: Any) -> bool:
    return value is _MISSING


@dataclass
class Obs:
    """One usable return: what ``minion_id`` answered to ``function`` in job ``jid``.

    ``base`` locates this part inside the whole return (``("loadavg",)`` for
    the load part of ``status.all_status``); ``kind`` names the shape
    (``loadavg``, ``disk``, ``top`` ...); ``args`` are the step's arguments.
    """

    minion_id: str
    function: str
    jid: str | None
    data: Any
    kind: str
    base: tuple[Any, ...] = ()
    args: dict[str, Any] = field(default_factory=dict)
    order: int = 0

    def get(self, *keys: Any, default: Any = None) -> Any:
        value = walk(self.data, keys)
        return default if value is _MISSING else value

    def has(self, *keys: Any) -> bool:
        return walk(self.data, keys) is not _MISSING

    def ev(self, *keys: Any) -> Evidence | None:
        """Evidence for the value at ``keys`` (None when absent)."""
        value = walk(self.data, keys)
        if value is _MISSING:
            return None
        return Evidence(self.minion_id, self.function, self.jid, self.base + tuple(keys), value)

    def num_ev(self, *keys: Any) -> Evidence | None:
        """Evidence for a numeric value at ``keys`` (None when absent or not a number)."""
        ev = self.ev(*keys)
        if ev is None or to_number(ev.value) is None:
            return None
        return ev

    def length(self, *keys: Any, name: str, params: dict[str, Any] | None = None) -> Evidence | None:
        """The number of items at ``keys`` (optionally those whose ``field`` equals ``equals``)."""
        value = walk(self.data, keys)
        if value is _MISSING:
            return None
        try:
            count = compute_len(value, params)
        except TypeError:
            return None
        return Evidence(
            self.minion_id,
            self.function,
            self.jid,
            self.base + tuple(keys),
            count,
            Derivation("len", [], dict(params or {}, name=name)),
        )


def derive(op: str, *inputs: Evidence | None, name: str) -> Evidence | None:
    """A value computed with ``numbers.OPS[op]`` from ``inputs`` (None if any is unusable)."""
    present = [item for item in inputs if item is not None]
    if not present or len(present) != len(inputs):
        return None
    values = [to_number(item.value) for item in present]
    numbers = [v for v in values if v is not None]
    if len(numbers) != len(values):
        return None
    try:
        result = OPS[op](*numbers)
    except (ZeroDivisionError, TypeError, ValueError, OverflowError):
        return None
    first = present[0]
    return Evidence(
        first.minion_id, first.function, first.jid, (f"={name}",), result, Derivation(op, present)
    )


def value(ev: Evidence | None) -> float | None:
    return None if ev is None else to_number(ev.value)


def inventory_ev(inventory: dict[str, dict] | None, minion_id: str, *keys: Any) -> Evidence | None:
    """Evidence read from the inventory record of ``minion_id``."""
    if not inventory or not isinstance(inventory.get(minion_id), dict):
        return None
    found = walk(inventory[minion_id], keys)
    if found is _MISSING or found is None:
        return None
    return Evidence(minion_id, "inventory", None, tuple(keys), found)


def size_ev(ev: Evidence | None, unit: str, name: str) -> tuple[Evidence | None, str]:
    """Convert a size in ``unit`` (``kib``, ``bytes``, ``mib``) to GiB, or MiB when under one GiB."""
    amount = value(ev)
    if amount is None:
        return None, ""
    per_gib = {"kib": 1024**2, "bytes": 1024**3, "mib": 1024}[unit]
    if amount >= per_gib or unit == "mib":
        if unit == "mib" and amount < per_gib:
            return ev, "MiB"
        return derive(f"{unit}_to_gib", ev, name=f"{name}_gib"), "GiB"
    if unit == "kib":
        return derive("kib_to_mib", ev, name=f"{name}_mib"), "MiB"
    return derive("bytes_to_mib", ev, name=f"{name}_mib"), "MiB"
