"""Functions without a dedicated rule: write results (service.restart, pkg.install,
state.apply, ps.kill_pid ...) and anything else, described by shape."""

from __future__ import annotations

from salt_ext.responder.evidence import Obs
from salt_ext.responder.model import Finding
from salt_ext.responder.numbers import fmt_num
from salt_ext.responder.rules.base import Context, count_text, join_names

_PKG_CHANGES = ("pkg.install", "pkg.upgrade", "pkg.remove", "pkg.purge")


def _text(obs: Obs, limit: int = 200) -> str:
    text = str(obs.data).strip()
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def generic_rule(ctx: Context, minion_id: str) -> None:
    for obs in ctx.obs.other:
        if obs.minion_id == minion_id:
            _describe(ctx, obs)


def _describe(ctx: Context, obs: Obs) -> None:
    fn, data, minion_id, limit = obs.function, obs.data, obs.minion_id, ctx.thresholds.listed_items
    root = obs.ev()
    if isinstance(data, bool):
        ctx.add(
            Finding(
                "info" if data else "warning",
                f"{fn} {'succeeded' if data else 'returned False'}",
                "" if data else f"{fn} did not do what was asked; the minion log has the reason.",
                [root] if root else [],
                minion_id=minion_id,
                topic="result",
                brief=f"{fn} {'ok' if data else 'failed'}",
            )
        )
        return
    if data is None:
        ctx.add(
            Finding(
                "info",
                f"{fn} returned nothing",
                "",
                minion_id=minion_id,
                topic="result",
                brief=f"{fn}: nothing",
            )
        )
        return
    if isinstance(data, (int, float)):
        ctx.add(
            Finding(
                "info",
                f"{fn} returned {fmt_num(data)}",
                "",
                [root] if root else [],
                minion_id=minion_id,
                topic="result",
                brief=f"{fn} {fmt_num(data)}",
            )
        )
        return
    if isinstance(data, str):
        ctx.add(
            Finding(
                "info",
                f"{fn} output",
                _text(obs),
                [root] if root else [],
                minion_id=minion_id,
                topic="result",
                brief=f"{fn}: {_text(obs, 60)}",
            )
        )
        return
    count = obs.length(name="entries")
    if (
        isinstance(data, dict)
        and fn.startswith("state.")
        and all(isinstance(v, dict) for v in data.values())
        and data
    ):
        failed = [v.get("comment") or k for k, v in data.items() if v.get("result") is False]
        changed = [k for k, v in data.items() if v.get("changes")]
        fails = obs.length(name="failed_states", params={"field": "result", "equals": False})
        ctx.add(
            Finding(
                "critical" if failed else "info",
                (
                    f"{fn}: {fails.value if fails else '?'} of {count.value if count else '?'} states failed"
                    if failed
                    else f"{fn}: all {count.value if count else '?'} states succeeded"
                ),
                (f"Failed: {join_names([str(f) for f in failed], limit)}. " if failed else "")
                + (f"Changed: {join_names([str(c) for c in changed], limit)}." if changed else "No changes."),
                [e for e in (count, fails) if e],
                minion_id=minion_id,
                topic="result",
                brief=f"{fn} failed" if failed else f"{fn} ok",
            ),
            recommend=(
                f"Read the failed states' comments on {minion_id} and fix them before re-running {fn}."
                if failed
                else None
            ),
        )
        return
    if isinstance(data, dict) and fn in _PKG_CHANGES:
        changes = [
            f"{name} {v.get('old') or '(none)'} → {v.get('new') or '(removed)'}"
            for name, v in data.items()
            if isinstance(v, dict)
        ]
        ctx.add(
            Finding(
                "info",
                f"{fn}: {count_text(count, 'package')} changed" if changes else f"{fn}: nothing changed",
                join_names(changes, limit) + "." if changes else "",
                [count] if count else [],
                minion_id=minion_id,
                topic="result",
                brief=f"{fn} done",
            )
        )
        return
    items = (
        list(data.keys()) if isinstance(data, dict) else [x for x in data if isinstance(x, (str, int, float))]
    )
    ctx.add(
        Finding(
            "info",
            f"{fn} returned {count_text(count, 'entry', 'entries')}",
            f"First entries: {join_names([str(i) for i in items], limit)}." if items else "",
            [count] if count else [],
            minion_id=minion_id,
            topic="result",
            brief=f"{fn}: {count_text(count, 'entry', 'entries')}",
        )
    )
