"""The hybrid planner: deterministic stages in charge, the LLM proposes steps and arguments.

1. The offline pipeline runs first (normalise, entities, intent, targets,
   registry steps, policy). A refusal, an error, a question back or a plan
   without targets is final: the LLM is not asked. Nor is it when the plan
   is complete and its intent confidence reaches ``planner.trust_offline``
   (most questions): the model would only re-propose it, and on a small CPU
   that call is most of the answer time. It is asked when the intent is
   unsure, or when targets were found but no registry step (read questions
   only: it may then propose read steps).
2. The LLM gets the question, intent, resolved targets (with their OS), the
   recent conversation and the registry functions offered for this question
   (the deterministic plan's functions, then read-only functions of the intent
   and the question's topics that run on the targets' OS). It must answer
   through ``schema.plan_schema``: enums of those functions and targets,
   each function's typed arguments.
3. Merge: the deterministic steps stay (their targets and the arguments bound
   from the question win); the LLM may add arguments the deterministic step
   left open on *read* functions, and add *read* steps to a read-only plan.
   It can never add or alter a change, nor add anything to a plan holding one
   (what a person approves is exactly the change asked for): write functions
   are offered only when the deterministic stage planned them, and their
   arguments are the deterministic ones.
4. ``check_plan`` - the same policy as for any plan - runs on the result;
   an LLM step the policy refuses is dropped (noted), never allowed.

If the LLM is unavailable (AI002), over budget (RATE001) or the context is
too long (AI003), the offline plan is returned with the reason in ``meta``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from typing import Any

from salt_ext.errors import ServerFlowError
from salt_ext.inventory.model import Server
from salt_ext.llm.budget import Ledger
from salt_ext.llm.gateway import Gateway
from salt_ext.llm.schema import PLAN_TOOL, llm_args, plan_schema, validate
from salt_ext.llm.types import LLMRequest, Message, Structured
from salt_ext.pipeline import PlanResult, PlanStep, check_plan, plan_question
from salt_ext.pipeline import lexicon
from salt_ext.pipeline.offline import NOTHING_TO_RUN
from salt_ext.pipeline.planner import assign_groups
from salt_ext.pipeline.policy import check_step
from salt_ext.registry import FunctionSpec, Registry, load_registry

SYSTEM_RULES = (
    "You are ServerFlow's query planner. Choose the Salt functions that answer the user's question about "
    "their servers, only from the list given, and fill in their arguments. Rules: use only the listed "
    "functions and targets; give an argument only when the question or the conversation states its value; "
    "at most 4 steps, the fewest that answer the question. Reply with the JSON plan only."
)
MAX_ADDED_STEPS = 3


def candidate_functions(plan: PlanResult, servers: Sequence[Server], registry: Registry, limit: int) -> list[FunctionSpec]:
    """Registry functions offered to the model for this plan (deterministic ones first)."""
    families = {s.os_family for s in servers} or {None}
    intent = plan.intent or "QUERY_INVENTORY"

    def runs(f: FunctionSpec) -> bool:
        return any(f.runs_on(fam) for fam in families)

    chosen: list[FunctionSpec] = []
    for step in plan.steps:
        spec = registry.get(step.function)
        if spec is not None and spec not in chosen:
            chosen.append(spec)
    topics = set(plan.entities.get("topics") or lexicon.DEFAULT_TOPICS.get(intent, []))
    chain = lexicon.INTENT_FALLBACK.get(intent, [intent])
    ranked = [f for f in registry if f.safety == "read" and set(f.topics) & topics and set(f.intents) & set(chain) and runs(f)]
    ranked += [f for f in registry if f.safety == "read" and intent in f.intents and runs(f)]
    for f in ranked:
        if len(chosen) >= max(limit, len(plan.steps)):
            break
        if f not in chosen:
            chosen.append(f)
    return chosen


def _signature(spec: FunctionSpec) -> str:
    args = ", ".join(f"{a.name}{'*' if a.required else ''}: {a.type}" for a in llm_args(spec))
    return f"- {spec.name}({args}): {spec.description}"


def build_request(plan: PlanResult, servers: Sequence[Server], functions: list[FunctionSpec],
                  history: list[dict] | None, history_turns: int, max_tokens: int) -> LLMRequest:
    by_id = {s.minion_id: s for s in servers}
    targets = ", ".join(f"{t} ({by_id[t].os or by_id[t].os_family or '?'})" if t in by_id else t for t in plan.targets)
    task = (f"Question: {plan.question.strip()}\nIntent: {plan.intent}\nTargets: {targets}\n"
            f"Functions:\n" + "\n".join(_signature(f) for f in functions))
    messages = [Message("system", SYSTEM_RULES)]
    for turn in (history or [])[-history_turns:] if history_turns else []:
        role = "assistant" if turn.get("role") == "assistant" else "user"
        messages.append(Message(role, str(turn.get("content") or "")[:300]))
    messages.append(Message("user", task))
    schema = plan_schema(functions, list(plan.targets))
    return LLMRequest(messages=messages, structured=Structured(PLAN_TOOL, schema, "Submit the execution plan."),
                      max_tokens=max_tokens, temperature=0.0, purpose="plan")


def merge_plan(plan: PlanResult, proposal: Any, functions: list[FunctionSpec], servers: Sequence[Server],
               registry: Registry) -> tuple[PlanResult, dict[str, Any]]:
    """The deterministic plan with what the LLM proposal adds (see module doc), policy-checked."""
    offered = {f.name: f for f in functions}
    by_id = {s.minion_id: s for s in servers if s.minion_id in plan.targets}
    known = set(by_id)
    steps = [dataclasses.replace(s, args=dict(s.args), targets=list(s.targets)) for s in plan.steps]
    changes = any(s.requires_approval or s.safety != "read" for s in steps)
    added: list[str] = []
    dropped: list[dict[str, str]] = []
    enriched: list[str] = []
    raw_steps = proposal.get("steps") if isinstance(proposal, dict) else None
    for raw in raw_steps if isinstance(raw_steps, list) else []:
        if not isinstance(raw, dict):
            continue
        llm_step = PlanStep.from_dict(raw)
        spec = offered.get(llm_step.function)
        if spec is None:
            dropped.append({"function": llm_step.function, "reason": "not offered for this question"})
            continue
        wanted = [t for t in llm_step.targets if t in known] or sorted(known)
        hosts = [t for t in wanted if spec.runs_on(by_id[t].os_family)]
        llm_args = {k: v for k, v in llm_step.args.items() if v not in (None, "", [], {})}
        same = [s for s in steps if s.function == spec.name]
        if same:
            if spec.safety != "read":
                continue  # a change keeps the deterministic arguments
            for s in same:
                extra = {k: v for k, v in llm_args.items() if k not in s.args}
                if extra and not registry.validate_args(spec.name, {**s.args, **extra}):
                    candidate, error = check_step(dataclasses.replace(s, args={**s.args, **extra}), registry, known)
                    if error is None:
                        s.args.update(extra)
                        enriched.append(f"{spec.name} {sorted(extra)}")
            continue
        if spec.safety != "read":
            dropped.append({"function": spec.name, "reason": "the LLM may not add a change"})
            continue
        if changes:
            # a change request's plan is what a person approves: exactly the change asked for
            dropped.append({"function": spec.name, "reason": "the LLM may not add steps to a change"})
            continue
        if len(added) >= MAX_ADDED_STEPS:
            dropped.append({"function": spec.name, "reason": "too many steps"})
            continue
        if not hosts:
            dropped.append({"function": spec.name, "reason": "runs on none of the targets' OS"})
            continue
        step = PlanStep(function=spec.name, targets=sorted(hosts), args=llm_args, safety=spec.safety,
                        requires_approval=spec.safety != "read")
        checked, error = check_step(step, registry, known)
        if error is not None:
            dropped.append({"function": spec.name, "reason": f"{error.code}: {error.message}"})
            continue
        steps.append(checked)
        added.append(spec.name)
    notes = list(plan.notes)
    if added:
        notes.append("llm added: " + ", ".join(added))
    if enriched:
        notes.append("llm arguments: " + "; ".join(enriched))
    merged = dataclasses.replace(plan, steps=assign_groups(steps), notes=notes)
    checked_plan = check_plan(merged, registry, known_targets=[s.minion_id for s in servers])
    if checked_plan.refused and not plan.refused:
        # cannot happen through the checks above; fail closed to the deterministic plan
        dropped.append({"function": "*", "reason": f"merged plan refused: {checked_plan.error}"})
        checked_plan = plan
    return checked_plan, {"added": added, "enriched": enriched, "dropped": dropped}


class HybridPlanner:
    """``plan(question, inventory, history)`` -> (PlanResult, meta); never raises on LLM trouble."""

    def __init__(self, gateway: Gateway | None, registry: Registry | None = None, *, settings: dict | None = None,
                 cache: Any = None) -> None:
        self.gateway = gateway
        self.registry = registry or load_registry()
        cfg = settings or (gateway.llm.section("planner") if gateway else {})
        self.enabled = bool(cfg.get("enabled", True))
        self.max_candidates = int(cfg.get("max_candidates", 10))
        self.history_turns = int(cfg.get("history", 4))
        self.max_tokens = int(cfg.get("max_tokens", 200))
        self.timeout = float(cfg.get("timeout", 45))
        # intent confidence from which a complete offline plan is used without asking the LLM (> 1: always ask)
        self.trust_offline = float(cfg.get("trust_offline", 0.7))
        self.cache = cache

    @staticmethod
    def _unplanned(plan: PlanResult) -> bool:
        """Targets resolved, a read question, but no registry step found: the LLM may propose read steps."""
        return (not plan.steps and plan.intent in lexicon.READ_INTENTS
                and plan.clarification == NOTHING_TO_RUN.get(plan.intent, NOTHING_TO_RUN["*"]))

    def plan(self, question: str, inventory: Sequence[Server], history: list[dict] | None = None, *,
             max_chars: int = 4000, tenant_id: str | None = None, ledger: Ledger | None = None
             ) -> tuple[PlanResult, dict[str, Any]]:
        started = time.monotonic()
        plan = plan_question(question, inventory, history, max_chars=max_chars, registry=self.registry)
        meta: dict[str, Any] = {"planner": "offline"}
        if self.gateway is None or not self.enabled:
            return plan, meta
        if plan.error is not None or plan.refused or not plan.targets or (plan.clarification and not self._unplanned(plan)):
            meta["llm_skipped"] = "the deterministic stages answered (refusal, error, question back or no target)"
            return plan, meta
        if plan.steps and plan.confidence >= self.trust_offline:
            # hybrid mode: the deterministic plan is complete and sure of its intent; a model call
            # (seconds on a small CPU) would only re-propose it, so the answer starts at once
            meta["llm_skipped"] = (f"the offline plan is complete and confident ({plan.confidence:.2f} >= "
                                   f"{self.trust_offline:.2f})")
            return plan, meta
        servers = [s for s in inventory if s.minion_id in set(plan.targets)]
        functions = candidate_functions(plan, servers, self.registry, self.max_candidates)
        request = build_request(plan, servers, functions, history, self.history_turns, self.max_tokens)
        request.timeout = self.timeout
        schema = request.structured.schema
        proposal, response, cached = None, None, False
        cache_key = None
        if self.cache is not None and tenant_id and plan.intent in lexicon.READ_INTENTS and not history:
            cache_key = {"kind": "plan", "intent": plan.intent, "targets": sorted(plan.targets),
                         "functions": [f.name for f in functions]}
            hit = self.cache.lookup(tenant_id, question, cache_key)
            if hit is not None:
                proposal, cached = hit["proposal"], True
                meta["cache"] = {"hit": True, "similarity": hit["similarity"]}
        if proposal is None:
            try:
                response = self.gateway.complete(request, tenant_id=tenant_id, ledger=ledger)
            except ServerFlowError as exc:
                meta["fallback_reason"] = f"{exc.code}: {exc.info.message}"
                meta["llm_error"] = exc.as_dict()
                return plan, meta
            proposal = response.data
        errors = validate(proposal, schema)
        if errors:
            meta.update(planner="offline", fallback_reason="the LLM plan does not follow the schema",
                        schema_errors=errors[:5])
            return plan, meta
        if cache_key is not None and not cached:
            self.cache.store(tenant_id, question, cache_key, {"proposal": proposal})
        merged, merge_meta = merge_plan(plan, proposal, functions, servers, self.registry)
        if merged.steps and not plan.steps:  # the LLM planned what the offline planner could not
            merged = dataclasses.replace(merged, clarification=None)
        meta = {"planner": "hybrid", **merge_meta, "candidates": [f.name for f in functions],
                "proposal": proposal, "plan_ms": round((time.monotonic() - started) * 1000, 1)}
        if response is not None:
            meta.update(response.meta())
        if cached:
            meta["cache"] = {"hit": True}
        return merged, meta


def proposal_text(meta: dict[str, Any]) -> str:
    return json.dumps(meta.get("proposal"), sort_keys=True)
