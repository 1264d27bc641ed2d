"""The top consumer from ``ps.top``: who it is and how much CPU and memory it takes.

``ps.top`` lists processes by the CPU they used during its sampling interval,
busiest first; each entry carries cumulative CPU seconds (``cpu.user`` +
``cpu.system``), ``create_time`` (epoch) and ``mem.rss`` (bytes).  With the
minion's clock from ``status.uptime`` the average share of one core since the
process started is CPU seconds / age.
"""

from __future__ import annotations

from typing import Any

from salt_ext.responder.evidence import Obs, derive, size_ev, value
from salt_ext.responder.model import SEVERITY_RANK, Evidence, Finding, Severity, SuggestedAction
from salt_ext.responder.rules.base import Context, command_line, evidence_list, fmt, process_name
from salt_ext.responder.thresholds import level

_NOT_KILLABLE_NAMES = ("init", "systemd", "sshd", "kthreadd")
_SALT = ("salt-minion", "salt-master", "salt-call", "salt-api")


def _own_job(cmd: Any) -> bool:
    """The Salt process that ran ps.top itself."""
    text = command_line(cmd, 10_000)
    return "ProcessPayload(jid=" in text or ("salt-call" in text and "ps.top" in text)


def _mem_share(ctx: Context, minion_id: str, rss: Evidence | None) -> Evidence | None:
    total, unit = ctx.mem_total(minion_id)
    if rss is None or total is None:
        return None
    if unit == "kib":
        return derive("pct", derive("bytes_to_kib", rss, name="rss_kib"), total, name="rss_pct_of_ram")
    if unit == "mib":
        return derive("pct", derive("bytes_to_mib", rss, name="rss_mib"), total, name="rss_pct_of_ram")
    return derive("pct", rss, total, name="rss_pct_of_ram")


def matching_service(name: str, services: list[str]) -> str | None:
    """The service a process belongs to, by name (``mysqld`` → ``mysql``, ``postgres`` → ``postgresql``)."""
    proc = name.lower()
    if len(proc) < 3:
        return None
    for service in services:
        svc = service.lower()
        if len(svc) >= 3 and (proc == svc or proc.startswith(svc) or svc.startswith(proc)):
            return service
    return None


def _describe(ctx: Context, obs: Obs, index: int) -> dict[str, Any]:
    entry = obs.data[index]
    cpu_seconds = derive(
        "sum", obs.num_ev(index, "cpu", "user"), obs.num_ev(index, "cpu", "system"), name="cpu_seconds"
    )
    clock = ctx.clock(obs.minion_id)
    age = (
        derive("sub", clock, obs.num_ev(index, "create_time"), name="process_age_seconds") if clock else None
    )
    cpu_pct = None
    if (value(age) or 0) > 0:
        cpu_pct = derive("pct", cpu_seconds, age, name="cpu_pct_of_one_core")
    rss = obs.num_ev(index, "mem", "rss")
    rss_size, rss_unit = size_ev(rss, "bytes", "rss")
    return {
        "index": index,
        "name": process_name(entry.get("cmd")),
        "cmdline": command_line(entry.get("cmd")),
        "pid": obs.ev(index, "pid"),
        "user": obs.ev(index, "user"),
        "cmd": obs.ev(index, "cmd"),
        "cpu_seconds": cpu_seconds,
        "cpu_pct": cpu_pct,
        "rss": rss,
        "rss_size": rss_size,
        "rss_unit": rss_unit,
        "mem_pct": _mem_share(ctx, obs.minion_id, rss),
    }


