"""Numbers: one formatter, one extractor, one set of derivations.

The responder may only say numbers that came from a Salt return or from the
inventory, or that it computed from such numbers with one of the operations
in :data:`OPS`.  To make that checkable, every number put into text goes
through :func:`fmt_num` (one decimal at most), and :func:`canon` maps any
numeric token, from the answer or from a source value, to the same form.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

# A number not glued to an identifier: "SRV003", "cpu0", "libssl3", "x86_64"
# and the "3" of "1.2.3" are not numbers; "95%", "3.2 per core", "01" in
# "web-01" and "1" in "1-min" are.
_NUMBER_RE = re.compile(r"(?<![A-Za-z_\d.])\d+(?:\.\d+)?")
_LEADING_NUMBER_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


def _decimal(value: float | int | str) -> Decimal | None:
    try:
        if isinstance(value, float):
            return Decimal(repr(value))
        return Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        return None


def fmt_num(value: float | int | str) -> str:
    """Format a number the one way the responder writes numbers.

    Integers stay exact; anything else is rounded half-up to one decimal and a
    trailing ``.0`` is dropped (``95.0`` → ``95``, ``0.1938`` → ``0.2``).
    """
    if isinstance(value, bool):
        return str(value)
    dec = _decimal(value)
    if dec is None or not dec.is_finite():
        return str(value)
    if dec == dec.to_integral_value():
        return str(int(dec))
    out = dec.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    text = format(out, "f")
    return text[:-2] if text.endswith(".0") else text


def canon(token: str | int | float) -> str:
    """The comparable form of a numeric token (same rounding as :func:`fmt_num`)."""
    return fmt_num(token)


def numbers_in(text: str) -> list[str]:
    """Every numeric token of ``text``, as written (see the module doc)."""
    return _NUMBER_RE.findall(text or "")


def to_number(raw: Any) -> float | None:
    """Read a number from a Salt value: ``3.2``, ``"13%"``, ``"24684096"``,
    ``"24684096 kB"``, ``{"value": "24684096", "unit": "kB"}``; else None."""
    if isinstance(raw, bool) or raw is None:
        return None
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, dict) and "value" in raw:
        return to_number(raw["value"])
    if isinstance(raw, str):
        match = _LEADING_NUMBER_RE.match(raw)
        if match:
            return float(match.group(1))
    return None


def _ratio(a: float, b: float) -> float:
    return a / b


def _pct(a: float, b: float) -> float:
    return a / b * 100.0


# Every computation the rules may apply to source numbers.  Inputs are the
# numeric values of the input evidence, in order.
OPS: dict[str, Callable[..., float]] = {
    "sum": lambda *v: float(sum(v)),
    "sub": lambda a, b: a - b,
    "ratio": _ratio,
    "pct": _pct,
    "add_one": lambda a: a + 1,
    "kib_to_mib": lambda a: a / 1024,
    "kib_to_gib": lambda a: a / 1024**2,
    "bytes_to_kib": lambda a: a / 1024,
    "bytes_to_mib": lambda a: a / 1024**2,
    "bytes_to_gib": lambda a: a / 1024**3,
    "mib_to_gib": lambda a: a / 1024,
}

# Operations computed from the value at the evidence's own path (no inputs).
# ``len``: number of items; params ``field``/``equals`` count only the items
# whose ``field`` equals ``equals``.
SELF_OPS = ("len",)


def compute_len(raw: Any, params: dict[str, Any] | None = None) -> int:
    params = params or {}
    if not isinstance(raw, (list, dict, tuple, set, str)):
        raise TypeError("len of a scalar")
    if "field" in params:
        items = raw.values() if isinstance(raw, dict) else raw
        return sum(
            1
            for item in items
            if isinstance(item, dict) and item.get(params["field"]) == params.get("equals")
        )
    return len(raw)
