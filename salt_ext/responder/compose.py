"""Stage 5 without an LLM: turn step results into the structured answer.

``respond`` never raises on odd data: errors, silent minions and unexpected
shapes become findings.  Every number it writes comes from a return, the
inventory, or a computation recorded in the evidence (see ``provenance``).
"""

from __future__ import annotations

import logging

from salt_ext.execution.model import StepResult
from salt_ext.responder.evidence import inventory_ev
from salt_ext.responder.model import SEVERITY_RANK, Finding, Response
from salt_ext.responder.observe import intake
from salt_ext.responder.rules import RULES, Context
from salt_ext.responder.thresholds import DEFAULT_THRESHOLDS, Thresholds

log = logging.getLogger(__name__)

MAX_SUMMARY_MINIONS = 15
MAX_BRIEFS = 6
MAX_FOLLOW_UPS = 4
MAX_RECOMMENDATIONS = 8
_TOPIC_WORDS = {
    "load": "load",
    "cpu": "CPU",
    "process": "processes",
    "memory": "memory",
    "disk": "disk",
    "inodes": "inodes",
    "service": "services",
    "packages": "packages",
    "network": "network",
    "system": "system",
    "result": "results",
}


def respond(
    question: str,
    intent: str,
    results: list[StepResult],
    *,
    inventory: dict[str, dict] | None = None,
    thresholds: Thresholds | None = None,
) -> Response:
    """The answer to ``question`` (classified as ``intent``) from the plan's ``results``."""
    question = question if isinstance(question, str) else ""
    intent = (intent or "").upper() if isinstance(intent, str) else ""
    inventory = inventory if isinstance(inventory, dict) else {}
    taken = intake(list(results or []))
    ctx = Context(question, intent, taken.observations, inventory, thresholds or DEFAULT_THRESHOLDS)
    ctx.findings.extend(taken.findings)
    ctx.recommendations.extend((SEVERITY_RANK["warning"], text) for text in taken.recommendations)

    for minion_id in taken.observations.minions:
        for rule in RULES:
            try:
                rule(ctx, minion_id)
            except Exception:  # a shape no rule foresaw must not cost the whole answer
                log.exception("responder rule %s failed on %s", rule.__name__, minion_id)
                ctx.add(
                    Finding(
                        "warning",
                        "Part of the data could not be interpreted",
                        f"The {rule.__name__.replace('_rule', '').replace('_', ' ')} check "
                        "could not read this server's data.",
                        minion_id=minion_id,
                        topic="health",
                    )
                )

    if not results and inventory and intent.startswith(("QUERY", "REPORT")):
        _from_inventory(ctx)
    if not results and not ctx.findings:
        ctx.add(
            Finding(
                "info",
                "No data collected",
                "The plan ran no step, so there is nothing to report.",
                topic="health",
            )
        )

    order = {m: i for i, m in enumerate(taken.observations.minions + taken.unanswered)}
    findings = sorted(
        ctx.findings,
        key=lambda f: (SEVERITY_RANK[f.severity], order.get(f.minion_id, len(order)) if f.minion_id else -1),
    )
    return Response(
        summary=_summary(ctx, findings, taken.observations.minions, taken.unanswered, bool(results)),
        findings=findings,
        recommendations=_ranked(ctx.recommendations, MAX_RECOMMENDATIONS),
        suggested_actions=list(ctx.actions),
        follow_ups=_follow_ups(ctx, findings, taken.observations.minions, taken.unanswered),
        unanswered=list(taken.unanswered),
    )


def _ranked(items: list[tuple[int, str]], limit: int) -> list[str]:
    seen: dict[str, None] = {}
    for _, text in sorted(items, key=lambda item: item[0]):
        seen.setdefault(text, None)
    return list(seen)[:limit]


def _from_inventory(ctx: Context) -> None:
    """A query answered from the inventory alone (the plan needed no Salt call)."""
    for minion_id, record in ctx.inventory.items():
        if not isinstance(record, dict):
            continue
        os_name = " ".join(str(record[k]) for k in ("os", "os_release") if record.get(k))
        tags = record.get("tags") if isinstance(record.get("tags"), list) else []
        services = record.get("services") if isinstance(record.get("services"), list) else []
        parts = []
        if tags:
            parts.append("tags " + ", ".join(map(str, tags)))
        if services:
            parts.append("services " + ", ".join(map(str, services)))
        if record.get("status"):
            parts.append(f"status {record['status']}")
        evidence = [
            e
            for e in (
                inventory_ev(ctx.inventory, minion_id, k) for k in ("os", "os_release", "tags", "services")
            )
            if e
        ]
        ctx.add(
            Finding(
                "info",
                os_name or "Inventory record",
                ("; ".join(parts) + ".") if parts else "",
                evidence,
                minion_id=minion_id,
                topic="system",
                brief=", ".join([os_name] + parts) if os_name else "; ".join(parts),
            )
        )


