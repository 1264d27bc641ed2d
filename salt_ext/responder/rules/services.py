"""Service state (``service.status``) and the service list (``service.get_all``)."""

from __future__ import annotations

from salt_ext.responder.evidence import Obs
from salt_ext.responder.model import Finding, SuggestedAction
from salt_ext.responder.rules.base import Context, count_text, join_names


def step_arg(obs: Obs, name: str) -> str | None:
    """A step argument by name, or the first positional one (``{"args": [...]}``)."""
    if obs.args.get(name) not in (None, ""):
        return str(obs.args[name])
    positional = obs.args.get("args")
    if isinstance(positional, (list, tuple)) and positional:
        return str(positional[0])
    return None


def _one(ctx: Context, obs: Obs, service: str, running: bool, keys: tuple) -> None:
    minion_id = obs.minion_id
    ev = obs.ev(*keys)
    if running:
        ctx.add(
            Finding(
                "info",
                f"{service} is running",
                f"service.status {service} returned True.",
                [ev] if ev else [],
                minion_id=minion_id,
                topic="service",
                brief=f"{service} running",
            )
        )
        return
    ctx.add(
        Finding(
            "critical",
            f"{service} is not running",
            f"service.status {service} returned False: the service is stopped, failed or not installed.",
            [ev] if ev else [],
            minion_id=minion_id,
            topic="service",
            brief=f"{service} NOT running",
        ),
        recommend=(
            f"Start {service} on {minion_id} and read its logs (journalctl -u {service}) "
            "to learn why it stopped; "
            "if it keeps failing, check its configuration and free disk space."
        ),
        follow_up=f"Show the recent logs of {service} on {minion_id}?",
    )
    ctx.propose(
        SuggestedAction(
            "service.start",
            [minion_id],
            {"name": service},
            f"Start {service} on {minion_id}",
            f"service.status reported {service} as not running.",
        )
    )


def service_status_rule(ctx: Context, minion_id: str) -> None:
    for obs in ctx.obs.all(minion_id, "service_status"):
        if isinstance(obs.data, bool):
            _one(ctx, obs, step_arg(obs, "name") or "the requested service", obs.data, ())
        else:  # a pattern: {name: bool}
            for service, running in obs.data.items():
                if isinstance(running, bool):
                    _one(ctx, obs, str(service), running, (service,))


def services_rule(ctx: Context, minion_id: str) -> None:
    obs = ctx.obs.last(minion_id, "services")
    if obs is None:
        return
    names = [str(n) for n in obs.data]
    count = obs.length(name="service_count")
    ctx.add(
        Finding(
            "info",
            f"{count_text(count, 'service')} known",
            f"Services: {join_names(sorted(names), ctx.thresholds.listed_items)}.",
            [count] if count else [],
            minion_id=minion_id,
            topic="service",
            brief=count_text(count, "service"),
        )
    )
    for expected in ctx.inventory_services(minion_id):
        if names and expected not in names:
            ctx.add(
                Finding(
                    "warning",
                    f"{expected} is not among its services",
                    f"The inventory says {minion_id} runs {expected}, but service.get_all does not list it.",
                    minion_id=minion_id,
                    topic="service",
                    brief=f"{expected} missing",
                ),
                recommend=f"Check whether {expected} is installed on {minion_id} "
                "or the inventory is out of date.",
            )
