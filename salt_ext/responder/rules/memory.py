"""Available memory and swap from ``status.meminfo`` (values in kB)."""

from __future__ import annotations

from salt_ext.responder.evidence import derive, size_ev, value
from salt_ext.responder.model import Finding, Severity
from salt_ext.responder.rules.base import Context, evidence_list, fmt, meminfo_ev
from salt_ext.responder.thresholds import level


def memory_rule(ctx: Context, minion_id: str) -> None:
    obs = ctx.obs.last(minion_id, "meminfo")
    if obs is None:
        return
    total = meminfo_ev(obs, "MemTotal")
    available = meminfo_ev(obs, "MemAvailable")
    estimated = ""
    if available is None:  # old kernels: free + buffers + page cache
        available = derive(
            "sum",
            meminfo_ev(obs, "MemFree"),
            meminfo_ev(obs, "Buffers"),
            meminfo_ev(obs, "Cached"),
            name="mem_available_estimate",
        )
        estimated = " (estimated from free, buffers and cache)"
    avail_pct = derive("pct", available, total, name="mem_available_pct")
    t = ctx.thresholds
    mem_level: Severity = "info"
    if avail_pct is not None:
        mem_level = level(
            value(avail_pct), t.mem_available_warning, t.mem_available_critical, low_is_bad=True
        )
        avail_size, avail_unit = size_ev(available, "kib", "mem_available")
        total_size, total_unit = size_ev(total, "kib", "mem_total")
        title = {
            "critical": f"Memory nearly exhausted: {fmt(avail_pct)}% available",
            "warning": f"Low memory: {fmt(avail_pct)}% available",
            "info": f"Memory {fmt(avail_pct)}% available",
        }[mem_level]
        ctx.add(
            Finding(
                mem_level,
                title,
                f"{fmt(avail_size)} {avail_unit} of {fmt(total_size)} {total_unit} available{estimated}.",
                evidence_list(total, available, avail_pct, avail_size, total_size),
                minion_id=minion_id,
                topic="memory",
                brief=f"memory {fmt(avail_pct)}% available",
            ),
            recommend=(
                f"Memory is short on {minion_id}: find the processes with the largest resident memory "
                "(ps.top) "
                "and lower their cache sizes, or add RAM."
                if mem_level != "info"
                else None
            ),
            follow_up=(
                f"Which processes use the most memory on {minion_id}?" if mem_level != "info" else None
            ),
        )

    swap_total, swap_free = meminfo_ev(obs, "SwapTotal"), meminfo_ev(obs, "SwapFree")
    if swap_total is None or swap_free is None or not value(swap_total):
        return
    used = derive("sub", swap_total, swap_free, name="swap_used_kib")
    if (value(used) or 0.0) <= 0:
        return
    used_pct = derive("pct", used, swap_total, name="swap_used_pct")
    used_size, used_unit = size_ev(used, "kib", "swap_used")
    swap_level: Severity = (
        "warning"
        if (level(value(used_pct), t.swap_used_warning, 101.0) != "info" or mem_level != "info")
        else "info"
    )
    ctx.add(
        Finding(
            swap_level,
            f"Swap in use: {fmt(used_size)} {used_unit} ({fmt(used_pct)}% of swap)",
            "Pages were pushed out to disk; when they are needed again the server waits for the disk."
            + (
                " Together with the low available memory this slows the server down."
                if mem_level != "info"
                else ""
            ),
            evidence_list(swap_total, swap_free, used_pct, used_size),
            minion_id=minion_id,
            topic="memory",
            brief=f"swap {fmt(used_size)} {used_unit} used",
        ),
        recommend=(
            f"Find what pushed {minion_id} into swap (largest resident processes) and free memory or add RAM."
            if swap_level != "info"
            else None
        ),
    )
