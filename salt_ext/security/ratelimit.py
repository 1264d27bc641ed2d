"""Rate limiting in Redis, per user and per tenant (spec §6.1 layer 4, error RATE001).

A sliding-window log: each bucket key is a sorted set of request timestamps
(Redis server time, milliseconds). One Lua script checks the user's and the
tenant's windows and records the request in both only when both have room,
so a refused request never uses up quota and two masters sharing a Redis
count together. A refusal says how long to wait (``retry_after``, seconds):
until the oldest request in the full window leaves it.

Buckets and limits come from ``serverflow:security:rate_limit:buckets``:
``{bucket: {"user": {"limit", "window"}, "tenant": {"limit", "window"}}}``.
When Redis is unreachable the limiter lets requests through and logs it
(``fail_open: True``, the default) or refuses them with SYS002.
"""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any, Mapping

from salt_ext.errors import ErrorInfo, ServerFlowError
from salt_ext.security.settings import security_settings

log = logging.getLogger(__name__)

# KEYS: one sorted set per scope. ARGV: member, then (limit, window_ms) per key.
# Returns {1, 0, 0} when recorded, or {0, retry_after_ms, index of the full key}.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member = ARGV[1]
local wait, blocked = 0, 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local first = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    local w = tonumber(first[2]) + window - now
    if w < 1 then w = 1 end
    if w > wait then wait = w; blocked = i end
  end
end
if blocked > 0 then return {0, wait, blocked} end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, now .. ':' .. member)
  redis.call('PEXPIRE', key, tonumber(ARGV[2 * i + 1]))
end
return {1, 0, 0}
"""


class RateLimiter:
    """``hit(bucket, tenant_id, user)`` records a request or says RATE001 with ``retry_after``."""

    def __init__(self, settings: Mapping[str, Any], client: Any = None, *, prefix: str = "serverflow:rl") -> None:
        self.conf = security_settings(settings)["rate_limit"]
        self.redis_url = settings.get("redis", {}).get("url")
        self._client = client
        self._script = None
        self.prefix = prefix

    @property
    def client(self) -> Any:
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(self.redis_url, socket_timeout=1, socket_connect_timeout=1)
        return self._client

    def limits(self, bucket: str) -> dict[str, dict[str, float]]:
        buckets = self.conf.get("buckets") or {}
        if bucket not in buckets:
            raise ServerFlowError("SYS003", f"no rate-limit bucket {bucket!r} (known: {', '.join(sorted(buckets))})")
        return buckets[bucket]

    def _keys(self, bucket: str, tenant_id: str, user: str | None) -> list[tuple[str, str, int, int]]:
        out = []
        for scope in ("user", "tenant"):
            rule = self.limits(bucket).get(scope)
            if not rule or (scope == "user" and not user):
                continue
            key = f"{self.prefix}:{bucket}:t:{tenant_id}" if scope == "tenant" else \
                f"{self.prefix}:{bucket}:u:{tenant_id}:{str(user).lower()}"
            out.append((scope, key, int(rule["limit"]), int(float(rule["window"]) * 1000)))
        return out

    def hit(self, bucket: str, tenant_id: str, user: str | None = None) -> ErrorInfo | None:
        """Count one request; None when allowed, else RATE001 (details: scope, limit, window, retry_after)."""
        if not self.conf.get("enabled", True):
            return None
        keys = self._keys(bucket, str(tenant_id), user)
        if not keys:
            return None
        argv: list[Any] = [uuid.uuid4().hex]
        for _, _, limit, window_ms in keys:
            argv += [limit, window_ms]
        try:
            if self._script is None:
                self._script = self.client.register_script(_SCRIPT)
            allowed, wait_ms, index = self._script(keys=[k[1] for k in keys], args=argv)
        except Exception as exc:  # redis.RedisError, OSError ...
            if self.conf.get("fail_open", True):
                log.warning("rate limiter: Redis unavailable (%s); letting the request through", exc)
                return None
            return ErrorInfo("SYS002", f"Redis is unavailable, so requests cannot be rate limited ({exc})")
        if int(allowed) == 1:
            return None
        scope, _, limit, window_ms = keys[int(index) - 1]
        retry_after = max(1, math.ceil(int(wait_ms) / 1000))
        who = "you have" if scope == "user" else "this tenant has"
        return ErrorInfo("RATE001", f"{who} made {limit} {bucket} requests in the last "
                         f"{window_ms // 1000} s; try again in {retry_after} s",
                         {"scope": scope, "bucket": bucket, "limit": limit,
                          "window": window_ms / 1000, "retry_after": retry_after})

    def enforce(self, bucket: str, tenant_id: str, user: str | None = None) -> None:
        """Like ``hit`` but raises the refusal as a ServerFlowError."""
        refused = self.hit(bucket, tenant_id, user)
        if refused is not None:
            raise ServerFlowError(refused.code, refused.message, **refused.details)

    def reset(self, bucket: str, tenant_id: str, user: str | None = None) -> None:
        """Forget the recorded requests (admin unlock, tests)."""
        self.client.delete(*[k[1] for k in self._keys(bucket, str(tenant_id), user)])
