"""Stage 6: turn the understood question into plan steps from the registry.

Three cases, in order: Salt functions named outright; a request for a change
(the function intent classification matched); otherwise the read-only
functions whose topics and intents fit the question. Arguments are bound per
target (binding.py) and each target gets the first function of a role that
runs on its OS, so one question can yield iptables steps for Debian and
firewalld steps for Rocky.

The planner does not judge safety: check_plan (policy.py) does, on any plan.
"""

from __future__ import annotations

import json
from typing import Any

from salt_ext.inventory.model import Server
from salt_ext.pipeline import lexicon
from salt_ext.pipeline.binding import bind_args, binding_values, entity_bound
from salt_ext.pipeline.model import Entities, IntentResult, PlanStep
from salt_ext.registry import FunctionSpec, Registry


def alternatives(spec: FunctionSpec, registry: Registry) -> list[FunctionSpec]:
    """``spec`` and the other functions of its role (per-platform stand-ins)."""
    if not spec.role:
        return [spec]
    alts = [f for f in registry if f.role == spec.role and f.safety == spec.safety]
    return [spec] + [f for f in alts if f.name != spec.name]


def select_read_functions(ents: Entities, intent: str, registry: Registry, servers: list[Server]) -> tuple[list[FunctionSpec], list[str]]:
    """Read-only functions answering the question's topics, most specific first.

    For each topic the first intent of ``INTENT_FALLBACK[intent]`` that has
    candidates wins; candidates must be able to bind their required
    arguments; when some bind an entity the question names (service.status
    for "is nginx running") the generic ones (service.get_all) are dropped.
    """
    notes: list[str] = []
    topics = ents.topics or lexicon.DEFAULT_TOPICS.get(intent, ["performance"])
    chain = lexicon.INTENT_FALLBACK.get(intent, [intent])
    values = binding_values(ents)
    families = {s.os_family for s in servers} or {None}
    selected: list[FunctionSpec] = []

    def usable(f: FunctionSpec) -> bool:
        return bind_args(f, values) is not None and any(alt.runs_on(fam) for alt in alternatives(f, registry) for fam in families)

    for topic in topics:
        candidates: list[FunctionSpec] = []
        for i in chain:
            candidates = [f for f in registry if f.safety == "read" and topic in f.topics and i in f.intents and usable(f)]
            if candidates:
                break
        if not candidates:
            if topic in registry.topics:
                notes.append(f"no read-only function answers '{topic}' here")
            continue
        specific = [f for f in candidates if entity_bound(f, values)]
        for f in specific or candidates:
            if f not in selected:
                selected.append(f)
    words = set(ents.words)
    for f in registry:
        if f.safety == "read" and f not in selected and set(f.keywords) & words and set(f.intents) & set(chain) and usable(f):
            selected.append(f)
    # one function per role: the role's alternatives are chosen per target later
    seen_roles: set[str] = set()
    unique: list[FunctionSpec] = []
    for f in selected:
        if f.role and f.role in seen_roles:
            continue
        if f.role:
            seen_roles.add(f.role)
        unique.append(f)
    return unique, notes


def steps_for(spec: FunctionSpec, alts: list[FunctionSpec], ents: Entities, servers: list[Server]) -> tuple[list[PlanStep], list[str]]:
    """Steps running ``spec`` (or a role alternative) on each server it fits."""
    grouped: dict[tuple[str, str], tuple[FunctionSpec, dict[str, Any], list[str]]] = {}
    skipped: list[str] = []
    for server in servers:
        values = binding_values(ents, server)
        for f in alts:
            if not f.runs_on(server.os_family):
                continue
            arg_sets = bind_args(f, values)
            if arg_sets is None:
                continue
            for args in arg_sets:
                key = (f.name, json.dumps(args, sort_keys=True, default=str))
                grouped.setdefault(key, (f, args, []))[2].append(server.minion_id)
            break
        else:
            skipped.append(server.minion_id)
    steps = [
        PlanStep(function=f.name, targets=sorted(ids), args=args, safety=f.safety, requires_approval=f.safety != "read")
        for f, args, ids in grouped.values()
    ]
    notes = [f"{spec.name}: nothing suitable for {', '.join(skipped)} ({_os_of(servers, skipped)})"] if skipped else []
    return steps, notes


def _os_of(servers: list[Server], ids: list[str]) -> str:
    oses = sorted({s.os or s.os_family or "unknown OS" for s in servers if s.minion_id in ids})
    return ", ".join(oses)


def build_steps(ents: Entities, intent: IntentResult, servers: list[Server], registry: Registry) -> tuple[list[PlanStep], list[str]]:
    """Plan steps for the resolved ``servers`` (see module docstring), plus notes."""
    if not servers:
        return [], []
    notes: list[str] = []
    steps: list[PlanStep] = []
    if ents.functions:
        for name in ents.functions:
            spec = registry.get(name)
            if spec is None:
                # Unknown to the registry: keep it visible so the policy refuses it.
                steps.append(PlanStep(function=name, targets=sorted(s.minion_id for s in servers), args={}, safety="blocked"))
                continue
            found, more = steps_for(spec, [spec], ents, servers)
            if not found:
                found = [PlanStep(function=name, targets=sorted(s.minion_id for s in servers), args={}, safety=spec.safety, requires_approval=spec.safety != "read")]
            steps += found
            notes += more
    elif intent.action:
        for name, action_ents in intent.actions or [(intent.action, ents)]:
            spec = registry.get(name)
            if spec is not None:
                more_steps, more_notes = steps_for(spec, alternatives(spec, registry), action_ents, servers)
                steps += more_steps
                notes += more_notes
    elif intent.intent in ("CONFIGURE", "DEPLOY"):
        # A change nothing in the registry makes: ask rather than guess.
        return [], ["no registry function makes this change with what the question names"]
    else:
        specs, notes = select_read_functions(ents, intent.intent, registry, servers)
        if intent.intent in lexicon.WRITE_INTENTS:
            notes.append("no registry function makes this change; planned read-only checks instead")
        for spec in specs:
            more_steps, more_notes = steps_for(spec, alternatives(spec, registry), ents, servers)
            steps += more_steps
            notes += more_notes
    return assign_groups(steps), notes


def assign_groups(steps: list[PlanStep]) -> list[PlanStep]:
    """Reads run together first (group 0); each change runs on its own, in order."""
    group = 0
    for step in steps:
        if step.safety == "read" and not step.requires_approval:
            step.parallel_group = 0
        else:
            group += 1
            step.parallel_group = group
    return steps
