"""Run read-only plan steps on minions through LocalClient and stream their returns.

All steps of one parallel group are published first, then their returns are
read off the event bus as they arrive (one subscription for the request), so a
slow minion costs only its own timeout and every answer is streamed at once.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from salt_ext.execution.model import MinionReturn, StepResult
from salt_ext.pipeline.model import PlanStep
from salt_ext.registry import salt_call

Emit = Callable[[dict[str, Any]], None]


def _group(steps: Iterable[PlanStep]) -> list[list[PlanStep]]:
    groups: dict[int, list[PlanStep]] = {}
    for step in steps:
        groups.setdefault(step.parallel_group, []).append(step)
    return [groups[k] for k in sorted(groups)]


def run_steps(client: Any, steps: list[PlanStep], *, timeout: float, on_return: Emit,
              on_published: Callable[[PlanStep, str], None] | None = None,
              on_step: Callable[[StepResult], None] | None = None,
              skip: Iterable[str] = (), dry_run: bool = False) -> list[StepResult]:
    """Execute ``steps`` (already policy-checked, read-only) and return one StepResult each.

    With ``dry_run`` every step runs as its function's own dry run (``test=True``):
    that is how a proposed write is previewed without changing anything.

    ``skip`` are minions known to be offline: they are not published to and are
    reported as missing straight away. ``on_return`` gets every minion return as
    it arrives; ``on_published`` gets each step's jid as soon as it exists;
    ``on_step`` gets each step once every expected minion has answered.
    """
    skip = set(skip)
    results: list[StepResult] = []
    for group in _group(steps):
        pending: dict[str, tuple[StepResult, set[str], float]] = {}
        for step in group:
            result = StepResult(function=step.function, args=dict(step.args), targets=list(step.targets))
            results.append(result)
            reachable = [m for m in step.targets if m not in skip]
            result.missing = [m for m in step.targets if m in skip]
            if not reachable:
                continue
            started = time.monotonic()
            call = salt_call(step.function, step.args, dry_run=dry_run)
            pub = client.run_job(reachable, call.fun, arg=call.arg, kwarg=call.kwarg, tgt_type="list",
                                 timeout=timeout, listen=True)
            if not pub or not pub.get("jid"):
                result.error = {"code": "EXEC001", "message": f"Salt did not accept {step.function}"}
                result.missing.extend(reachable)
                continue
            result.jid = str(pub["jid"])
            expected = set(pub.get("minions") or reachable) & set(reachable)
            # minions the master does not know (no accepted key) never answer
            result.missing.extend(sorted(set(reachable) - expected))
            pending[result.jid] = (result, expected, started)
            if on_published:
                on_published(step, result.jid)
        _collect(client, pending, timeout, on_return, on_step)
    return results


def _collect(client: Any, pending: dict[str, tuple[StepResult, set[str], float]], timeout: float,
             on_return: Emit, on_step: Callable[[StepResult], None] | None = None) -> None:
    deadline = time.monotonic() + timeout
    waiting = {jid: set(expected) for jid, (_, expected, _) in pending.items()}
    finished: dict[str, float] = {}
    while any(waiting.values()) and time.monotonic() < deadline:
        event = client.event.get_event(wait=min(0.5, max(0.01, deadline - time.monotonic())),
                                       tag="salt/job/", full=True)
        if not event:
            continue
        parts = event["tag"].split("/")
        # salt/job/<jid>/ret/<minion>
        if len(parts) < 5 or parts[3] != "ret":
            continue
        jid, minion = parts[2], "/".join(parts[4:])
        if minion not in waiting.get(jid, ()):
            continue
        data = event.get("data") or {}
        result = pending[jid][0]
        retcode = int(data.get("retcode") or 0) if str(data.get("retcode", 0)).lstrip("-").isdigit() else 1
        result.returns[minion] = MinionReturn(minion_id=minion, ret=data.get("return"),
                                              success=bool(data.get("success", retcode == 0)),
                                              retcode=retcode)
        waiting[jid].discard(minion)
        finished[jid] = time.monotonic()
        on_return({"type": "result", "function": result.function, "minion": minion, "jid": jid,
                   "success": result.returns[minion].success})
        if on_step is not None and not waiting[jid]:
            on_step(result)
    now = time.monotonic()
    for jid, (result, _, started) in pending.items():
        result.missing.extend(sorted(waiting[jid]))
        end = now if waiting[jid] else finished.get(jid, now)
        result.duration_ms = round((end - started) * 1000, 1)
