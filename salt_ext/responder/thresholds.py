"""Where a value stops being normal.  One place, one default per key."""

from __future__ import annotations

from dataclasses import dataclass

from salt_ext.responder.model import Severity


@dataclass(frozen=True)
class Thresholds:
    load_per_core_warning: float = 1.0
    """1-minute load average divided by the CPU count: at 1.0 every core is busy and work queues."""
    load_per_core_critical: float = 2.0
    """Twice as much runnable work as cores."""
    cpu_busy_warning: float = 80.0
    """% of CPU time not idle between two ``status.cpustats`` samples."""
    cpu_busy_critical: float = 95.0
    iowait_warning: float = 20.0
    """% of CPU time spent waiting for I/O between two samples."""
    mem_available_warning: float = 10.0
    """% of RAM still available (``MemAvailable``) below which memory is short."""
    mem_available_critical: float = 5.0
    swap_used_warning: float = 50.0
    """% of swap in use from which swap is a warning even with memory available."""
    disk_warning: float = 85.0
    """% of a filesystem used (``disk.usage`` capacity)."""
    disk_critical: float = 95.0
    inode_warning: float = 85.0
    """% of a filesystem's inodes used."""
    inode_critical: float = 95.0
    process_cpu_warning: float = 50.0
    """% of one core a process has used on average since it started."""
    process_cpu_critical: float = 90.0
    """From here a process is called runaway and stopping it is proposed."""
    process_mem_warning: float = 30.0
    """% of RAM held resident by one process."""
    process_mem_critical: float = 60.0
    recent_boot_seconds: int = 3600
    """An uptime shorter than this is reported as a recent reboot."""
    listed_items: int = 10
    """How many names (packages, users, services ...) a finding lists before "...". """


DEFAULT_THRESHOLDS = Thresholds()


def level(value: float | None, warning: float, critical: float, *, low_is_bad: bool = False) -> Severity:
    """``info``, ``warning`` or ``critical`` for ``value`` (None is ``info``)."""
    if value is None:
        return "info"
    if low_is_bad:
        if value < critical:
            return "critical"
        if value < warning:
            return "warning"
        return "info"
    if value >= critical:
        return "critical"
    if value >= warning:
        return "warning"
    return "info"
