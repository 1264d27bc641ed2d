"""Previews of proposed actions, taken on the real minions before anyone approves.

A write whose function has a dry run (``supports_test`` in the registry) is run
exactly as proposed but with ``test=True`` (``state.single``/``state.apply``
changes, ``file.replace`` diff): Salt guarantees nothing changes. A write
without one gets the read its registry entry names under ``preview`` (the
service's status before a restart, the package's version before a removal),
so the approver sees what is about to change. Anything else says plainly that
it runs as shown. Returns are masked before they are stored or shown.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Iterable

from salt_ext.chat import executor
from salt_ext.execution.model import StepResult
from salt_ext.pipeline.model import PlanStep
from salt_ext.registry import FunctionSpec, load_registry
from salt_ext.security.masking import mask_return

log = logging.getLogger(__name__)

# A preview is evidence for a person, not a data dump: each minion's return is cut at this size.
MAX_RETURN_CHARS = 8000


def preview_step(function: str, targets: list[str], args: dict[str, Any]) -> tuple[str, PlanStep | None]:
    """``(mode, step)``: ``dry_run`` (the action itself, run with test=True), ``current_state``
    (the read that shows what it changes) or ``none`` (no step)."""
    spec = load_registry().get(function)
    if spec is None:
        return "none", None
    if spec.supports_test:
        return "dry_run", PlanStep(function=function, targets=list(targets), args=dict(args),
                                   safety="write", requires_approval=True)
    if spec.preview is not None:  # the registry guarantees a registered read
        return "current_state", PlanStep(function=spec.preview.function, targets=list(targets),
                                         args=spec.preview.bind(args), safety="read", requires_approval=False)
    return "none", None


def _note(mode: str, spec: FunctionSpec | None, function: str, probe: str | None) -> str:
    if mode == "dry_run":
        return f"dry run of {function} (test=True) on the targets: nothing was changed"
    if mode == "current_state":
        return f"{function} has no dry run; the current state from {probe} shows what it will change"
    if spec is None:
        return f"{function} is not a known function"
    return f"{function} has no dry run; it will run exactly as shown"


def _cut(value: Any) -> Any:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    if len(text) <= MAX_RETURN_CHARS:
        return value
    return {"truncated": True, "chars": len(text), "head": text[:MAX_RETURN_CHARS]}


def would_change(ret: Any) -> list[dict[str, Any]] | None:
    """From a state dry-run return: the states that would change something (None if not a state return)."""
    if not isinstance(ret, dict) or not ret or not all(isinstance(v, dict) and "result" in v for v in ret.values()):
        return None
    out = []
    for state_id, item in sorted(ret.items(), key=lambda kv: kv[1].get("__run_num__", 0)):
        if item.get("result") is None or item.get("changes") or item.get("result") is False:
            out.append({"state": str(state_id).split("_|-")[1] if "_|-" in str(state_id) else str(state_id),
                        "result": item.get("result"), "comment": str(item.get("comment") or "")[:500],
                        "changes": _cut(item.get("changes") or {})})
    return out


def _describe(mode: str, function: str, step: PlanStep | None, result: StepResult | None) -> dict[str, Any]:
    spec = load_registry().get(function)
    preview: dict[str, Any] = {"mode": mode, "note": _note(mode, spec, function, step.function if step else None)}
    if step is None or result is None:
        return preview
    preview.update({"function": step.function, "args": step.args, "jid": result.jid,
                    "missing": list(result.missing)})
    if result.error:
        preview["error"] = result.error
    returns: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    for minion, ret in result.returns.items():
        masked = mask_return(step.function, ret.ret)
        returns[minion] = {"ret": _cut(masked), "success": ret.success}
        if mode == "dry_run":
            states = would_change(masked)
            if states is not None:
                changes[minion] = states
    preview["returns"] = returns
    if changes:
        preview["would_change"] = changes
    return preview


def preview_actions(client_factory: Callable[[], Any], actions: Iterable[dict[str, Any]], *, timeout: float,
                    skip: Iterable[str] = (),
                    on_return: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """One preview per action (``function``, ``targets``, ``args``), in order.

    Only call this with actions that passed the policy and the proposer's role:
    a dry run is harmless, but it still runs on the minions. A preview is
    evidence, not a gate: when Salt fails, each preview says so and the caller
    proposes the action all the same.
    """
    actions = list(actions)
    planned = [preview_step(a["function"], list(a["targets"]), dict(a.get("args") or {})) for a in actions]
    emit = on_return or (lambda data: None)
    dry = [step for mode, step in planned if mode == "dry_run" and step is not None]
    reads = [step for mode, step in planned if mode == "current_state" and step is not None]
    results: dict[int, StepResult] = {}
    if dry or reads:
        client = client_factory()
        try:
            for steps, dry_run in ((dry, True), (reads, False)):
                if steps:
                    ran = executor.run_steps(client, steps, timeout=timeout, on_return=emit, skip=skip,
                                             dry_run=dry_run)
                    results.update({id(step): res for step, res in zip(steps, ran)})
        except Exception as exc:  # noqa: BLE001 - Salt's client raises many kinds; all mean "no preview"
            log.warning("serverflow: preview failed: %s", exc)
            return [{"mode": "unavailable", "note": f"the preview could not be taken: {exc}"} for _ in actions]
        finally:
            destroy = getattr(client, "destroy", None)
            if destroy:
                destroy()
    return [_describe(mode, a["function"], step, results.get(id(step)) if step is not None else None)
            for a, (mode, step) in zip(actions, planned)]


__all__ = ["MAX_RETURN_CHARS", "preview_actions", "preview_step", "would_change"]
