"""Filesystem usage (``disk.usage``, ``status.diskusage``) and inodes (``disk.inodeusage``)."""

from __future__ import annotations

from typing import Any

from salt_ext.responder.evidence import Obs, derive, size_ev, value
from salt_ext.responder.model import Evidence, Finding
from salt_ext.responder.rules.base import Context, evidence_list, fmt
from salt_ext.responder.thresholds import level

_PSEUDO_FS = {
    "tmpfs",
    "devtmpfs",
    "udev",
    "none",
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "squashfs",
    "shm",
    "devfs",
    "map auto_home",
    "map -hosts",
    "efivarfs",
    "securityfs",
    "debugfs",
    "tracefs",
}
_PSEUDO_MOUNTS = ("/proc", "/sys", "/dev", "/run", "/snap/", "/System/Volumes/")
_LISTED_MOUNTS = 8


def is_pseudo(mount: str, filesystem: Any) -> bool:
    """Mounts that never fill up meaningfully (RAM-backed, kernel, read-only images)."""
    fs = str(filesystem or "")
    if fs in _PSEUDO_FS or fs.startswith("/dev/loop"):
        return True
    return mount != "/" and mount.startswith(_PSEUDO_MOUNTS)


def _mounts(obs: Obs, pct_key: str) -> list[tuple[str, Evidence]]:
    out = []
    for mount, info in obs.data.items():
        if not isinstance(info, dict) or is_pseudo(str(mount), info.get("filesystem")):
            continue
        pct = obs.num_ev(mount, pct_key)
        if pct is not None:
            out.append((str(mount), pct))
    return out


def _report(
    ctx: Context,
    minion_id: str,
    rows: list[tuple[str, Evidence, Evidence | None, str, Evidence | None, str]],
    *,
    what: str,
    warning: float,
    critical: float,
    used_word: str = "used",
) -> None:
    """rows: (mount, used %, free size, unit, total size, unit). ``what`` is "disk" or "inodes"."""
    if not rows:
        ctx.add(
            Finding(
                "info",
                "No real filesystem reported" if what == "disk" else "No inode usage reported",
                "Only RAM-backed or kernel filesystems were returned.",
                minion_id=minion_id,
                topic=what,
            )
        )
        return
    rows = sorted(rows, key=lambda r: -(value(r[1]) or 0))
    for mount, pct, free, free_unit, size, size_unit in rows:
        severity = level(value(pct), warning, critical)
        if severity == "info":
            continue
        if what == "disk":
            title = (
                f"Disk {mount} is {fmt(pct)}% full"
                if severity == "warning"
                else f"Disk {mount} is almost full: {fmt(pct)}%"
            )
            detail = (
                f"{fmt(free)} {free_unit} free of {fmt(size)} {size_unit}."
                if free is not None and size is not None
                else ""
            ) + " Writes fail when it fills: logs, databases and package installs first."
            recommend = (
                f"Free space on {mount} on {minion_id}: find the largest directories (du -xh), "
                "rotate or compress "
                "logs, clean package caches and old releases, or grow the filesystem."
            )
            follow_up = f"Which directories use the most space under {mount} on {minion_id}?"
        else:
            title = f"Inodes on {mount} {fmt(pct)}% used"
            detail = (
                f"{fmt(free)} inodes free of {fmt(size)}. " if free is not None and size is not None else ""
            ) + ("New files cannot be created when inodes run out, even with free space.")
            recommend = (
                f"Find the directories with many small files on {mount} on {minion_id} "
                "(sessions, caches, mail spools) and clean them."
            )
            follow_up = f"Which directories hold the most files under {mount} on {minion_id}?"
        ctx.add(
            Finding(
                severity,
                title,
                detail.strip(),
                evidence_list(pct, free, size),
                minion_id=minion_id,
                topic=what,
                brief=f"{mount} {fmt(pct)}%",
            ),
            recommend=recommend,
            follow_up=follow_up,
        )
    listed = rows[:_LISTED_MOUNTS]
    if what == "disk":
        parts = [
            f"{mount} {fmt(pct)}% {used_word}"
            + (f" ({fmt(free)} {free_unit} free)" if free is not None else "")
            for mount, pct, free, free_unit, _, _ in listed
        ]
    else:
        parts = [f"{mount} {fmt(pct)}%" for mount, pct, *_ in listed]
    more = " and more" if len(rows) > len(listed) else ""
    label = "Disk usage" if what == "disk" else "Inode usage"
    ctx.add(
        Finding(
            "info",
            label,
            f"{label}: " + ", ".join(parts) + more + ".",
            [ev for _, pct, free, *_ in listed for ev in (pct, free) if ev is not None],
            minion_id=minion_id,
            topic=what,
            brief=("disk " if what == "disk" else "inodes ")
            + ", ".join(f"{m} {fmt(p)}%" for m, p, *_ in listed)
            + more,
        )
    )


def disk_rule(ctx: Context, minion_id: str) -> None:
    t = ctx.thresholds
    obs = ctx.obs.last(minion_id, "disk")
    if obs is not None:
        rows = []
        for mount, pct in _mounts(obs, "capacity"):
            free, free_unit = size_ev(obs.num_ev(mount, "available"), "kib", "free")
            size, size_unit = size_ev(obs.num_ev(mount, "1K-blocks"), "kib", "size")
            rows.append((mount, pct, free, free_unit, size, size_unit))
        _report(ctx, minion_id, rows, what="disk", warning=t.disk_warning, critical=t.disk_critical)
        return
    obs = ctx.obs.last(minion_id, "diskusage_bytes")  # status.diskusage / all_status: bytes, no capacity
    if obs is not None:
        rows = []
        for mount, info in obs.data.items():
            if (
                not isinstance(info, dict)
                or is_pseudo(str(mount), None)
                or not value(obs.num_ev(mount, "total"))
            ):
                continue
            total, available = obs.num_ev(mount, "total"), obs.num_ev(mount, "available")
            used_pct = derive(
                "pct", derive("sub", total, available, name="used_bytes"), total, name="used_pct"
            )
            if used_pct is None:
                continue
            free, free_unit = size_ev(available, "bytes", "free")
            size, size_unit = size_ev(total, "bytes", "size")
            rows.append((str(mount), used_pct, free, free_unit, size, size_unit))
        # statvfs gives only total and available: "used" here includes blocks reserved for root.
        _report(
            ctx,
            minion_id,
            rows,
            what="disk",
            warning=t.disk_warning,
            critical=t.disk_critical,
            used_word="used or reserved",
        )


def inode_rule(ctx: Context, minion_id: str) -> None:
    obs = ctx.obs.last(minion_id, "inodes")
    if obs is None:
        return
    t = ctx.thresholds
    rows = [
        (mount, pct, obs.num_ev(mount, "free"), "", obs.num_ev(mount, "inodes"), "")
        for mount, pct in _mounts(obs, "use")
    ]
    _report(ctx, minion_id, rows, what="inodes", warning=t.inode_warning, critical=t.inode_critical)
