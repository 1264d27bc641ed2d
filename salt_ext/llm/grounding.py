"""Is an LLM-written text grounded? Every number and every server name must come from the data.

Numbers: ``salt_ext.responder.unsupported_numbers`` (the results, the
inventory, the question, and values the template responder derived and can
re-compute). Server names: any host-like token (letters, then ``-``/``.``
parts, with a digit: ``web-01``, ``prod-db-2``) must be a minion of the
inventory or appear in the results or the question.
"""

from __future__ import annotations

import json
import re
from typing import Any

from salt_ext.responder import unsupported_numbers

_HOSTLIKE = re.compile(r"(?<![\w.-])[a-z][a-z0-9_]*(?:[-.][a-z0-9_]+)+(?![\w-])", re.I)


def _source_text(results: list[Any], inventory: dict | None, question: str) -> str:
    parts = [question or ""]
    for step in results or []:
        parts.append(json.dumps({m: getattr(r, "ret", r) for m, r in (step.returns or {}).items()}, default=str))
        parts.append(" ".join(step.targets or []))
        parts.append(" ".join(step.missing or []))
    parts.append(json.dumps(inventory or {}, default=str))
    return "\n".join(parts).lower()


def unknown_servers(text: str, results: list[Any], inventory: dict | None, question: str = "") -> list[str]:
    """Host-like names in ``text`` that are neither minions nor present in the results or the question."""
    known = {str(k).lower() for k in (inventory or {})}
    source = None
    out: list[str] = []
    for token in _HOSTLIKE.findall(text or ""):
        name = token.lower().rstrip(".")
        if not any(ch.isdigit() for ch in name) or name in known:
            continue
        if "." in name and not "-" in name and name.replace(".", "").isdigit():
            continue
        source = source if source is not None else _source_text(results, inventory, question)
        if name not in source:
            out.append(token)
    return list(dict.fromkeys(out))


def grounding_problems(text: str, response: Any, results: list[Any], inventory: dict | None,
                       question: str = "") -> list[str]:
    """Why ``text`` is not grounded (empty: every number and server name is supported)."""
    problems = []
    numbers = unsupported_numbers(text, response, list(results or []), inventory, question)
    if numbers:
        problems.append(f"numbers not in the results: {', '.join(numbers[:5])}")
    names = unknown_servers(text, results, inventory, question)
    if names:
        problems.append(f"servers not in the inventory: {', '.join(names[:5])}")
    return problems