def _names(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _summary(
    ctx: Context, findings: list[Finding], answered: list[str], unanswered: list[str], had_results: bool
) -> str:
    if not had_results and not any(f.minion_id for f in findings):
        return "No data was collected for this question, so there is nothing to report."
    minions = list(
        dict.fromkeys(
            answered + [f.minion_id for f in findings if f.minion_id and f.minion_id not in unanswered]
        )
    )
    by_minion: dict[str, list[Finding]] = {m: [f for f in findings if f.minion_id == m] for m in minions}
    general = [f for f in findings if f.minion_id is None and f.severity != "info"]
    lines: list[str] = []

    if ctx.diagnosing:
        with_problems = sorted(
            (m for m in minions if any(f.severity != "info" for f in by_minion[m])),
            key=lambda m: min(SEVERITY_RANK[f.severity] for f in by_minion[m]),
        )
        for m in with_problems[:MAX_SUMMARY_MINIONS]:
            problems = [f for f in by_minion[m] if f.severity != "info"]
            text = "; ".join(f.title for f in problems[:3])
            more = " (more below)" if len(problems) > 3 else ""
            lines.append(f"{m}: {text}{more}.")
        if len(with_problems) > MAX_SUMMARY_MINIONS:
            lines.append(f"Also with problems: {_names(with_problems[MAX_SUMMARY_MINIONS:])}.")
        fine = [m for m in minions if m not in with_problems]
        if fine:
            topics = sorted(
                {
                    _TOPIC_WORDS.get(f.topic, f.topic)
                    for m in fine
                    for f in by_minion[m]
                    if f.topic != "health"
                }
            )
            checked = f" ({', '.join(topics)})" if topics else ""
            lines.append(f"No problem found on {_names(fine)} in what was checked{checked}.")
    else:
        # Servers needing attention first ("servers with high CPU" wants those), then the rest in order.
        minions = sorted(
            minions, key=lambda m: min((SEVERITY_RANK[f.severity] for f in by_minion[m]), default=2)
        )
        for m in minions[:MAX_SUMMARY_MINIONS]:
            briefs = list(dict.fromkeys(f.brief or f.title for f in by_minion[m]))[:MAX_BRIEFS]
            lines.append(f"{m}: {'; '.join(briefs)}." if briefs else f"{m}: no data.")
        if len(minions) > MAX_SUMMARY_MINIONS:
            rest = minions[MAX_SUMMARY_MINIONS:]
            flagged = [m for m in rest if any(f.severity != "info" for f in by_minion[m])]
            lines.append(
                f"Also answered: {_names(rest)}."
                + (f" Needing attention among them: {_names(flagged)}." if flagged else "")
            )
    for finding in general:
        lines.append(f"{finding.title}: {finding.detail}")
    if unanswered:
        lines.append(
            f"No answer from {_names(unanswered)} (SRV003), "
            f"so {'it is' if len(unanswered) == 1 else 'they are'} not covered."
        )
    if not lines:
        lines.append("The steps ran but returned nothing to report.")
    return "\n".join(lines)


def _follow_ups(
    ctx: Context, findings: list[Finding], answered: list[str], unanswered: list[str]
) -> list[str]:
    items = list(ctx.follow_ups)
    for minion_id in unanswered:
        items.append(
            (SEVERITY_RANK["critical"], f"When was {minion_id} last seen, and is its salt-minion running?")
        )
    if not any(f.severity != "info" for f in findings) and answered:
        target = answered[0] if len(answered) == 1 else "these servers"
        if ctx.diagnosing:
            items.append(
                (
                    SEVERITY_RANK["info"],
                    f"Show how CPU, memory and disk on {target} changed over the last hour?",
                )
            )
            items.append(
                (SEVERITY_RANK["info"], f"Check the logs of the main service on {target} for errors?")
            )
        else:
            items.append((SEVERITY_RANK["info"], f"Is anything on {target} short of CPU, memory or disk?"))
    return _ranked(items, MAX_FOLLOW_UPS)
