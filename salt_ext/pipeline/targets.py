"""Stage 5: resolve what the question names into minion ids of the inventory.

Unknown names are an error (SRV001, with the closest ids as suggestions);
a group that matches nothing is EXEC005; no server named at all, or "the web
server" when there are four for a change, is a question back to the user.
"""

from __future__ import annotations

from salt_ext.errors import ErrorInfo
from salt_ext.pipeline.fleet import FleetIndex
from salt_ext.pipeline.model import Entities, TargetResolution


def _describe_group(group: list[str]) -> str:
    return " ".join(s.split(":", 1)[1].replace("|", " or ").replace("tag:", "") for s in group)


def _group_ids(group: list[str], fleet: FleetIndex) -> set[str]:
    sets = [fleet.select(s) for s in group]
    return set.intersection(*sets) if sets else set()


def _suggest_targets(fleet: FleetIndex) -> str:
    tags = sorted(fleet.tags)
    example = fleet.ids()[0] if fleet.servers else "web-01"
    hint = f"a server (e.g. {example})"
    if tags:
        hint += f", a group ({', '.join(tags[:8])})"
    return hint + " or 'all servers'"


def resolve_targets(ents: Entities, fleet: FleetIndex, *, write: bool = False) -> TargetResolution:
    """Sorted minion ids the plan should run on, or why there are none."""
    if ents.unknown_servers:
        near = {name: fleet.near_matches(name) for name in ents.unknown_servers}
        names = ", ".join(ents.unknown_servers)
        suggestions = sorted({m for ms in near.values() for m in ms})
        msg = f"{names} {'is' if len(ents.unknown_servers) == 1 else 'are'} not in the inventory."
        if suggestions:
            msg += f" Did you mean {' or '.join(suggestions)}?"
        return TargetResolution(
            [],
            ErrorInfo("SRV001", msg, {"unknown": list(ents.unknown_servers), "near_matches": near}),
            clarification=msg if suggestions else f"{msg} Name {_suggest_targets(fleet)}.",
        )

    explicit = set(ents.servers)
    base: set[str] = set()
    group_sets = [_group_ids(g, fleet) for g in ents.groups]
    if ents.groups:
        base = set().union(*group_sets)
    elif ents.all_servers or ents.fleet_question or ((ents.os or ents.service_filter) and not explicit):
        base = fleet.all_ids()
    if base and ents.os:
        base &= set().union(*(fleet.select("os:" + o) for o in ents.os))
    if base and ents.service_filter:
        base &= set().union(*(fleet.select("svc:" + s) for s in ents.service_filter))
    excluded = set(ents.excluded_servers)
    for g in ents.excluded_groups:
        excluded |= _group_ids(g, fleet)
    targets = sorted((explicit | base) - excluded)

    filtered = bool(ents.groups or ents.os or ents.service_filter)
    if filtered and not base and not explicit:
        parts = [_describe_group(g) for g in ents.groups] + ents.os + ents.service_filter
        msg = f"No server in the inventory matches {' / '.join(parts)}."
        return TargetResolution([], ErrorInfo("EXEC005", msg, {"groups": ents.groups, "os": ents.os, "services": ents.service_filter}), f"{msg} Name {_suggest_targets(fleet)}.")
    if ents.group_words and not targets:
        words = ", ".join(ents.group_words)
        msg = f"No group called {words} in the inventory."
        return TargetResolution([], ErrorInfo("EXEC005", msg, {"groups": ents.group_words, "known_tags": sorted(fleet.tags)}), f"{msg} Name {_suggest_targets(fleet)}.")
    if not targets:
        if len(fleet.servers) == 1 and not ents.has_target_spec():
            return TargetResolution(fleet.ids())  # one server: nothing to choose
        running = sorted(set().union(*(fleet.select("svc:" + s) for s in ents.services if not s.startswith("@"))) if ents.services else set())
        if running and not ents.has_target_spec():
            # "is haproxy running?": where the inventory says it runs. A change
            # is not made on a guess, so that only becomes a suggestion.
            if not write:
                return TargetResolution(running)
            names = ", ".join(ents.services)
            return TargetResolution([], clarification=f"On which servers? The inventory has {names} on {', '.join(running)}.")
        return TargetResolution([], clarification=f"Which servers do you mean? Name {_suggest_targets(fleet)}.")
    if write and ents.singular_group and not explicit and len(base) > 1:
        return TargetResolution([], clarification=f"Which one of {', '.join(sorted(base))}? This changes a server, so I will not guess.")
    return TargetResolution(targets)
