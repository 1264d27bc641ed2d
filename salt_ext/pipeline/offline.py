"""The offline planner: every stage chained, no LLM, nothing executed.

    normalise -> extract entities -> enrich from history -> classify intent
    -> resolve targets -> plan steps -> check_plan (policy)

Context enrichment runs before classification (the spec lists it after)
because "ok, restart it" can only be classified once "it" is known.
"""

from __future__ import annotations

from collections.abc import Sequence

from salt_ext.errors import ErrorInfo
from salt_ext.inventory.model import Server
from salt_ext.pipeline import lexicon
from salt_ext.pipeline.context import Turn, merge_followup, recent_history
from salt_ext.pipeline.entities import extract_entities
from salt_ext.pipeline.fleet import FleetIndex
from salt_ext.pipeline.intent import classify_intent
from salt_ext.pipeline.model import Entities, IntentResult, Normalized, PlanResult
from salt_ext.pipeline.normalize import Vocabulary, build_vocabulary, normalize
from salt_ext.pipeline.planner import build_steps
from salt_ext.pipeline.policy import check_plan
from salt_ext.pipeline.targets import resolve_targets
from salt_ext.registry import Registry, load_registry

DEFAULT_MAX_CHARS = 4000

# When a question resolves to servers but no allowed function answers it.
UNSUPPORTED = (
    "I can only help with your servers: ask about their health ('why is web-1 slow?'), metrics "
    "(CPU, memory, disk, load, uptime), inventory (OS, packages, services, users, network), logs, "
    "or ask for a change (restart a service, kill a process, install a package), which waits "
    "for an approval."
)

NOTHING_TO_RUN = {
    "DEPLOY": "Which Salt state should I apply? For example: 'deploy the webapp state to the web tier'.",
    "CONFIGURE": "I found no allowed function for that change. Which package, service, user, port or state is it about?",
    "REMEDIATE": "I found no allowed function for that change. Which service, process, package or file is it about?",
    "*": "I could not find a safe way to answer that with the functions I am allowed to use. Can you rephrase it?",
}


def understand(
    text: str,
    fleet: FleetIndex,
    vocabulary: Vocabulary,
    registry: Registry,
    previous: Turn | None = None,
) -> tuple[Normalized, Entities, IntentResult]:
    """Stages 1-4 for one message: what it says, completed by the previous turn."""
    norm = normalize(text, vocabulary)
    ents = extract_entities(norm, fleet, registry)
    ents = merge_followup(ents, norm.masked, previous)
    intent = classify_intent(norm, ents, registry, prior_intent=previous.intent if previous else None)
    return norm, ents, intent


def replay_history(history: list[dict] | None, fleet: FleetIndex, vocabulary: Vocabulary, registry: Registry) -> Turn | None:
    """The conversation so far as the last user turn (with the reply it got)."""
    turn: Turn | None = None
    for msg in recent_history(history):
        role = msg.get("role")
        if role == "user":
            _, ents, intent = understand(msg["content"], fleet, vocabulary, registry, turn)
            turn = Turn(ents, intent.intent)
        elif role == "assistant" and turn is not None:
            reply = extract_entities(normalize(msg["content"], vocabulary), fleet, registry)
            reply.functions = []  # an answer quoting a function asks for nothing
            turn.reply = reply
    return turn


def _input_error(question: object, max_chars: int) -> ErrorInfo | None:
    if not isinstance(question, str) or not question.strip():
        return ErrorInfo("AI001", "The message is empty: ask a question about your servers, e.g. 'how much disk space is left on web-01?'.")
    if len(question) > max_chars:
        return ErrorInfo(
            "AI001",
            f"The message is {len(question)} characters long; the limit is {max_chars}. Shorten it or split it into several questions.",
            {"length": len(question), "max_chars": max_chars},
        )
    return None


def plan_question(
    question: str,
    inventory: Sequence[Server],
    history: list[dict] | None = None,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    registry: Registry | None = None,
) -> PlanResult:
    """Plan (never run) what answering ``question`` about ``inventory`` takes.

    ``history`` is the conversation so far as ``{"role": "user"|"assistant",
    "content": str}`` messages (the last 10 are used). The result is already
    policy-checked: refused plans carry no step, writes require approval.
    """
    error = _input_error(question, max_chars)
    if error is not None:
        return PlanResult(question=question if isinstance(question, str) else "", error=error, clarification=error.message)

    registry = registry or load_registry()
    fleet = FleetIndex.build(inventory)
    vocabulary = build_vocabulary(registry, inventory)
    previous = replay_history(history, fleet, vocabulary, registry)
    norm, ents, intent = understand(question, fleet, vocabulary, registry, previous)

    if not intent.recognized and not ents.has_target_spec() and not ents.has_objects():
        # Nothing in the question is about servers: say what can be asked instead of guessing.
        error = ErrorInfo("AI001", UNSUPPORTED)
        return PlanResult(question=question, normalized=norm.text, intent=None, confidence=intent.confidence,
                          entities=ents.as_dict(), error=error, clarification=UNSUPPORTED)

    write = intent.intent in lexicon.WRITE_INTENTS or intent.action is not None or bool(ents.functions)
    resolution = resolve_targets(ents, fleet, write=write)
    servers = [fleet.servers[t.lower()] for t in resolution.targets]
    steps, notes = build_steps(ents, intent, servers, registry)
    if norm.corrections:
        notes.insert(0, "spelling: " + ", ".join(f"{a} -> {b}" for a, b in norm.corrections.items()))
    clarification = resolution.clarification
    if resolution.error is None and clarification is None and servers and not steps:
        clarification = NOTHING_TO_RUN.get(intent.intent, NOTHING_TO_RUN["*"])

    plan = PlanResult(
        question=question,
        normalized=norm.text,
        intent=intent.intent,
        confidence=intent.confidence,
        entities=ents.as_dict(),
        targets=resolution.targets,
        steps=steps,
        error=resolution.error,
        clarification=clarification,
        notes=notes,
    )
    return check_plan(plan, registry, known_targets=fleet.all_ids())
