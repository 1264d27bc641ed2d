"""Rate limiting per user and per tenant in the real Redis."""

from __future__ import annotations

import time
import uuid

import pytest

from salt_ext.security.ratelimit import RateLimiter

pytestmark = pytest.mark.functional


def limiter(settings, user_limit=3, tenant_limit=5, window=1, **extra):
    conf = {"rate_limit": {"buckets": {"chat": {"user": {"limit": user_limit, "window": window},
                                                "tenant": {"limit": tenant_limit, "window": window}}}, **extra}}
    return RateLimiter({**settings, "security": conf})


def test_per_user_limit_says_when_to_retry_and_refusals_use_no_quota(settings):
    rl = limiter(settings)
    tenant = str(uuid.uuid4())
    assert [rl.hit("chat", tenant, "a@x") for _ in range(3)] == [None, None, None]
    refused = rl.hit("chat", tenant, "a@x")
    assert refused.code == "RATE001" and refused.details["scope"] == "user"
    assert refused.details["retry_after"] == 1 and "try again in 1 s" in refused.message
    # another user of the same tenant still has room until the tenant's limit
    assert rl.hit("chat", tenant, "b@x") is None
    assert rl.hit("chat", tenant, "b@x") is None
    tenant_full = rl.hit("chat", tenant, "c@x")
    assert tenant_full.code == "RATE001" and tenant_full.details["scope"] == "tenant"
    time.sleep(1.1)
    assert rl.hit("chat", tenant, "a@x") is None
    with pytest.raises(Exception) as err:
        for _ in range(5):
            rl.enforce("chat", tenant, "a@x")
    assert getattr(err.value, "code", None) == "RATE001"
    assert rl.hit("chat", str(uuid.uuid4()), "a@x") is None  # tenants are separate


def test_longer_windows_report_a_longer_wait(settings):
    rl = limiter(settings, user_limit=1, tenant_limit=100, window=30)
    tenant = str(uuid.uuid4())
    assert rl.hit("chat", tenant, "a@x") is None
    assert 29 <= rl.hit("chat", tenant, "a@x").details["retry_after"] <= 30
    rl.reset("chat", tenant, "a@x")
    assert rl.hit("chat", tenant, "a@x") is None


def test_unreachable_redis_fails_open_or_closed_as_configured(settings):
    down = {**settings, "redis": {"url": "redis://127.0.0.1:1/0"}}
    assert limiter(down).hit("chat", "t", "u") is None
    closed = limiter(down, fail_open=False).hit("chat", "t", "u")
    assert closed.code == "SYS002"
    with pytest.raises(Exception):
        limiter(settings).hit("no-such-bucket", "t", "u")
