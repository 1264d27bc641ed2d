"""Check that an answer only says what the data says.

``unsupported_numbers`` lists the numbers in an answer that come neither
from the results, nor from the inventory or the question, nor from a
computation recorded in the evidence that re-computes from such values.
``check_evidence`` re-reads every piece of evidence from the results.
Tests use both; the engine can use them to refuse an answer (an LLM-written
one included) that invents numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from salt_ext.execution.model import StepResult
from salt_ext.responder.evidence import is_missing, walk
from salt_ext.responder.model import Evidence, Response
from salt_ext.responder.numbers import OPS, canon, compute_len, fmt_num, numbers_in, to_number

_ANY_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?|\d+")


def _string_numbers(text: str) -> set[str]:
    """Generous on the source side: every digit run of a source string."""
    found = set(_ANY_NUMBER_RE.findall(text)) | set(re.findall(r"\d+", text)) | set(numbers_in(text))
    return {canon(token) for token in found}


def _collect(value: Any, out: set[str]) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float)):
        out.add(fmt_num(value))
    elif isinstance(value, str):
        out |= _string_numbers(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _collect(key, out)
            _collect(item, out)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            _collect(item, out)
    else:
        out |= _string_numbers(str(value))


def source_numbers(
    results: Iterable[StepResult], inventory: dict | None = None, question: str = ""
) -> set[str]:
    """Every number (canonical form) present in the results, the inventory and the question."""
    out: set[str] = set()
    for step in results or []:
        for part in (step.function, step.args, step.targets, step.jid, step.missing, step.error):
            _collect(part, out)
        for minion_id, mret in (step.returns or {}).items():
            _collect(minion_id, out)
            _collect(getattr(mret, "ret", mret), out)
            _collect(getattr(mret, "retcode", None), out)
    _collect(inventory or {}, out)
    _collect(question, out)
    return out


def _raw(ev: Evidence, results: list[StepResult], inventory: dict | None) -> Any:
    if ev.function == "inventory":
        record = (inventory or {}).get(ev.minion_id)
        return walk(record, ev.path) if isinstance(record, dict) else walk(None, ("?",))
    for step in results:
        if (
            step.function == ev.function
            and (ev.jid is None or step.jid == ev.jid)
            and ev.minion_id in (step.returns or {})
        ):
            mret = step.returns[ev.minion_id]
            return walk(getattr(mret, "ret", mret), ev.path)
    return walk(None, ("?",))


def verify(ev: Evidence, results: list[StepResult], inventory: dict | None = None) -> list[str]:
    """Problems with one piece of evidence (empty when it re-reads / re-computes exactly)."""
    where = f"{ev.minion_id} {ev.function} {ev.path_str}"
    if ev.derived is None:
        raw = _raw(ev, results, inventory)
        if is_missing(raw):
            return [f"{where}: not found in the results"]
        if raw == ev.value or (
            isinstance(raw, str) and isinstance(ev.value, str) and ev.value and ev.value in raw
        ):
            return []
        return [f"{where}: evidence says {ev.value!r}, the return has {raw!r}"]
    if ev.derived.op == "len":
        raw = _raw(ev, results, inventory)
        if is_missing(raw):
            return [f"{where}: not found in the results"]
        try:
            expected: float = compute_len(raw, ev.derived.params)
        except TypeError:
            return [f"{where}: cannot count a scalar"]
    else:
        problems = [p for item in ev.derived.inputs for p in verify(item, results, inventory)]
        if problems:
            return problems
        values = [to_number(item.value) for item in ev.derived.inputs]
        if any(v is None for v in values) or ev.derived.op not in OPS:
            return [f"{where}: cannot re-compute {ev.derived.op}"]
        try:
            expected = OPS[ev.derived.op](*values)
        except (ZeroDivisionError, TypeError, ValueError):
            return [f"{where}: cannot re-compute {ev.derived.op}"]
    if fmt_num(expected) != fmt_num(ev.value):
        return [f"{where}: {ev.derived.op} gives {fmt_num(expected)}, evidence says {fmt_num(ev.value)}"]
    return []


def _all_evidence(response: Response) -> Iterable[Evidence]:
    stack = list(response.evidence())
    while stack:
        ev = stack.pop()
        yield ev
        if ev.derived is not None:
            stack.extend(ev.derived.inputs)


def check_evidence(response: Response, results: list[StepResult], inventory: dict | None = None) -> list[str]:
    """Problems with any evidence in ``response`` (empty: every citation holds)."""
    return [p for ev in response.evidence() for p in verify(ev, list(results or []), inventory)]


def supported_numbers(
    response: Response, results: list[StepResult], inventory: dict | None = None, question: str = ""
) -> set[str]:
    allowed = source_numbers(results, inventory, question)
    for ev in _all_evidence(response):
        if (
            ev.derived is not None
            and isinstance(ev.value, (int, float))
            and not verify(ev, list(results or []), inventory)
        ):
            allowed.add(fmt_num(ev.value))
    return allowed


def unsupported_numbers(
    text: str,
    response: Response,
    results: list[StepResult],
    inventory: dict | None = None,
    question: str = "",
) -> list[str]:
    """Numbers in ``text`` that nothing in the data supports (empty: the text is grounded)."""
    allowed = supported_numbers(response, results, inventory, question)
    return [token for token in numbers_in(text) if canon(token) not in allowed]
