"""Filling a registry function's arguments from the question's entities.

The registry says where each argument comes from (``from: services``,
``template: "{port}/{protocol}"``, ``value: INPUT``); this module only applies
that, per target, because some values depend on the minion (``apache`` is
``apache2`` on Debian and ``httpd`` on RedHat; syslog is ``/var/log/syslog``
or ``/var/log/messages``).
"""

from __future__ import annotations

from itertools import product
from typing import Any

from salt_ext.inventory.model import Server
from salt_ext.pipeline import lexicon
from salt_ext.pipeline.model import Entities
from salt_ext.registry import FunctionSpec


def _service_on(name: str, server: Server | None) -> str | None:
    """The name ``name`` has on ``server`` (its inventory services decide).

    ``@database`` (a kind of service) is whichever database the server runs,
    or None when it runs none.
    """
    if server is None:
        return name
    have = {s.lower(): s for s in server.services}
    if name.startswith("@"):
        return next((have[c] for c in lexicon.SERVICE_CATEGORIES.get(name[1:], []) if c in have), None)
    for cand in [name, *lexicon.SERVICE_ALIASES.get(name, [])]:
        if cand in have:
            return have[cand]
    fam = (server.os_family or "").lower()
    if name == "apache":
        return "httpd" if fam in ("redhat", "suse") else "apache2"
    if name == "ssh" and fam in ("redhat", "suse"):
        return "sshd"
    return name


def _log_path(kind: str | None, server: Server | None) -> str | None:
    if not kind:
        return None
    if kind.startswith("/"):
        return kind
    paths = lexicon.LOG_PATHS.get(kind, lexicon.LOG_PATHS["syslog"])
    fam = ((server.os_family if server else None) or "").lower()
    return paths.get(fam, paths["*"])


def _event_query(pattern: str | None) -> str | None:
    """Windows event levels for a grep pattern: errors -> Level 1-2, warnings -> 1-3."""
    if not pattern:
        return None
    low = pattern.lower()
    if "[ww][aa][rr][nn]" in low:
        return lexicon.WINDOWS_EVENT_QUERIES["warn"]
    if any(k in low for k in ("[ee][rr][rr]", "[ff][aa][ii][ll]", "[cc][rr][ii][tt]")):
        return lexicon.WINDOWS_EVENT_QUERIES["error"]
    return None


def binding_values(ents: Entities, server: Server | None = None) -> dict[str, list[Any]]:
    """Entity values by name, as the registry's ``from``/``template`` refer to them."""
    return {
        "services": [n for s in ents.services if (n := _service_on(s, server))],
        "packages": list(ents.packages),
        "processes": list(ents.processes),
        "pids": list(ents.pids),
        "ports": list(ents.ports),
        "protocol": [ents.protocol or "tcp"],
        "port": list(ents.ports),
        "hosts": list(ents.hosts),
        "users": list(ents.users),
        "states": list(ents.states),
        "paths": list(ents.paths),
        "commands": list(ents.commands),
        "count": [ents.count] if ents.count else [],
        "log_path": [p] if (p := _log_path(ents.log_kind, server)) else [],
        "log_pattern": [ents.log_pattern] if ents.log_pattern else [],
        "dry_run": [True] if ents.dry_run else [],
        "win_log": [lexicon.WINDOWS_EVENT_LOGS.get(ents.log_kind or "", "Application" if ents.log_kind in lexicon.LOG_PATHS else "System")],
        "win_log_query": [q] if (q := _event_query(ents.log_pattern)) else [],
    }


def bind_args(spec: FunctionSpec, values: dict[str, list[Any]]) -> list[dict[str, Any]] | None:
    """Argument sets for ``spec`` (one per value when several are named), or None.

    None means a required argument has nothing to bind: the function does not
    fit this question. Arguments with nothing to bind and no requirement are
    left out, so Salt's own defaults apply.
    """
    fixed: dict[str, Any] = {}
    fan_out: dict[str, list[Any]] = {}
    many_sources = {a.source for a in spec.args.values() if a.many and a.source}
    single_sources = {a.source for a in spec.args.values() if not a.many and a.source}
    for arg in spec.args.values():
        val: Any = None
        if arg.source:
            vals = values.get(arg.source, [])
            if arg.many:
                # pkg.install: name= for one package, pkgs= for several;
                # pkg.version(*names): a list whatever the count
                least = 2 if arg.source in single_sources else 1
                val = list(vals) if len(vals) >= least else None
            elif len(vals) == 1:
                val = vals[0]
            elif len(vals) > 1 and arg.source not in many_sources:
                fan_out[arg.name] = list(vals)
                continue
        if val is None and arg.template:
            singles = {k: v[0] for k, v in values.items() if len(v) == 1}
            multi = [k for k, v in values.items() if f"{{{k}}}" in arg.template and len(v) > 1]
            try:
                if multi:
                    fan_out[arg.name] = [arg.template.format(**{**singles, multi[0]: v}) for v in values[multi[0]]]
                    continue
                val = arg.template.format(**singles)
            except (KeyError, IndexError):
                val = None
        if val is None and arg.value is not None:
            val = arg.value
        if val is None:
            if arg.required:
                return None
            continue
        fixed[arg.name] = val
    if spec.require_one_of and not any(k in fixed for k in spec.require_one_of):
        return None
    if not fan_out:
        return [fixed]
    # several services/pids/ports named: one call per value, in order
    keys = list(fan_out)
    if len(keys) > 1 and len({len(fan_out[k]) for k in keys}) == 1:
        combos = list(zip(*(fan_out[k] for k in keys)))
    else:
        combos = list(product(*(fan_out[k] for k in keys)))
    return [{**fixed, **dict(zip(keys, combo))} for combo in combos]


def entity_bound(spec: FunctionSpec, values: dict[str, list[Any]]) -> int:
    """How many of ``spec``'s arguments the question's entities fill (specificity)."""
    n = 0
    for arg in spec.args.values():
        if arg.source and values.get(arg.source):
            n += 1
        elif arg.template and arg.source is None and any(f"{{{k}}}" in arg.template and values.get(k) for k in ("port", "ports", "hosts", "services")):
            n += 1
    return n
