"""What every provider offers: ``complete`` and ``stream`` over one ``LLMRequest``.

``complete`` is built on ``stream`` so both honour the same total deadline
(``timeout``): a slow server is abandoned between two tokens, not only when
its first byte is late.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterator

from salt_ext.llm.config import ProviderConfig
from salt_ext.llm.types import Chunk, LLMRequest, LLMResponse, ProviderError, Usage


def estimate_tokens(text: str) -> int:
    """A provider-independent upper-ish estimate (BPE tokenizers average ~3.5-4 chars per token)."""
    return max(1, (len(text or "") * 10 + 34) // 35)


class Provider:
    """Base class: subclasses implement ``_stream`` (chunks, then a final Chunk(done=True))."""

    kind = "base"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.name = config.name
        self.model = config.model

    # -- to implement -------------------------------------------------------------------
    def _stream(self, request: LLMRequest, deadline: float) -> Iterator[Chunk]:
        raise NotImplementedError

    def prefill(self, request: LLMRequest) -> bool:
        """Read ``request``'s messages ahead, so a later request starting with them answers sooner.

        Only a model in this process can keep what it read (llama.cpp's KV cache);
        a remote server gets nothing here (their own prompt caches need no help).
        """
        return False

    # -- shared ---------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    def limits(self, request: LLMRequest) -> tuple[int, float, float]:
        cfg = self.config
        max_tokens = min(int(request.max_tokens or cfg.max_tokens), cfg.max_tokens)
        temperature = cfg.temperature if request.temperature is None else request.temperature
        timeout = min(float(request.timeout or cfg.timeout), cfg.timeout)
        return max_tokens, temperature, timeout

    def stream(self, request: LLMRequest) -> Iterator[Chunk]:
        """Chunks of text as they come; the last has ``done`` and the full LLMResponse."""
        _, _, timeout = self.limits(request)
        deadline = time.monotonic() + timeout
        for chunk in self._stream(request, deadline):
            if not chunk.done and time.monotonic() > deadline:
                raise ProviderError(self.name, "timeout", f"no complete answer within {timeout:g} s")
            yield chunk

    def complete(self, request: LLMRequest) -> LLMResponse:
        final = None
        for chunk in self.stream(request):
            if chunk.done:
                final = chunk.response
        if final is None:
            raise ProviderError(self.name, "bad_output", "the stream ended without a final message")
        return final

    # -- helpers for subclasses -------------------------------------------------------------
    def finish(self, request: LLMRequest, text: str, usage: Usage, started: float, first: float | None,
               finish_reason: str | None, data: Any = None) -> Chunk:
        if request.structured is not None and data is None:
            data = parse_json(self.name, text)
        if not usage.prompt_tokens:
            usage.prompt_tokens = sum(self.count_tokens(m.content) + 4 for m in request.messages)
        if not usage.completion_tokens:
            usage.completion_tokens = self.count_tokens(text) if text else 0
        now = time.monotonic()
        response = LLMResponse(text=text, provider=self.name, model=self.model, usage=usage, data=data,
                               latency_ms=(now - started) * 1000,
                               first_token_ms=(first - started) * 1000 if first else None,
                               finish_reason=finish_reason)
        return Chunk(done=True, response=response)


def parse_json(provider: str, text: str) -> Any:
    """The JSON object in ``text`` (a model may wrap it in a code fence)."""
    raw = (text or "").strip()
    if raw.startswith("```"):
        raw = raw.strip("`")
        raw = raw[raw.find("{"):] if "{" in raw else raw
    start, end = raw.find("{"), raw.rfind("}")
    if start < 0 or end < start:
        raise ProviderError(provider, "bad_output", f"expected a JSON object, got {text[:120]!r}")
    try:
        return json.loads(raw[start:end + 1])
    except json.JSONDecodeError as exc:
        raise ProviderError(provider, "bad_output", f"invalid JSON ({exc.msg}) in {text[:120]!r}") from None


def sdk_error(name: str, exc: Exception, sdk: Any) -> ProviderError:
    """``exc`` raised by the official ``openai`` or ``anthropic`` SDK (``sdk``) as a ProviderError.

    Both SDKs share the error classes (timeout, connection, HTTP status); a 429's
    ``retry-after`` header is kept for the gateway's backoff.
    """
    if isinstance(exc, sdk.APITimeoutError):
        return ProviderError(name, "timeout", "the request timed out")
    if isinstance(exc, sdk.APIConnectionError):
        return ProviderError(name, "connection", str(exc.__cause__ or exc)[:200])
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        retry_after = None
        try:
            retry_after = float(exc.response.headers.get("retry-after"))
        except (TypeError, ValueError, AttributeError):
            pass
        kind = ("rate_limit" if status == 429 else "auth" if status in (401, 403) else
                "server" if status >= 500 or status in (408, 409) else "bad_request")
        return ProviderError(name, kind, str(getattr(exc, "message", exc))[:200], status=status, retry_after=retry_after)
    if isinstance(exc, (TypeError, ValueError)):  # a request this SDK version does not accept
        return ProviderError(name, "bad_request", f"{type(exc).__name__}: {exc}"[:200])
    return ProviderError(name, "connection", f"{type(exc).__name__}: {exc}"[:200])
