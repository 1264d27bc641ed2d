"""Stage 3: classify the question into one of the spec's eight intents.

An imperative request ("restart nginx") is matched against the registry's
write functions first: the function that fits best (its verbs, topics and the
arguments the question can fill) decides the intent. Otherwise read intents
are scored from cue words and the default intent of each topic named.
"""

from __future__ import annotations

import copy
import re

from salt_ext.pipeline import lexicon
from salt_ext.pipeline.binding import bind_args, binding_values, entity_bound
from salt_ext.pipeline.entities import topic_words_only
from salt_ext.pipeline.model import Entities, IntentResult, Normalized
from salt_ext.registry import FunctionSpec, Registry

# Verbs too vague to make a request a change on their own ("run a report").
SOFT_VERBS = frozenset({"run", "execute", "exec", "call", "invoke", "launch", "make", "set", "end", "push", "release", "free", "add", "apply", "resolve"})
# Ties between read intents go to the more specific one.
TIE_ORDER = ["QUERY_LOGS", "REPORT", "DIAGNOSE", "QUERY_METRICS", "QUERY_INVENTORY"]


def match_action(ents: Entities, registry: Registry) -> tuple[FunctionSpec, str] | None:
    """The write (or blocked) registry function an imperative request asks for.

    Returns the function and the verb that selected it ("" when a keyword
    did). Only functions whose required arguments the question can fill are
    considered, so "restart nginx" is service.restart and "restart web-01"
    is system.reboot. Ties go to the function listed first in the registry.
    """
    head = set(ents.actions)
    words = set(ents.words)
    values = binding_values(ents)
    best: tuple[float, int, FunctionSpec, str] | None = None
    for order, spec in enumerate(registry):
        if spec.safety == "read":
            continue
        verbs = set(spec.verbs)
        head_hit = verbs & head
        word_hit = verbs & words
        kw_hit = set(spec.keywords) & words
        # A verb only counts in an imperative request; a function's own
        # keyword ("highstate", "mkfs") names it even in "do a highstate".
        if not (kw_hit or (head and (head_hit or word_hit))):
            continue
        if bind_args(spec, values) is None:
            continue
        score = 4 * bool(head_hit) + 2 * bool(word_hit) + 3 * bool(kw_hit)
        score += 2 * len(set(spec.topics) & set(ents.topics)) + 2 * entity_bound(spec, values)
        verb = next((v for v in ents.actions if v in verbs), ents.actions[0] if ents.actions else "")
        if best is None or score > best[0]:
            best = (score, order, spec, verb)
    return (best[2], best[3]) if best else None


OBJECT_FIELDS = ("services", "packages", "processes", "pids", "users", "states", "paths", "commands", "ports")


def clause_entities(ents: Entities, verb: str, literal_texts: dict[str, str] | None = None) -> Entities:
    """``ents`` narrowed to the objects named in ``verb``'s own clause.

    "stop nginx and start apache": stop gets nginx, start gets apache. A
    clause naming no object ("stop and start nginx") keeps them all.
    """
    words = set(ents.action_words.get(verb, []))
    if literal_texts:
        words |= {literal_texts[w] for w in words if w in literal_texts}
    narrowed = copy.copy(ents)
    found = False
    for name in OBJECT_FIELDS:
        values = getattr(ents, name)
        mine = [v for v in values if str(v) in words]
        if mine:
            found = True
        setattr(narrowed, name, mine)
    return narrowed if found else ents


def match_actions(ents: Entities, registry: Registry, literal_texts: dict[str, str] | None = None) -> list[tuple[FunctionSpec, str, Entities]]:
    """Every change the request asks for: one (function, verb, entities) per command clause."""
    if len(ents.actions) <= 1:
        found = match_action(ents, registry)
        return [(found[0], found[1], ents)] if found else []
    out: list[tuple[FunctionSpec, str, Entities]] = []
    for verb in ents.actions:
        sub = copy.copy(clause_entities(ents, verb, literal_texts))  # a copy: actions change below
        sub.actions = [verb]
        found = match_action(sub, registry)
        if found and not any(f.name == found[0].name and _same_objects(sub, e) for f, _, e in out):
            out.append((found[0], found[1], sub))
    return out


def _same_objects(a: Entities, b: Entities) -> bool:
    return all(getattr(a, n) == getattr(b, n) for n in OBJECT_FIELDS)


def _read_scores(topic_text: str, ents: Entities, registry: Registry) -> dict[str, float]:
    scores: dict[str, float] = {i: 0.0 for i in TIE_ORDER}
    for pattern, intent, weight in lexicon.INTENT_CUES:
        if re.search(pattern, topic_text):
            scores[intent] += weight
    for topic in ents.topics:
        spec = registry.topics.get(topic)
        if spec is None:
            continue
        intent = spec.intent if spec.intent in lexicon.READ_INTENTS else "QUERY_INVENTORY"
        scores[intent] += 2
    if ents.os or ents.fleet_question:
        scores["QUERY_INVENTORY"] += 1
    return scores


def classify_intent(
    norm: Normalized,
    ents: Entities,
    registry: Registry,
    prior_intent: str | None = None,
) -> IntentResult:
    """Intent, confidence and (for a request to change something) the function asked for."""
    topic_text = topic_words_only(norm.masked)

    if ents.functions:
        spec = registry.get(ents.functions[0])
        if spec and spec.intents:
            intent = spec.intents[0]
        else:
            intent = lexicon.ACTION_VERBS.get(ents.actions[0], "REMEDIATE") if ents.actions else "REMEDIATE"
        return IntentResult(intent, 0.9)

    literal_texts = {f"__lit{i}__": lit.text for i, lit in enumerate(norm.literals)}
    actions = match_actions(ents, registry, literal_texts)
    if actions:
        spec, verb, _ = actions[0]
        # The verb refines the intent only when it is one of the function's own
        # verbs: "deploy the app state" is DEPLOY, "install updates" stays REMEDIATE.
        verb_intent = lexicon.ACTION_VERBS.get(verb) if verb in spec.verbs else None
        if verb_intent in spec.intents:
            intent = verb_intent
        else:
            intent = spec.intents[0] if spec.intents else (verb_intent or "REMEDIATE")
        return IntentResult(intent, 0.92, action=spec.name, actions=[(f.name, e) for f, _, e in actions])

    hard = [v for v in ents.actions if v not in SOFT_VERBS]
    if hard:
        # A change was asked for that no registry function does: say so, and
        # let the planner look around with read-only steps.
        return IntentResult(lexicon.ACTION_VERBS[hard[0]], 0.6)

    scores = _read_scores(topic_text, ents, registry)
    own_cues = any(re.search(p, topic_text) for p, _, _ in lexicon.INTENT_CUES)
    if "topics" in ents.inherited and prior_intent in lexicon.READ_INTENTS and not own_cues:
        # "and on the db servers?": the same kind of question as before
        return IntentResult(prior_intent, 0.75, scores=scores)
    ranked = sorted(TIE_ORDER, key=lambda i: (-scores[i], TIE_ORDER.index(i)))
    top, second = scores[ranked[0]], scores[ranked[1]]
    if top == 0:
        if prior_intent and ents.followup:
            return IntentResult(prior_intent, 0.6, scores=scores)
        fallback = "DIAGNOSE" if ents.has_target_spec() else "QUERY_INVENTORY"
        return IntentResult(fallback, 0.35, scores=scores, recognized=False)
    confidence = 0.55 + 0.4 * (top - second) / top
    if top >= 4:
        confidence += 0.05
    return IntentResult(ranked[0], round(min(confidence, 0.97), 3), scores=scores)
