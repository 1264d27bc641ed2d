"""The LLM gateway: one call, the whole provider chain behind it.

For each provider in order (primary, then the fallbacks):

1. skip it while its circuit breaker is open;
2. trim the request to its context window (AI003 when even the rules and the
   task do not fit);
3. reserve the tenant's rate-limit budget (RATE001 stops everything: it is the
   tenant's limit, not the provider's);
4. call it with its timeout; on a retryable error (timeout, connection, 429,
   5xx) retry with exponential backoff (a 429's ``retry-after`` wins), on any
   other error move on;
5. on success record the usage (tokens, cost) in the turn's ledger.

When every provider failed: ServerFlowError AI002 listing what each one said
(never a key). Streaming works the same way; a provider that dies mid-answer
yields ``Chunk(reset=True)`` before the next provider starts over.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Iterator, Mapping

from salt_ext.errors import ServerFlowError
from salt_ext.llm.budget import Ledger, RateLimiter, UsageEntry, cost_usd
from salt_ext.llm.config import LLMSettings, llm_settings
from salt_ext.llm.context import fit_request, prompt_tokens
from salt_ext.llm.providers import Provider, build_provider
from salt_ext.llm.reliability import CircuitBreaker, backoff_delays
from salt_ext.llm.types import Chunk, LLMRequest, LLMResponse, Message, ProviderError, Usage
from salt_ext.security.masking import mask_text

log = logging.getLogger(__name__)


def masked_request(request: LLMRequest) -> LLMRequest:
    """``request`` with every message masked (spec §6: no secret reaches a model)."""
    messages = [Message(m.role, mask_text(m.content)) for m in request.messages]
    if all(a.content == b.content for a, b in zip(messages, request.messages)):
        return request
    return dataclasses.replace(request, messages=messages)


class Gateway:
    def __init__(self, llm: LLMSettings, *, providers: list[Provider] | None = None,
                 limiter: RateLimiter | None = None, sleep=time.sleep) -> None:
        self.llm = llm
        raw = llm.raw
        self.providers = providers if providers is not None else [build_provider(c, raw.get("local")) for c in llm.providers]
        self.breaker = CircuitBreaker(raw.get("circuit_failures", 3), raw.get("circuit_reset", 60))
        self.retries = int(raw.get("retries", 2))
        self.backoff = float(raw.get("backoff", 0.5))
        self.backoff_max = float(raw.get("backoff_max", 8))
        self.prices = raw.get("prices") or {}
        self.limiter = limiter
        self.sleep = sleep

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], **kwargs: Any) -> "Gateway | None":
        """The gateway of these settings, or None when no provider is configured."""
        llm = llm_settings(settings)
        if not llm.enabled:
            return None
        limits = llm.raw.get("rate_limits") or {}
        redis_url = (settings.get("redis") or {}).get("url")
        limiter = kwargs.pop("limiter", None) or RateLimiter(redis_url, limits.get("requests_per_minute", 0),
                                                              limits.get("tokens_per_minute", 0))
        return cls(llm, limiter=limiter, **kwargs)

    @property
    def primary(self) -> Provider:
        return self.providers[0]

    def describe(self) -> list[dict[str, Any]]:
        """The chain as it may be logged (no key), with each breaker's state."""
        return [{**p.config.describe(), "circuit": self.breaker.state(p.name)} for p in self.providers]

    def prefill(self, request: LLMRequest) -> bool:
        """Let the primary provider read ``request`` ahead (see ``Provider.prefill``); never raises."""
        provider = self.primary
        if self.breaker.state(provider.name) != "closed":  # never spend a half-open breaker's trial call here
            return False
        try:
            return provider.prefill(masked_request(request))
        except ProviderError as exc:
            log.warning("serverflow: LLM %s could not read ahead: %s", provider.name, exc)
            return False

    # -- calls ----------------------------------------------------------------------------
    def complete(self, request: LLMRequest, *, tenant_id: str | None = None, ledger: Ledger | None = None) -> LLMResponse:
        final = None
        for chunk in self.stream(request, tenant_id=tenant_id, ledger=ledger):
            if chunk.done:
                final = chunk.response
        assert final is not None  # stream() either ends with a done chunk or raises
        return final

    def stream(self, request: LLMRequest, *, tenant_id: str | None = None, ledger: Ledger | None = None) -> Iterator[Chunk]:
        # The one way out to a model: secrets in questions, history, results and logs stop here.
        request = masked_request(request)
        failures: list[dict[str, Any]] = []
        too_long: ServerFlowError | None = None
        for provider in self.providers:
            if not self.breaker.allow(provider.name):
                failures.append({"provider": provider.name, "kind": "circuit_open",
                                 "retry_in_s": round(self.breaker.retry_in(provider.name), 1)})
                continue
            max_out = min(int(request.max_tokens or provider.config.max_tokens), provider.config.max_tokens)
            try:
                fitted, dropped = fit_request(request, provider.config.context_window, max_out, provider.count_tokens)
            except ServerFlowError as exc:
                if exc.code != "AI003":
                    raise
                too_long = too_long or exc
                failures.append({"provider": provider.name, "kind": "context", "message": exc.info.message})
                continue
            except ProviderError as exc:  # the local model could not even load to count tokens
                failures.append(exc.as_dict())
                self.breaker.failure(provider.name)
                continue
            estimate = prompt_tokens(fitted.messages, provider.count_tokens) + max_out
            # A local model that timed out is busy or the machine is: trying again only doubles the wait.
            delays = backoff_delays(0 if provider.config.kind == "local" else self.retries, self.backoff, self.backoff_max)
            for attempt in range(len(delays) + 1):
                if self.limiter is not None and tenant_id:
                    self.limiter.reserve(tenant_id, estimate)  # RATE001 propagates
                settled = False
                written: list[str] = []  # the text streamed so far
                started = time.monotonic()
                chunks = provider.stream(fitted)
                try:
                    for chunk in chunks:
                        if chunk.done:
                            response = chunk.response
                            response.attempts = list(failures)
                            self._settle(provider, response, tenant_id, estimate, ledger, request.purpose)
                            settled = True
                            if dropped:
                                response.attempts.append({"provider": provider.name, "kind": "trimmed",
                                                          "history_dropped": dropped})
                            yield chunk
                            return
                        written.append(chunk.text or "")
                        yield chunk
                except GeneratorExit:
                    chunks.close()
                    if settled:  # closed after the final chunk: already accounted
                        raise
                    # the caller stopped reading (a word that was not grounded): what the model
                    # read and wrote until then is still spent, and accounted
                    usage = Usage(estimate - max_out, provider.count_tokens("".join(written)) if written else 0)
                    self._settle(provider, LLMResponse(text="".join(written), provider=provider.name,
                                                       model=provider.model, usage=usage,
                                                       latency_ms=(time.monotonic() - started) * 1000),
                                 tenant_id, estimate, ledger, request.purpose)
                    raise
                except ProviderError as exc:
                    if self.limiter is not None and tenant_id:
                        self.limiter.settle(tenant_id, estimate, estimate if written else 0)
                    failures.append({**exc.as_dict(), "attempt": attempt + 1})
                    log.warning("serverflow: LLM %s failed (attempt %d): %s", provider.name, attempt + 1, exc)
                    if written:
                        yield Chunk(reset=True)
                    if not exc.retryable or attempt >= len(delays):
                        break
                    wait = delays[attempt]
                    if exc.retry_after is not None:
                        wait = min(max(wait, exc.retry_after), self.backoff_max)
                    self.sleep(wait)
            self.breaker.failure(provider.name)
        if too_long is not None and all(f.get("kind") in ("context", "circuit_open") for f in failures):
            raise too_long
        summary = "; ".join(f"{f['provider']}: {f['kind']}" for f in failures) or "no provider configured"
        raise ServerFlowError("AI002", f"no LLM provider answered ({summary})", attempts=failures)

    def _settle(self, provider: Provider, response: LLMResponse, tenant_id: str | None, estimate: int,
                ledger: Ledger | None, purpose: str) -> None:
        self.breaker.success(provider.name)
        if self.limiter is not None and tenant_id:
            self.limiter.settle(tenant_id, estimate, response.usage.total)
        if ledger is not None:
            ledger.add(UsageEntry(purpose=purpose, provider=provider.name, model=provider.model,
                                  prompt_tokens=response.usage.prompt_tokens,
                                  completion_tokens=response.usage.completion_tokens,
                                  cost_usd=cost_usd(provider.model, response.usage.prompt_tokens,
                                                    response.usage.completion_tokens, self.prices, provider.config.kind),
                                  latency_ms=response.latency_ms))
