"""Shapes passed between pipeline stages, and the plan the pipeline returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from salt_ext.errors import ErrorInfo


@dataclass(frozen=True)
class Literal:
    """Text taken verbatim from the question: a quoted string or a shell command."""

    text: str
    kind: str  # "quoted" | "command"


@dataclass
class Normalized:
    """A question after normalisation and spelling correction.

    ``text`` is lower case except inside ``literals`` (quoted strings and shell
    commands keep their case: ``ls -R`` is not ``ls -r``). ``masked`` is the
    same text with each literal replaced by ``__litN__`` so later stages never
    mistake a command's words for the question's. ``corrections`` maps each
    corrected word to its replacement.
    """

    original: str
    text: str
    masked: str
    tokens: list[str]
    corrections: dict[str, str] = field(default_factory=dict)
    literals: list[Literal] = field(default_factory=list)

    def literal(self, token: str) -> Literal | None:
        """The literal behind a ``__litN__`` token, if it is one."""
        if token.startswith("__lit") and token.endswith("__"):
            try:
                return self.literals[int(token[5:-2])]
            except (ValueError, IndexError):
                return None
        return None


@dataclass
class Entities:
    """What a question names. Lists keep the order of appearance."""

    servers: list[str] = field(default_factory=list)  # known minion ids named as targets
    unknown_servers: list[str] = field(default_factory=list)  # server-like names not in inventory
    groups: list[list[str]] = field(default_factory=list)  # tag sets: [[prod, web]] = prod AND web
    group_words: list[str] = field(default_factory=list)  # group words no tag matched ("staging")
    all_servers: bool = False
    excluded_servers: list[str] = field(default_factory=list)
    excluded_groups: list[list[str]] = field(default_factory=list)
    os: list[str] = field(default_factory=list)  # os / os_family filters, lower case
    service_filter: list[str] = field(default_factory=list)  # "servers running nginx"
    fleet_question: bool = False  # "which servers ...": the whole fleet is implied
    singular_group: bool = False  # "the web server" (one of several?)
    topics: list[str] = field(default_factory=list)
    thresholds: list[dict[str, Any]] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    protocol: str | None = None
    hosts: list[str] = field(default_factory=list)  # remote hosts (ping/reach/connect)
    users: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)  # module.function named outright
    count: int | None = None  # "top 10"
    log_kind: str | None = None  # syslog | auth | kernel | <service>
    log_pattern: str | None = None
    actions: list[str] = field(default_factory=list)  # imperative verbs, in order
    action_words: dict[str, list[str]] = field(default_factory=dict)  # verb -> words of its clause
    dry_run: bool = False  # "in test mode", "dry run": test=True where supported
    words: list[str] = field(default_factory=list)  # content words (for keyword matching)
    pronoun: bool = False  # "it", "that", "them": refers to an earlier turn
    followup: bool = False  # filled in by context enrichment
    inherited: list[str] = field(default_factory=list)  # field names taken from history

    def has_target_spec(self) -> bool:
        return bool(
            self.servers
            or self.unknown_servers
            or self.groups
            or self.group_words
            or self.all_servers
            or self.os
            or self.service_filter
            or self.fleet_question
        )

    def has_objects(self) -> bool:
        return bool(self.services or self.packages or self.processes or self.pids or self.users or self.states or self.paths or self.commands or self.ports)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            if key in ("words", "action_words"):
                continue
            if value in (None, False, [], {}):
                continue
            out[key] = value
        return out


@dataclass
class IntentResult:
    intent: str
    confidence: float
    recognized: bool = True  # False: nothing in the question matched a topic, object or action
    action: str | None = None  # registry function chosen for an imperative request
    scores: dict[str, float] = field(default_factory=dict)
    # every (function, entities of its clause) asked for: "stop nginx and start apache"
    actions: list[tuple[str, Entities]] = field(default_factory=list)


@dataclass
class TargetResolution:
    targets: list[str]
    error: ErrorInfo | None = None
    clarification: str | None = None


@dataclass
class PlanStep:
    """One Salt function on a set of minions.

    Steps with the same ``parallel_group`` may run together; groups run in
    ascending order (reads first, then each write on its own).
    """

    function: str
    targets: list[str]
    args: dict[str, Any] = field(default_factory=dict)
    safety: str = "blocked"
    requires_approval: bool = True
    parallel_group: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "targets": list(self.targets),
            "args": _json_safe(self.args),
            "safety": self.safety,
            "requires_approval": self.requires_approval,
            "parallel_group": self.parallel_group,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlanStep:
        """Build a step from untrusted data (an LLM plan); the policy decides later."""
        return cls(
            function=str(data.get("function") or data.get("module") or ""),
            targets=[str(t) for t in (data.get("targets") or [])],
            args=dict(data.get("args") or {}),
            safety=str(data.get("safety") or "blocked"),
            requires_approval=bool(data.get("requires_approval", True)),
            parallel_group=int(data.get("parallel_group") or 0),
        )


@dataclass
class PlanResult:
    """The pipeline's answer to one question: a plan, a refusal or a question back."""

    question: str
    normalized: str = ""
    intent: str | None = None
    confidence: float = 0.0
    entities: dict[str, Any] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)
    steps: list[PlanStep] = field(default_factory=list)
    requires_approval: bool = False
    refused: bool = False
    error: ErrorInfo | None = None
    clarification: str | None = None
    notes: list[str] = field(default_factory=list)  # why the plan looks the way it does

    def as_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "normalized": self.normalized,
            "intent": self.intent,
            "confidence": round(self.confidence, 3),
            "entities": _json_safe(self.entities),
            "targets": list(self.targets),
            "steps": [s.as_dict() for s in self.steps],
            "requires_approval": self.requires_approval,
            "refused": self.refused,
            "error": self.error.as_dict() if self.error else None,
            "clarification": self.clarification,
            "notes": list(self.notes),
        }


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
