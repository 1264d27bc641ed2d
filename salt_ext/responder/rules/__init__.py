"""The rules, in the order they run for each minion.

A rule is ``rule(ctx, minion_id) -> None``: it reads observations from
``ctx.obs`` and adds findings, recommendations, proposed actions and
follow-up questions to ``ctx``.  The process rule runs before the load rule
so that a high load can name the top consumer.
"""

from __future__ import annotations

from collections.abc import Callable

from salt_ext.responder.rules.base import Context
from salt_ext.responder.rules.cpu import cpu_rule, load_rule
from salt_ext.responder.rules.disk import disk_rule, inode_rule
from salt_ext.responder.rules.generic import generic_rule
from salt_ext.responder.rules.memory import memory_rule
from salt_ext.responder.rules.network import interfaces_rule, netstat_rule, ping_rule
from salt_ext.responder.rules.packages import packages_rule, upgrades_rule
from salt_ext.responder.rules.logs import logs_rule
from salt_ext.responder.rules.process import top_process_rule
from salt_ext.responder.rules.services import service_status_rule, services_rule
from salt_ext.responder.rules.system import grains_rule, uptime_rule, users_rule

Rule = Callable[[Context, str], None]

RULES: tuple[Rule, ...] = (
    grains_rule,
    uptime_rule,
    top_process_rule,
    load_rule,
    cpu_rule,
    memory_rule,
    disk_rule,
    inode_rule,
    service_status_rule,
    services_rule,
    packages_rule,
    upgrades_rule,
    ping_rule,
    interfaces_rule,
    netstat_rule,
    users_rule,
    logs_rule,
    generic_rule,
)

__all__ = ["RULES", "Context", "Rule"]
