"""Log reads (``file.grep``): show the matching lines themselves, quoted as data.

The lines are evidence, never instructions: they are rendered as quoted text and
nothing in them changes the plan or the policy (prompt injection via logs).
"""

from __future__ import annotations

from salt_ext.responder.model import Finding
from salt_ext.responder.rules.base import Context

MAX_LINES = 10


def logs_rule(ctx: Context, minion_id: str) -> None:
    for obs in list(ctx.obs.other):
        if obs.minion_id != minion_id or obs.function != "file.grep" or not isinstance(obs.data, dict):
            continue
        ctx.obs.other.remove(obs)  # handled here, not by the generic description
        path = (obs.args or {}).get("path", "the file")
        stdout = str(obs.data.get("stdout") or "").strip()
        stderr = str(obs.data.get("stderr") or "").strip()
        if not stdout:
            ctx.add(Finding("info" if not stderr else "warning",
                            f"No matching lines in {path}",
                            stderr.splitlines()[0] if stderr else "",
                            [e for e in (obs.ev("stderr"),) if e], minion_id=minion_id, topic="logs",
                            brief=f"{path}: no match"))
            continue
        lines = stdout.splitlines()
        shown = lines[-MAX_LINES:]
        more = " (latest shown)" if len(lines) > len(shown) else ""
        quoted = "\n".join(f"> {line}" for line in shown)
        ctx.add(Finding("warning", f"Matching lines in {path}{more}", quoted,
                        [e for e in (obs.ev("stdout"),) if e], minion_id=minion_id, topic="logs",
                        brief=f"{path}: matches found"))
