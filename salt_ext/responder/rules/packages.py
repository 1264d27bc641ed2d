"""Installed packages (``pkg.list_pkgs``) and pending upgrades (``pkg.list_upgrades``)."""

from __future__ import annotations

import re

from salt_ext.responder.model import Finding, SuggestedAction
from salt_ext.responder.rules.base import Context, count_text, join_names

_WORD_RE = re.compile(r"[a-z0-9][a-z0-9.+_-]*[a-z0-9+]|[a-z0-9]")


def _version(version: object) -> str:
    if isinstance(version, list):  # several versions installed
        return ", ".join(str(v) for v in version)
    return str(version)


def packages_rule(ctx: Context, minion_id: str) -> None:
    obs = ctx.obs.last(minion_id, "pkgs")
    if obs is None:
        return
    names = sorted(str(n) for n in obs.data)
    count = obs.length(name="package_count")
    asked = [w for w in dict.fromkeys(_WORD_RE.findall(ctx.question.lower())) if w in obs.data and len(w) > 1]
    evidence = [count] if count else []
    installed = [f"{n} {_version(obs.data[n])}" for n in names]
    detail = f"Installed: {join_names(installed, ctx.thresholds.listed_items)}."
    if asked:
        found = ", ".join(f"{n} {_version(obs.data[n])}" for n in asked)
        detail = f"Asked for: {found}. " + detail
        evidence += [e for e in (obs.ev(n) for n in asked) if e]
    ctx.add(
        Finding(
            "info",
            f"{count_text(count, 'package')} installed",
            detail,
            evidence,
            minion_id=minion_id,
            topic="packages",
            brief=count_text(count, "package") + (f" (incl. {', '.join(asked)})" if asked else ""),
        )
    )


def upgrades_rule(ctx: Context, minion_id: str) -> None:
    obs = ctx.obs.last(minion_id, "upgrades")
    if obs is None:
        return
    count = obs.length(name="upgrade_count")
    if not obs.data:
        ctx.add(
            Finding(
                "info",
                "No pending upgrades",
                "pkg.list_upgrades returned nothing: packages are up to date.",
                [count] if count else [],
                minion_id=minion_id,
                topic="packages",
                brief="up to date",
            )
        )
        return
    names = sorted(str(n) for n in obs.data)
    listed = join_names([f"{n} → {_version(obs.data[n])}" for n in names], ctx.thresholds.listed_items)
    ctx.add(
        Finding(
            "warning",
            f"{count_text(count, 'package upgrade')} pending",
            f"Upgradable: {listed}.",
            [count] if count else [],
            minion_id=minion_id,
            topic="packages",
            brief=f"{count_text(count, 'upgrade')} pending",
        ),
        recommend=(
            f"Apply the pending upgrades on {minion_id} in a maintenance window, after a dry run; "
            "security fixes first, and restart the services whose libraries changed."
        ),
        follow_up=f"Which of the pending upgrades on {minion_id} are security fixes?",
    )
    ctx.propose(
        SuggestedAction(
            "pkg.upgrade",
            [minion_id],
            {},
            f"Apply the pending upgrades on {minion_id}",
            "pkg.list_upgrades reported upgradable packages.",
        )
    )
