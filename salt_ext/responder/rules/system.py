"""Uptime (``status.uptime``), OS and hardware (``grains.items``), users (``user.list_users``)."""

from __future__ import annotations

from salt_ext.responder.evidence import size_ev, value
from salt_ext.responder.model import Finding
from salt_ext.responder.rules.base import Context, count_text, evidence_list, fmt, join_names


def uptime_rule(ctx: Context, minion_id: str) -> None:
    obs = ctx.obs.last(minion_id, "uptime")
    if obs is None:
        return
    if not isinstance(obs.data, dict):  # Windows / unknown platforms: a number or a text
        ev = obs.ev()
        ctx.add(
            Finding(
                "info",
                f"Uptime: {obs.data}",
                "",
                [ev] if ev else [],
                minion_id=minion_id,
                topic="system",
                brief=f"up {obs.data}",
            )
        )
        return
    seconds, days, clock = obs.num_ev("seconds"), obs.ev("days"), obs.ev("time")
    parts = []
    if value(days):
        parts.append(f"{fmt(days)} days")
    if clock is not None and isinstance(clock.value, str) and ":" in clock.value:
        hours, minutes = clock.value.split(":", 1)
        if hours.strip().isdigit() and minutes.strip().isdigit():
            parts.append(f"{int(hours)} h {int(minutes)} min")
    if not parts and seconds is not None:
        parts.append(f"{fmt(seconds)} s")
    since = obs.get("since_iso")
    since_text = f" (since {str(since).replace('T', ' ')[:16]})" if since else ""
    recent = seconds is not None and (value(seconds) or 0.0) < ctx.thresholds.recent_boot_seconds
    uptime = " ".join(parts) or "?"
    ctx.add(
        Finding(
            "warning" if recent else "info",
            f"Rebooted recently: up {uptime}" if recent else f"Up {uptime}",
            f"Uptime {uptime}{since_text}."
            + (" A recent restart can explain a gap in service or cold caches." if recent else ""),
            evidence_list(seconds, obs.ev("since_iso")),
            minion_id=minion_id,
            topic="system",
            brief=f"up {uptime}",
        ),
        recommend=(
            f"Check why {minion_id} restarted (journalctl --list-boots, kernel log, last -x)."
            if recent
            else None
        ),
    )


def grains_rule(ctx: Context, minion_id: str) -> None:
    obs = ctx.obs.last(minion_id, "grains")
    if obs is None:
        return
    g = obs.data
    os_name = " ".join(str(g[k]) for k in ("os", "osrelease") if g.get(k) not in (None, ""))
    if g.get("oscodename"):
        os_name += f" ({g['oscodename']})"
    details = []
    if g.get("kernel"):
        details.append(f"kernel {g['kernel']} {g.get('kernelrelease', '')}".strip())
    cpus = obs.num_ev("num_cpus")
    if cpus is not None:
        details.append(f"{fmt(cpus)} CPUs" + (f" ({g['cpu_model']})" if g.get("cpu_model") else ""))
    ram, ram_unit = size_ev(obs.num_ev("mem_total"), "mib", "ram")
    if ram is not None:
        details.append(f"{fmt(ram)} {ram_unit} RAM")
    if g.get("virtual"):
        details.append(f"virtual: {g['virtual']}")
    ips = [ip for ip in g.get("ipv4") or [] if isinstance(ip, str) and not ip.startswith("127.")]
    if ips:
        details.append(f"IPv4 {', '.join(ips)}")
    ctx.add(
        Finding(
            "info",
            os_name or "Operating system unknown",
            (", ".join(details) + ".") if details else "",
            evidence_list(obs.ev("os"), obs.ev("osrelease"), cpus, ram),
            minion_id=minion_id,
            topic="system",
            brief=os_name or "OS unknown",
        )
    )


def users_rule(ctx: Context, minion_id: str) -> None:
    obs = ctx.obs.last(minion_id, "users")
    if obs is None:
        return
    count = obs.length(name="user_count")
    names = [str(u) for u in obs.data]
    ctx.add(
        Finding(
            "info",
            f"{count_text(count, 'local user')}",
            f"Users: {join_names(names, ctx.thresholds.listed_items * 2)}.",
            [count] if count else [],
            minion_id=minion_id,
            topic="system",
            brief=count_text(count, "user"),
        )
    )
