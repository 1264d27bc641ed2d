"""What goes into and comes out of a provider, whichever it is.

A request is a list of chat messages (the first may be the system rules), an
optional JSON schema the answer must follow (``structured``) and the
generation limits. A response is the text, the parsed JSON when a schema was
given, the token usage and who answered. Providers raise ``ProviderError``;
``retryable`` says whether the same call may succeed if tried again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator


@dataclass
class Message:
    role: str  # system | user | assistant
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass
class Structured:
    """A JSON schema the answer must follow (a forced tool call or a grammar, per provider)."""

    name: str
    schema: dict[str, Any]
    description: str = ""


@dataclass
class LLMRequest:
    messages: list[Message]
    structured: Structured | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    timeout: float | None = None
    stop: list[str] = field(default_factory=list)
    purpose: str = "chat"  # plan | answer | chat (for accounting)

    @property
    def system(self) -> str:
        return "\n\n".join(m.content for m in self.messages if m.role == "system")

    @property
    def turns(self) -> list[Message]:
        return [m for m in self.messages if m.role != "system"]


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)

    def as_dict(self) -> dict[str, int]:
        return {"prompt": self.prompt_tokens, "completion": self.completion_tokens, "total": self.total}


@dataclass
class LLMResponse:
    text: str
    provider: str
    model: str
    usage: Usage = field(default_factory=Usage)
    data: Any = None  # parsed JSON when the request was structured
    latency_ms: float = 0.0
    first_token_ms: float | None = None
    finish_reason: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)  # failures before this answer
    cached: bool = False

    def meta(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model, "tokens": self.usage.as_dict(),
                "latency_ms": round(self.latency_ms, 1),
                **({"first_token_ms": round(self.first_token_ms, 1)} if self.first_token_ms is not None else {}),
                **({"failed_attempts": self.attempts} if self.attempts else {}),
                **({"cached": True} if self.cached else {})}


@dataclass
class Chunk:
    """One piece of a streamed answer; the last one has ``done`` and the full response.

    ``reset``: the provider died mid-answer and the gateway starts over with the next
    one; whatever was received before is void.
    """

    text: str = ""
    done: bool = False
    response: LLMResponse | None = None
    reset: bool = False


StreamIter = Iterator[Chunk]


class ProviderError(Exception):
    """A provider call failed. ``kind``: timeout | connection | rate_limit | server | auth | bad_request | bad_output."""

    RETRYABLE = frozenset({"timeout", "connection", "rate_limit", "server"})

    def __init__(self, provider: str, kind: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        self.provider = provider
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        super().__init__(f"{provider}: {kind}{f' (HTTP {status})' if status else ''}: {message}")

    @property
    def retryable(self) -> bool:
        return self.kind in self.RETRYABLE

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"provider": self.provider, "kind": self.kind, "message": str(self)[:300]}
        if self.status:
            out["status"] = self.status
        return out
