"""The structured answer (spec §2.3 step 5): summary, findings with evidence,
recommendations, suggested (never executed) actions and follow-up questions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from salt_ext.errors import ERROR_CODES
from salt_ext.responder.numbers import fmt_num

Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def json_safe(value: Any) -> Any:
    """``value`` with only JSON types (dict keys become strings)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    return str(value)


def path_text(path: tuple[Any, ...]) -> str:
    return ".".join(str(key) for key in path)


@dataclass
class Derivation:
    """How a computed value was obtained from other evidence (``numbers.OPS``)."""

    op: str
    inputs: list[Evidence] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "inputs": [e.as_dict() for e in self.inputs]}
        if self.params:
            out["params"] = json_safe(self.params)
        return out


@dataclass
class Evidence:
    """A value the responder read from one minion's return (or computed from such values).

    ``path`` is the key path inside the return of ``function`` in job ``jid``
    (``function == "inventory"``: inside the minion's inventory record).  A
    computed value has ``derived`` set and a path naming the quantity,
    starting with ``=``.
    """

    minion_id: str
    function: str
    jid: str | None
    path: tuple[Any, ...]
    value: Any
    derived: Derivation | None = None

    @property
    def path_str(self) -> str:
        return path_text(self.path)

    def leaves(self) -> Iterator[Evidence]:
        """The read (not computed) evidence this value rests on."""
        if self.derived is None or not self.derived.inputs:
            yield self
            return
        for item in self.derived.inputs:
            yield from item.leaves()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "minion_id": self.minion_id,
            "function": self.function,
            "jid": self.jid,
            "path": self.path_str,
            "value": json_safe(self.value),
        }
        if self.derived is not None:
            out["derived"] = self.derived.as_dict()
        return out


@dataclass
class Finding:
    """One observation about one minion (or the whole request when ``minion_id`` is None)."""

    severity: Severity
    title: str
    detail: str
    evidence: list[Evidence] = field(default_factory=list)
    minion_id: str | None = None
    topic: str = (
        "general"  # load, cpu, memory, disk, inodes, process, service, packages, network, system, health
    )
    code: str | None = None  # spec error code (SRV003, EXEC001 ...) when the finding reports an error
    brief: str = field(default="", repr=False)  # short phrase for the per-server summary line

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_RANK:
            raise ValueError(f"unknown severity {self.severity!r}")
        if self.code is not None and self.code not in ERROR_CODES:
            raise ValueError(f"unknown error code {self.code!r}")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity,
            "title": self.title,
            "detail": self.detail,
            "minion_id": self.minion_id,
            "topic": self.topic,
            "evidence": [e.as_dict() for e in self.evidence],
        }
        if self.code:
            out["code"] = self.code
        return out


@dataclass
class SuggestedAction:
    """A write action the user may approve; the responder never runs it."""

    function: str
    targets: list[str]
    args: dict[str, Any]
    label: str
    reason: str

    requires_approval: bool = field(default=True, init=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "targets": list(self.targets),
            "args": json_safe(self.args),
            "label": self.label,
            "reason": self.reason,
            "requires_approval": True,
        }


@dataclass
class Response:
    summary: str
    findings: list[Finding] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    suggested_actions: list[SuggestedAction] = field(default_factory=list)
    follow_ups: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)

    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity != "info"]

    def evidence(self) -> Iterator[Evidence]:
        for finding in self.findings:
            yield from finding.evidence

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "findings": [f.as_dict() for f in self.findings],
            "recommendations": list(self.recommendations),
            "suggested_actions": [a.as_dict() for a in self.suggested_actions],
            "follow_ups": list(self.follow_ups),
            "unanswered": list(self.unanswered),
        }

    def answer_text(self) -> str:
        """The prose the user reads (summary, findings, recommendations), without citations."""
        parts = [self.summary]
        for finding in self.findings:
            parts.append(finding.title)
            parts.append(finding.detail)
        parts.extend(self.recommendations)
        return "\n".join(parts)

    def as_text(self) -> str:
        """Markdown for a terminal or the chat window."""
        lines: list[str] = [self.summary, ""]
        problems = [f for f in self.findings if f.severity != "info"]
        normal = [f for f in self.findings if f.severity == "info"]
        if problems:
            lines.append("### Findings")
            lines.extend(_finding_lines(f) for f in problems)
            lines.append("")
        if normal:
            lines.append("### Checked" if problems else "### Details")
            lines.extend(_finding_lines(f) for f in normal)
            lines.append("")
        if self.recommendations:
            lines.append("### Recommendations")
            lines.extend(f"- {text}" for text in self.recommendations)
            lines.append("")
        if self.suggested_actions:
            lines.append("### Suggested actions (need approval, not run)")
            for action in self.suggested_actions:
                args = " ".join(f"{k}={v}" for k, v in action.args.items())
                call = f"{action.function} {args}".strip()
                lines.append(
                    f"- **{action.label}**: `{call}` on {', '.join(action.targets)}. {action.reason}"
                )
            lines.append("")
        if self.unanswered:
            lines.append("### No answer")
            lines.append(f"- {', '.join(self.unanswered)} (SRV003 {ERROR_CODES['SRV003']})")
            lines.append("")
        if self.follow_ups:
            lines.append("### You could ask next")
            lines.extend(f"- {text}" for text in self.follow_ups)
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"


def _evidence_text(ev: Evidence) -> str:
    if ev.derived is not None and ev.derived.op == "len":
        what = ev.derived.params.get("name", "items")
        where = f"{ev.function} {ev.path_str}".strip()
        jid = f", jid {ev.jid}" if ev.jid else ""
        return f"{what} = {ev.value} (counted in {where}{jid})"
    if ev.derived is not None:
        sources = ", ".join(sorted({f"{leaf.function} {leaf.path_str}" for leaf in ev.leaves()}))
        value = fmt_num(ev.value) if isinstance(ev.value, (int, float)) else ev.value
        return f"{ev.path_str.lstrip('=')} = {value} (from {sources})"
    value = ev.value
    if isinstance(value, str) and len(value) > 80:
        value = value[:77] + "..."
    where = f"{ev.function} {ev.path_str}".strip() if ev.path else ev.function
    jid = f", jid {ev.jid}" if ev.jid else ""
    return f"{where} = {value!r}{jid}" if isinstance(value, str) else f"{where} = {value}{jid}"


def _finding_lines(finding: Finding) -> str:
    who = f"{finding.minion_id}: " if finding.minion_id else ""
    code = f" [{finding.code}]" if finding.code else ""
    line = f"- **{finding.severity.upper()}** {who}{finding.title}{code}"
    if finding.detail:
        line += f"\n  {finding.detail}"
    if finding.evidence:
        cites = "; ".join(_evidence_text(ev) for ev in finding.evidence[:4])
        more = " ..." if len(finding.evidence) > 4 else ""
        line += f"\n  _evidence ({finding.evidence[0].minion_id}): {cites}{more}_"
    return line
