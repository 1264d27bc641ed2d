"""Turn a minion's grains (and pillar) into an inventory record, keeping whatever is known."""

from __future__ import annotations

import ipaddress
from typing import Any, Mapping

from salt_ext.inventory.model import Server

# Grains kept verbatim in servers.grains: enough to answer inventory questions
# without storing every grain (some are huge, e.g. full hwaddr maps).
KEPT_GRAINS = (
    "id", "host", "fqdn", "nodename", "domain", "os", "os_family", "osfinger", "osrelease",
    "oscodename", "osfullname", "osarch", "kernel", "kernelrelease", "kernelversion",
    "cpu_model", "num_cpus", "cpuarch", "mem_total", "swap_total", "virtual", "init",
    "ipv4", "ipv6", "fqdn_ip4", "roles", "serverflow", "saltversion", "pythonversion",
    "productname", "manufacturer", "locale_info", "timezone", "biosversion", "selinux",
    "systemd", "environment", "env",
)


def lookup(data: Mapping[str, Any] | None, key: str, delimiter: str = ":") -> Any:
    """Salt-style nested lookup (``serverflow:tags``); None when any part is missing."""
    cur: Any = data or {}
    for part in key.split(delimiter):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split()]
    if not isinstance(value, (list, tuple, set)):
        return [str(value)]
    out: list[str] = []
    for item in value:
        text = str(item).strip()
        if text and text not in out:
            out.append(text)
    return out


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def routable_ips(grains: Mapping[str, Any]) -> list[str]:
    """The minion's addresses, loopback and link-local left out, IPv4 first."""
    out: list[str] = []
    for key in ("ipv4", "ipv6"):
        for raw in _str_list(grains.get(key)):
            try:
                addr = ipaddress.ip_address(raw)
            except ValueError:
                continue
            if addr.is_loopback or addr.is_link_local or addr.is_unspecified:
                continue
            if raw not in out:
                out.append(raw)
    return out


def server_from_grains(
    minion_id: str,
    grains: Mapping[str, Any] | None,
    pillar: Mapping[str, Any] | None = None,
    *,
    tags_key: str = "serverflow:tags",
    services_key: str = "serverflow:services",
) -> Server:
    """Build a ``Server`` from grains; missing or odd grains leave fields empty, never fail.

    Tags and services come from the grain ``tags_key`` (then the pillar key of
    the same name), ``roles`` grain entries are added as tags too.
    """
    grains = grains if isinstance(grains, Mapping) else {}
    pillar = pillar if isinstance(pillar, Mapping) else {}
    tags = _str_list(lookup(grains, tags_key)) or _str_list(lookup(pillar, tags_key))
    for role in _str_list(grains.get("roles")):
        if role not in tags:
            tags.append(role)
    services = _str_list(lookup(grains, services_key)) or _str_list(lookup(pillar, services_key))
    mem_mib = _int(grains.get("mem_total"))
    kept = {k: grains[k] for k in KEPT_GRAINS if k in grains}
    return Server(
        minion_id=minion_id,
        hostname=str(grains.get("fqdn") or grains.get("host") or grains.get("nodename") or "") or None,
        ip_addresses=routable_ips(grains),
        os=str(grains["os"]) if grains.get("os") else None,
        os_family=str(grains["os_family"]) if grains.get("os_family") else None,
        os_release=str(grains["osrelease"]) if grains.get("osrelease") else None,
        kernel=" ".join(str(grains[k]) for k in ("kernel", "kernelrelease") if grains.get(k)) or None,
        cpu_count=_int(grains.get("num_cpus")),
        # Salt reports mem_total in MiB; the schema stores bytes.
        memory_total=mem_mib * 1024 * 1024 if mem_mib is not None else None,
        tags=tags,
        services=services,
        grains=kept,
    )
