"""Load average per core (``status.loadavg``) and CPU busy time (``status.cpustats``)."""

from __future__ import annotations

from salt_ext.responder.evidence import derive, value
from salt_ext.responder.model import Evidence, Finding
from salt_ext.responder.rules.base import Context, evidence_list, fmt
from salt_ext.responder.thresholds import level

_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def load_rule(ctx: Context, minion_id: str) -> None:
    obs = ctx.obs.last(minion_id, "loadavg")
    if obs is None:
        return
    one, five, fifteen = obs.num_ev("1-min"), obs.num_ev("5-min"), obs.num_ev("15-min")
    if one is None:
        ctx.add(
            Finding(
                "info",
                "Load average not reported",
                "status.loadavg returned no load value.",
                minion_id=minion_id,
                topic="load",
            )
        )
        return
    trend = ""
    if fifteen is not None:
        if (value(one) or 0.0) > (value(fifteen) or 0.0):
            trend = ", rising"
        elif (value(one) or 0.0) < (value(fifteen) or 0.0):
            trend = ", falling"
    history = ""
    if five is not None and fifteen is not None:
        history = f" ({fmt(five)} over five and {fmt(fifteen)} over fifteen minutes{trend})"
    cpus = ctx.cpu_count(minion_id)
    per_core = derive("ratio", one, cpus, name="load_per_core") if cpus is not None else None
    if per_core is None:
        ctx.add(
            Finding(
                "info",
                f"Load average {fmt(one)}",
                f"Load average over the last minute is {fmt(one)}{history}. The CPU count is unknown, "
                "so it cannot be judged per core (add status.cpuinfo or grains.items to the plan).",
                evidence_list(one, five, fifteen),
                minion_id=minion_id,
                topic="load",
                brief=f"load {fmt(one)}",
            )
        )
        return
    t = ctx.thresholds
    severity = level(value(per_core), t.load_per_core_warning, t.load_per_core_critical)
    ctx.notes[(minion_id, "load_severity")] = severity
    title = {
        "critical": f"Very high load: {fmt(per_core)} per CPU core",
        "warning": f"High load: {fmt(per_core)} per CPU core",
        "info": f"Load {fmt(per_core)} per CPU core",
    }[severity]
    detail = f"Load average over the last minute is {fmt(one)}{history} on {fmt(cpus)} CPUs."
    top = ctx.notes.get((minion_id, "top_process"))
    recommend = None
    if severity != "info":
        detail += " More work is runnable than the cores can serve, so everything waits."
        if top:
            recommend = (
                f"Find out why {top['name']} (pid {top['pid']}) keeps the CPUs of {minion_id} busy; "
                "if its load is expected, spread it or add CPUs."
            )
        else:
            recommend = f"Look at the top CPU consumers on {minion_id} (ps.top) to see what keeps it busy."
    ctx.add(
        Finding(
            severity,
            title,
            detail,
            evidence_list(one, five, fifteen, cpus, per_core),
            minion_id=minion_id,
            topic="load",
            brief=f"load {fmt(per_core)}/core",
        ),
        recommend=recommend,
        follow_up=(
            f"Which processes use the most CPU on {minion_id}?" if severity != "info" and not top else None
        ),
    )


def _sum(obs, keys: tuple[str, ...], name: str) -> Evidence | None:
    return derive("sum", *[obs.num_ev("cpu", k) for k in keys], name=name)


def cpu_rule(ctx: Context, minion_id: str) -> None:
    snaps = [o for o in ctx.obs.all(minion_id, "cpustats") if isinstance(o.get("cpu"), dict)]
    if not snaps:
        return
    first, last = snaps[0], snaps[-1]
    fields = tuple(
        k for k in _CPU_FIELDS if first.num_ev("cpu", k) is not None and last.num_ev("cpu", k) is not None
    )
    idle_fields = tuple(k for k in ("idle", "iowait") if k in fields)
    if "idle" not in fields:
        return
    t = ctx.thresholds
    if len(snaps) >= 2:
        total = derive(
            "sub",
            _sum(last, fields, "cpu_total_end"),
            _sum(first, fields, "cpu_total_start"),
            name="cpu_ticks",
        )
        if (value(total) or 0.0) > 0:
            idle = derive(
                "sub",
                _sum(last, idle_fields, "cpu_idle_end"),
                _sum(first, idle_fields, "cpu_idle_start"),
                name="idle_ticks",
            )
            busy = derive("pct", derive("sub", total, idle, name="busy_ticks"), total, name="cpu_busy_pct")
            iowait = None
            if "iowait" in fields:
                iowait = derive(
                    "pct",
                    derive(
                        "sub",
                        last.num_ev("cpu", "iowait"),
                        first.num_ev("cpu", "iowait"),
                        name="iowait_ticks",
                    ),
                    total,
                    name="iowait_pct",
                )
            severity = level(value(busy), t.cpu_busy_warning, t.cpu_busy_critical)
            title = {
                "critical": f"CPU saturated: {fmt(busy)}% busy",
                "warning": f"CPU busy {fmt(busy)}%",
                "info": f"CPU {fmt(busy)}% busy",
            }[severity]
            ctx.add(
                Finding(
                    severity,
                    title,
                    f"Between the two status.cpustats samples the CPUs were {fmt(busy)}% busy"
                    + (f" and {fmt(iowait)}% waiting for I/O." if iowait is not None else "."),
                    evidence_list(busy, iowait),
                    minion_id=minion_id,
                    topic="cpu",
                    brief=f"cpu {fmt(busy)}% busy",
                ),
                recommend=(
                    f"Find the processes behind the CPU use on {minion_id} (ps.top) before adding capacity."
                    if severity != "info"
                    else None
                ),
            )
            if iowait is not None and level(value(iowait), t.iowait_warning, 101.0) != "info":
                ctx.add(
                    Finding(
                        "warning",
                        f"High I/O wait: {fmt(iowait)}% of CPU time",
                        "The CPUs spend much of their time waiting for disk or network storage; "
                        "the disks are the bottleneck.",
                        [iowait],
                        minion_id=minion_id,
                        topic="cpu",
                        brief=f"iowait {fmt(iowait)}%",
                    ),
                    recommend=f"Check which disk is saturated on {minion_id} (status.diskstats, iostat) "
                    "and which process writes to it.",
                    follow_up=f"Which disks are busiest on {minion_id}?",
                )
            return
    total = _sum(last, fields, "cpu_ticks_since_boot")
    busy = derive(
        "pct",
        derive("sub", total, _sum(last, idle_fields, "idle_ticks_since_boot"), name="busy_ticks_since_boot"),
        total,
        name="cpu_busy_pct_since_boot",
    )
    if busy is None:
        return
    ctx.add(
        Finding(
            "info",
            f"CPU {fmt(busy)}% busy on average since boot",
            "One status.cpustats sample only gives the average since boot; "
            "two samples a few seconds apart show the current use.",
            [busy],
            minion_id=minion_id,
            topic="cpu",
            brief=f"cpu {fmt(busy)}% busy since boot",
        )
    )
