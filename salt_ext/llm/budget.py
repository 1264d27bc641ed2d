"""Budget: per-tenant rate limits in Redis, token accounting and cost estimates in PostgreSQL.

Rate limits (spec §3.2.2 ``rate_limits``) are fixed one-minute windows per
tenant: ``serverflow:llm:rpm:<tenant>:<minute>`` counts requests and
``...:tpm:...`` tokens. A call first reserves one request and its estimated
tokens; beyond either limit it is refused with RATE001 (and the chat answers
offline). After the call the reservation is corrected to the real usage.
When Redis is unreachable the limiter lets calls through and says so (the
providers' own limits still apply).

Usage rows go to ``llm_usage`` (migration 0005), one per provider call, with
the model's estimated cost; ``messages.tokens_used`` carries the sum per message.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from salt_ext.errors import ServerFlowError

log = logging.getLogger(__name__)


def price_of(model: str, prices: Mapping[str, Any], provider_kind: str = "") -> tuple[float, float]:
    """USD per million tokens (prompt, completion) by the longest matching model-name prefix."""
    if provider_kind == "local":
        return 0.0, 0.0
    best = ""
    for prefix in prices or {}:
        if str(model).startswith(prefix) and len(prefix) > len(best):
            best = prefix
    if not best:
        return 0.0, 0.0
    p = prices[best]
    return float(p[0]), float(p[1])


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int, prices: Mapping[str, Any],
             provider_kind: str = "") -> float:
    pin, pout = price_of(model, prices, provider_kind)
    return round((prompt_tokens * pin + completion_tokens * pout) / 1_000_000, 6)


@dataclass
class UsageEntry:
    purpose: str
    provider: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float = 0.0
    latency_ms: float = 0.0
    cached: bool = False

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        return {"purpose": self.purpose, "provider": self.provider, "model": self.model,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost_usd": self.cost_usd, "latency_ms": round(self.latency_ms, 1), "cached": self.cached}


@dataclass
class Ledger:
    """The LLM calls of one chat turn, stored with the assistant's message."""

    entries: list[UsageEntry] = field(default_factory=list)

    def add(self, entry: UsageEntry) -> None:
        self.entries.append(entry)

    @property
    def tokens(self) -> int:
        return sum(e.total for e in self.entries if not e.cached)

    def summary(self) -> dict[str, Any]:
        live = [e for e in self.entries if not e.cached]
        return {"prompt": sum(e.prompt_tokens for e in live), "completion": sum(e.completion_tokens for e in live),
                "total": self.tokens, "cost_usd": round(sum(e.cost_usd for e in live), 6),
                "calls": [e.as_dict() for e in self.entries]}


def record_usage(conn: Any, tenant_id: str, entries: list[UsageEntry], *, conversation_id: str | None = None,
                 message_id: str | None = None, request_id: str | None = None) -> int:
    """Insert one ``llm_usage`` row per entry (inside the caller's tenant transaction)."""
    for e in entries:
        conn.execute(
            "INSERT INTO llm_usage (tenant_id, conversation_id, message_id, request_id, purpose, provider, model,"
            " prompt_tokens, completion_tokens, cost_usd, latency_ms, cached)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (tenant_id, conversation_id, message_id, request_id, e.purpose, e.provider, e.model, e.prompt_tokens,
             e.completion_tokens, e.cost_usd, e.latency_ms, e.cached))
    return len(entries)


def usage_totals(conn: Any, *, conversation_id: str | None = None, message_id: str | None = None) -> dict[str, Any]:
    """Token and cost sums for the tenant of the transaction, a conversation or a message."""
    where, params = ["NOT cached"], []
    if conversation_id:
        where.append("conversation_id = %s")
        params.append(conversation_id)
    if message_id:
        where.append("message_id = %s")
        params.append(message_id)
    row = conn.execute(
        "SELECT count(*) AS calls, COALESCE(sum(prompt_tokens), 0) AS prompt,"
        " COALESCE(sum(completion_tokens), 0) AS completion, COALESCE(sum(cost_usd), 0) AS cost"
        f" FROM llm_usage WHERE {' AND '.join(where)}", params).fetchone()
    return {"calls": int(row["calls"]), "prompt": int(row["prompt"]), "completion": int(row["completion"]),
            "total": int(row["prompt"]) + int(row["completion"]), "cost_usd": float(row["cost"])}


class RateLimiter:
    """Requests and tokens per minute per tenant, shared by every process through Redis."""

    def __init__(self, redis_url: str | None, requests_per_minute: int, tokens_per_minute: int,
                 clock=time.time) -> None:
        self.rpm = int(requests_per_minute or 0)
        self.tpm = int(tokens_per_minute or 0)
        self.clock = clock
        self._redis = None
        if redis_url and (self.rpm or self.tpm):
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
        self.degraded = False

    def _keys(self, tenant_id: str) -> tuple[str, str, float]:
        now = self.clock()
        window = int(now // 60)
        return (f"serverflow:llm:rpm:{tenant_id}:{window}", f"serverflow:llm:tpm:{tenant_id}:{window}",
                60 - (now % 60))

    def reserve(self, tenant_id: str, tokens: int) -> None:
        """Count one request of ``tokens`` (estimated); RATE001 when over a limit (nothing counted then)."""
        if self._redis is None:
            return
        rkey, tkey, left = self._keys(tenant_id)
        try:
            pipe = self._redis.pipeline()
            pipe.incr(rkey)
            pipe.incrby(tkey, int(tokens))
            pipe.expire(rkey, 120)
            pipe.expire(tkey, 120)
            requests, used, *_ = pipe.execute()
        except Exception as exc:  # noqa: BLE001 - a limiter that cannot count lets calls through
            if not self.degraded:
                log.warning("serverflow: LLM rate limits not enforced, Redis unreachable: %s", exc)
            self.degraded = True
            return
        self.degraded = False
        over = None
        if self.rpm and requests > self.rpm:
            over = f"{self.rpm} LLM requests per minute"
        elif self.tpm and used > self.tpm:
            over = f"{self.tpm} LLM tokens per minute"
        if over:
            try:
                pipe = self._redis.pipeline()
                pipe.decr(rkey)
                pipe.decrby(tkey, int(tokens))
                pipe.execute()
            except Exception:  # noqa: BLE001
                pass
            raise ServerFlowError("RATE001", f"this tenant reached its limit of {over}; "
                                  f"the assistant answers without the LLM for the next {left:.0f} s",
                                  retry_after=round(left, 1))

    def settle(self, tenant_id: str, estimated: int, actual: int) -> None:
        """Replace the estimate of a finished call by its real token count."""
        if self._redis is None or self.degraded or actual == estimated:
            return
        _, tkey, _ = self._keys(tenant_id)
        try:
            self._redis.incrby(tkey, int(actual) - int(estimated))
        except Exception:  # noqa: BLE001
            pass

    def usage(self, tenant_id: str) -> dict[str, int]:
        if self._redis is None:
            return {"requests": 0, "tokens": 0}
        rkey, tkey, _ = self._keys(tenant_id)
        r, t = self._redis.mget(rkey, tkey)
        return {"requests": int(r or 0), "tokens": int(t or 0)}