def top_process_rule(ctx: Context, minion_id: str) -> None:
    obs = ctx.obs.last(minion_id, "top")
    if obs is None:
        return
    indexes = [i for i, p in enumerate(obs.data) if isinstance(p, dict) and not _own_job(p.get("cmd"))]
    if not indexes:
        ctx.add(
            Finding(
                "info",
                "No process reported",
                "ps.top returned no process.",
                minion_id=minion_id,
                topic="process",
            )
        )
        return
    t = ctx.thresholds
    top = _describe(ctx, obs, indexes[0])
    ctx.notes[(minion_id, "top_process")] = {"name": top["name"], "pid": fmt(top["pid"])}
    cpu_level = level(value(top["cpu_pct"]), t.process_cpu_warning, t.process_cpu_critical)
    mem_level = level(value(top["mem_pct"]), t.process_mem_warning, t.process_mem_critical)
    severity: Severity = cpu_level if SEVERITY_RANK[cpu_level] <= SEVERITY_RANK[mem_level] else mem_level
    who = f"{top['name']} (pid {fmt(top['pid'])}, user {top['user'].value if top['user'] else '?'})"

    if top["cpu_pct"] is not None:
        title = f"Top CPU consumer: {who} at {fmt(top['cpu_pct'])}% of a core"
        usage = (
            "It used the most CPU during the ps.top sample and has averaged "
            f"{fmt(top['cpu_pct'])}% of one core "
            f"since it started ({fmt(top['cpu_seconds'])} s of CPU time)."
        )
    else:
        title = f"Top CPU consumer: {who}"
        usage = (
            "It used the most CPU during the ps.top sample "
            f"({fmt(top['cpu_seconds'])} s of CPU time since it started)."
        )
        if ctx.obs.last(minion_id, "uptime") is None:
            usage += " Add status.uptime to the plan to get its average CPU share."
    memory = ""
    if top["rss_size"] is not None:
        memory = f" Resident memory {fmt(top['rss_size'])} {top['rss_unit']}"
        memory += f" ({fmt(top['mem_pct'])}% of RAM)." if top["mem_pct"] is not None else "."
    others = [_describe(ctx, obs, i) for i in indexes[1:4]]
    next_up = ""
    if others:
        next_up = " Next: " + ", ".join(f"{o['name']} (pid {fmt(o['pid'])})" for o in others) + "."
    detail = f"{usage}{memory} Command: `{top['cmdline']}`.{next_up}"

    recommend = follow_up = None
    service = matching_service(top["name"], ctx.inventory_services(minion_id))
    if severity != "info":
        recommend = (
            f"Check whether {top['name']} (pid {fmt(top['pid'])}) on {minion_id} "
            "is expected to work this hard "
            "(a stuck query, a loop, a batch job)"
            + (
                f"; if it is stuck, restarting {service} is gentler than killing it."
                if service
                else "; stop it if it is runaway."
            )
        )
        follow_up = f"Show the recent logs of {service or top['name']} on {minion_id}?"
    ctx.add(
        Finding(
            severity,
            title,
            detail,
            evidence_list(
                top["pid"],
                top["user"],
                top["cmd"],
                top["cpu_pct"],
                top["cpu_seconds"],
                top["mem_pct"],
                top["rss_size"],
            ),
            minion_id=minion_id,
            topic="process",
            brief=f"top process {top['name']} (pid {fmt(top['pid'])})"
            + (f" {fmt(top['cpu_pct'])}% of a core" if top["cpu_pct"] is not None else ""),
        ),
        recommend=recommend,
        follow_up=follow_up,
    )

    if cpu_level == "critical":
        _propose_stop(ctx, minion_id, top, service)

    # The largest memory user among the listed processes, if it is another one.
    by_rss = [d for d in (_describe(ctx, obs, i) for i in indexes) if value(d["rss"])]
    if by_rss:
        biggest = max(by_rss, key=lambda d: value(d["rss"]) or 0.0)
        big_level = level(value(biggest["mem_pct"]), t.process_mem_warning, t.process_mem_critical)
        if biggest["index"] != top["index"] and big_level != "info":
            ctx.add(
                Finding(
                    big_level,
                    f"{biggest['name']} (pid {fmt(biggest['pid'])}) holds {fmt(biggest['mem_pct'])}% of RAM",
                    f"Resident memory {fmt(biggest['rss_size'])} {biggest['rss_unit']}. "
                    f"Command: `{biggest['cmdline']}`.",
                    evidence_list(biggest["pid"], biggest["mem_pct"], biggest["rss_size"]),
                    minion_id=minion_id,
                    topic="process",
                    brief=f"{biggest['name']} {fmt(biggest['mem_pct'])}% of RAM",
                ),
                recommend=f"Check whether {biggest['name']} on {minion_id} is leaking memory "
                "or needs a lower cache size.",
            )


def _propose_stop(ctx: Context, minion_id: str, top: dict[str, Any], service: str | None) -> None:
    pid = top["pid"].value if top["pid"] else None
    rss = value(top["rss"]) or 0
    if (
        not isinstance(pid, int)
        or pid <= 1
        or rss <= 0
        or top["name"] in _NOT_KILLABLE_NAMES
        or any(n in top["cmdline"] for n in _SALT)
    ):
        return  # kernel threads, init and the agent itself are not proposed for killing
    reason = f"{top['name']} has averaged {fmt(top['cpu_pct'])}% of one core since it started."
    if service:
        ctx.propose(
            SuggestedAction(
                "service.restart",
                [minion_id],
                {"name": service},
                f"Restart {service} on {minion_id}",
                reason + f" It belongs to the {service} service; a restart is gentler than a kill.",
            )
        )
    ctx.propose(
        SuggestedAction(
            "ps.kill_pid",
            [minion_id],
            {"pid": pid},
            f"Stop {top['name']} (pid {pid}) on {minion_id}",
            reason + " Sends SIGTERM; the process may lose unsaved work.",
        )
    )
