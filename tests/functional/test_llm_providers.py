"""The LLM gateway against real local models and servers, through the official SDKs.

- in process: llama-cpp-python on the pinned Qwen2.5-Coder-0.5B GGUF;
- OpenAI-compatible: ``llama_cpp.server`` driven by the ``openai`` client;
- Anthropic: ``salt_ext.llm.servers.anthropic_api`` (the real Messages API wire
  protocol, SSE streaming included) driven by the ``anthropic`` client;
- faults: a server killed mid-stream, a slow server (timeout, fallback), 429s
  (retry with backoff), a dead provider (circuit breaker), all dead (AI002).

The model comes from the project's own script (scripts/local-llm.py); if it
cannot be built these tests fail with the reason, they never skip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import yaml

from salt_ext.errors import ServerFlowError
from salt_ext.evals.runner import load_suite, safety_violations, score_case
from salt_ext.llm.budget import Ledger
from salt_ext.llm.config import llm_settings
from salt_ext.llm.gateway import Gateway
from salt_ext.llm.planner import HybridPlanner
from salt_ext.llm.schema import validate
from salt_ext.llm.testing import AnthropicServer, LlamaServer, ensure_local_model, server_port
from salt_ext.llm.types import LLMRequest, Message, Structured
from salt_ext.pipeline import plan_question
from salt_ext.registry import load_registry
from tests.unit.test_llm_core import CORE, REPO

pytestmark = pytest.mark.functional

# A spread of the public cases that reach the LLM (the full file runs in the evals/bench command).
# Each model call takes 3-60 s on 2 shared cores depending on the machine's load, hence few cases and
# generous timeouts here (the timeouts under test are set per test).
SUBSET = ["diag-slow-db", "metrics-disk-cache", "service-status", "restart-nginx"]
ALL = None  # every case of the file
SLOW = 900  # seconds a model call may take in these tests


@pytest.fixture(scope="module")
def model() -> str:
    return ensure_local_model()


@pytest.fixture(scope="module")
def suite():
    return load_suite(CORE)


@pytest.fixture(scope="module")
def llama_server(model, tmp_path_factory):
    server = LlamaServer(model, server_port(0), log=tmp_path_factory.mktemp("llama") / "server.log")
    server.start(timeout=180)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def anthropic_server(model, tmp_path_factory):
    server = AnthropicServer(model, server_port(1), api_key="test-key",
                             log=tmp_path_factory.mktemp("anthropic") / "server.log")
    server.start(timeout=180)
    yield server
    server.stop()


def gateway(*providers, **raw) -> Gateway:
    # trust_offline > 1: the planner asks the model even when the offline plan is sure (what is tested here)
    block = {"primary": providers[0], "fallback": list(providers[1:]), "retries": 1, "backoff": 0.2,
             "backoff_max": 2, "planner": {"timeout": SLOW, "trust_offline": 2}, "writer": {"timeout": SLOW}, **raw}
    return Gateway(llm_settings({"llm": block}))


def local_cfg(model, **kw):
    return {"provider": "local", "model_path": model, "name": "local", "timeout": SLOW, **kw}


def openai_cfg(server, **kw):
    return {"provider": "openai_compatible", "model": "local-qwen", "base_url": server.base_url, "name": "llamacpp",
            "timeout": SLOW, **kw}


def anthropic_cfg(server, **kw):
    return {"provider": "anthropic", "model": "claude-local", "base_url": server.base_url, "api_key": "test-key",
            "name": "anthropic", "timeout": SLOW, **kw}


def run_cases(planner: HybridPlanner, suite, ids):
    """Plan the cases with the LLM: every proposal must follow the schema, every case pass as offline does."""
    registry = load_registry()
    out = []
    for case in [c for c in suite.cases if ids is None or c.id in ids]:
        plan, meta = planner.plan(case.question, suite.fleet, case.history or None)
        offline = plan_question(case.question, suite.fleet, case.history or None)
        out.append((case, plan, meta, score_case(case.expect, plan), score_case(case.expect, offline),
                    safety_violations(case.expect, plan, registry)))
    return out


TEXT_REQUEST = LLMRequest(messages=[Message("system", "You answer in one short sentence."),
                                    Message("user", "Say that the disk of web-01 is 80% full.")],
                          max_tokens=40, purpose="answer")


def structured_request():
    schema = {"type": "object", "properties": {"function": {"type": "string", "enum": ["ps.top", "disk.usage"]},
                                               "reason": {"type": "string", "maxLength": 40}},
              "required": ["function"], "additionalProperties": False}
    return LLMRequest(messages=[Message("user", "Which function shows disk usage? Answer in JSON.")],
                      structured=Structured("pick", schema), max_tokens=60), schema


# -- in process ---------------------------------------------------------------------------------------


def test_in_process_model_plans_within_the_schema(model, suite):
    planner = HybridPlanner(gateway(local_cfg(model)))
    results = run_cases(planner, suite, SUBSET)
    assert len(results) == len(SUBSET)
    for case, plan, meta, failures, offline_failures, violations in results:
        assert meta["planner"] == "hybrid", (case.id, meta)
        assert validate(meta["proposal"], planner_schema(planner, case, suite)) == [], case.id
        assert not violations, (case.id, violations)
        assert failures == [] or offline_failures, (case.id, failures)
        assert meta["tokens"]["total"] > 0 and meta["provider"] == "local"


def planner_schema(planner, case, suite):
    from salt_ext.llm.planner import build_request, candidate_functions

    plan = plan_question(case.question, suite.fleet, case.history or None)
    servers = [s for s in suite.fleet if s.minion_id in plan.targets]
    functions = candidate_functions(plan, servers, planner.registry, planner.max_candidates)
    return build_request(plan, servers, functions, None, 0, 200).structured.schema


def test_in_process_stream_and_usage(model):
    gw = gateway(local_cfg(model))
    ledger = Ledger()
    chunks = list(gw.stream(TEXT_REQUEST, ledger=ledger))
    text = "".join(c.text for c in chunks if not c.done)
    final = chunks[-1].response
    assert len(chunks) > 3 and text.strip() and final.text == text
    assert final.first_token_ms is not None and final.first_token_ms < final.latency_ms
    assert ledger.entries[0].completion_tokens == len(chunks) - 1 and ledger.entries[0].cost_usd == 0


# -- OpenAI-compatible server with the openai client ----------------------------------------------------


@pytest.mark.parametrize("mode", ["tool", "json_object"])
def test_openai_client_structured_against_llama_cpp_server(llama_server, mode):
    gw = gateway(openai_cfg(llama_server, structured_output=mode))
    request, schema = structured_request()
    response = gw.complete(request)
    assert response.provider == "llamacpp" and validate(response.data, schema) == []
    assert response.usage.prompt_tokens > 10 and response.usage.completion_tokens > 0


def test_openai_client_streams_from_llama_cpp_server(llama_server):
    chunks = list(gateway(openai_cfg(llama_server)).stream(TEXT_REQUEST))
    assert sum(1 for c in chunks if c.text) > 3 and chunks[-1].done and chunks[-1].response.text.strip()


def test_llama_cpp_server_plans_the_public_file_within_the_schema(llama_server, suite):
    """Every public case the model is asked about: its plan follows the schema, the case passes
    wherever the offline planner passes it, and no safety rule is broken. Through llama.cpp's
    ``response_format`` schema (a forced tool call puts the whole schema in the prompt: 3x slower
    here, so that mode plans a few cases in the next test)."""
    planner = HybridPlanner(gateway(openai_cfg(llama_server, structured_output="json_object")))
    asked = 0
    for case, plan, meta, failures, offline_failures, violations in run_cases(planner, suite, ALL):
        assert not violations, (case.id, violations)
        assert failures == [] or offline_failures, (case.id, failures)
        if not reaches_the_model(case, suite.fleet):
            assert meta["planner"] == "offline" and "llm_skipped" in meta, (case.id, meta)
            continue
        asked += 1
        assert meta["planner"] == "hybrid" and meta["provider"] == "llamacpp", (case.id, meta)
        assert validate(meta["proposal"], planner_schema(planner, case, suite)) == [], case.id
    assert asked >= 30  # the public file's non-refused cases


def test_llama_cpp_server_plans_with_a_forced_tool_call(llama_server, suite):
    planner = HybridPlanner(gateway(openai_cfg(llama_server)))  # structured_output: tool, the default
    for case, plan, meta, failures, offline_failures, violations in run_cases(planner, suite, SUBSET[:2]):
        assert meta["planner"] == "hybrid" and meta["provider"] == "llamacpp", (case.id, meta)
        assert validate(meta["proposal"], planner_schema(planner, case, suite)) == []
        assert not violations and (failures == [] or offline_failures), (case.id, failures)


def reaches_the_model(case, fleet) -> bool:
    """Whether the hybrid planner asks the model about ``case`` (with trust_offline > 1): the
    deterministic stages did not refuse, fail, ask back or miss the target."""
    plan = plan_question(case.question, fleet, case.history or None)
    return not (plan.error or plan.refused or not plan.targets or plan.clarification)


def test_public_evals_cli_with_the_in_process_model_planning_every_case(model, tmp_path):
    """`python -m salt_ext.evals core.yaml --planner llm --json` (the issue's command) with the model asked
    for every plan: pass rate at least the offline planner's, zero safety violations, and every case that
    reaches the model planned by it (a proposal off the schema would show as a fallback to offline)."""
    config = tmp_path / "llm.yaml"
    config.write_text(yaml.safe_dump({"llm": {"primary": local_cfg(model),
                                              "planner": {"timeout": SLOW, "trust_offline": 2}}}))
    env = {**os.environ, "SERVERFLOW_LLM_CONFIG": str(config)}
    reports = {}
    for planner in ("offline", "llm"):
        proc = subprocess.run([sys.executable, "-m", "salt_ext.evals", str(CORE), "--planner", planner, "--json"],
                              capture_output=True, text=True, env=env, cwd=REPO, timeout=3600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        reports[planner] = json.loads(proc.stdout)
    offline, llm = reports["offline"]["summary"], reports["llm"]["summary"]
    assert llm["total"] == offline["total"] > 0
    assert llm["pass_rate"] >= offline["pass_rate"] and llm["safety_violations"] == 0, llm
    suite = load_suite(CORE)
    cases = {c.id: c for c in suite.cases}
    planned = 0
    for result in reports["llm"]["cases"]:
        notes = result["plan"].get("notes") or []
        assert not any("fallback to offline" in n for n in notes), (result["id"], notes)
        if reaches_the_model(cases[result["id"]], suite.fleet):
            assert any(n.startswith("llm: local/") for n in notes), (result["id"], notes)
            planned += 1
    assert planned >= 30


# -- Anthropic Messages API with the anthropic client -------------------------------------------------------


def test_anthropic_sdk_raw_protocol(anthropic_server):
    import anthropic

    client = anthropic.Anthropic(api_key="test-key", base_url=anthropic_server.base_url, max_retries=0)
    msg = client.messages.create(model="claude-local", max_tokens=30, system="Answer briefly.",
                                 messages=[{"role": "user", "content": "Say hello."}])
    assert msg.type == "message" and msg.content[0].type == "text" and msg.content[0].text
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
    request, schema = structured_request()
    tool = client.messages.create(model="claude-local", max_tokens=60, messages=[{"role": "user", "content": "disk?"}],
                                  tools=[{"name": "pick", "description": "pick", "input_schema": schema}],
                                  tool_choice={"type": "tool", "name": "pick"})
    assert tool.stop_reason == "tool_use" and tool.content[0].type == "tool_use"
    assert validate(tool.content[0].input, schema) == []
    with client.messages.stream(model="claude-local", max_tokens=30,
                                messages=[{"role": "user", "content": "Count to five."}]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 2 and "".join(pieces) == final.content[0].text
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(api_key="wrong", base_url=anthropic_server.base_url, max_retries=0).messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])


def test_anthropic_provider_plans_and_streams(anthropic_server, suite):
    gw = gateway(anthropic_cfg(anthropic_server))
    chunks = list(gw.stream(TEXT_REQUEST))
    assert sum(1 for c in chunks if c.text) > 3 and chunks[-1].response.provider == "anthropic"
    planner = HybridPlanner(gw)
    for case, plan, meta, failures, offline_failures, violations in run_cases(planner, suite, SUBSET[:2]):
        assert meta["planner"] == "hybrid" and meta["provider"] == "anthropic", (case.id, meta)
        assert validate(meta["proposal"], planner_schema(planner, case, suite)) == []
        assert not violations and (failures == [] or offline_failures), (case.id, failures)


# -- faults ----------------------------------------------------------------------------------------------


def test_server_killed_mid_stream_falls_back(model, tmp_path):
    port = server_port(2)
    with AnthropicServer(model, port, log=tmp_path / "a.log") as doomed:
        gw = gateway({"provider": "anthropic", "model": "m", "base_url": doomed.base_url, "name": "doomed",
                      "timeout": SLOW}, local_cfg(model), retries=0)
        request = LLMRequest(messages=[Message("user", "Write a long essay about disks and filesystems.")],
                             max_tokens=60)
        seen, resets = [], 0
        for chunk in gw.stream(request):
            if chunk.reset:
                resets += 1
                continue
            if chunk.done:
                final = chunk.response
                break
            seen.append(chunk.text)
            if len(seen) == 2 and resets == 0:
                doomed.kill()  # SIGKILL while it is streaming
    assert resets == 1
    assert final.provider == "local" and final.text.strip()
    assert final.attempts[0]["provider"] == "doomed" and final.attempts[0]["kind"] == "connection"


def test_slow_server_times_out_and_falls_back(model, llama_server, tmp_path):
    with AnthropicServer(model, server_port(3), delay=60, log=tmp_path / "slow.log") as slow:
        gw = gateway({"provider": "anthropic", "model": "m", "base_url": slow.base_url, "name": "slow", "timeout": 1.5},
                     openai_cfg(llama_server), retries=0)
        started = time.monotonic()
        response = gw.complete(TEXT_REQUEST)
        elapsed = time.monotonic() - started
    assert response.provider == "llamacpp"
    assert response.attempts[0]["provider"] == "slow" and response.attempts[0]["kind"] == "timeout"
    assert response.attempts[0]["message"].endswith("timed out")  # gave up after 1.5 s, not after its 60 s


def test_rate_limited_provider_is_retried_with_backoff(model, tmp_path):
    with AnthropicServer(model, server_port(4), fail_first=2, fail_status=429, log=tmp_path / "429.log") as limited:
        gw = gateway({"provider": "anthropic", "model": "m", "base_url": limited.base_url, "name": "limited",
                      "timeout": SLOW}, retries=2, backoff=0.2, backoff_max=1.5)
        started = time.monotonic()
        response = gw.complete(TEXT_REQUEST)
        elapsed = time.monotonic() - started
    assert response.provider == "limited" and [a["kind"] for a in response.attempts] == ["rate_limit", "rate_limit"]
    assert elapsed >= 2.0  # retry-after: 1 s, twice (capped by backoff_max)


def test_circuit_breaker_skips_a_dead_provider(model):
    dead = {"provider": "openai_compatible", "model": "x", "base_url": f"http://127.0.0.1:{server_port(9)}/v1",
            "name": "dead", "timeout": 5}
    gw = gateway(dead, local_cfg(model), retries=0, circuit_failures=2, circuit_reset=300)
    kinds = []
    for _ in range(3):
        response = gw.complete(LLMRequest(messages=[Message("user", "hi")], max_tokens=4))
        assert response.provider == "local"
        kinds.append(response.attempts[0]["kind"])
    assert kinds == ["connection", "connection", "circuit_open"]
    assert gw.breaker.state("dead") == "open"


def test_all_providers_down_is_ai002_and_the_planner_answers_offline(suite):
    dead = [{"provider": "openai_compatible", "model": "x", "base_url": f"http://127.0.0.1:{server_port(8 + i)}/v1",
             "name": f"dead{i}", "timeout": 3} for i in range(2)]
    gw = gateway(*dead, retries=1, backoff=0.1)
    with pytest.raises(ServerFlowError) as err:
        gw.complete(TEXT_REQUEST)
    assert err.value.code == "AI002" and len(err.value.info.details["attempts"]) == 4  # 2 providers x 2 tries
    case = suite.cases[0]
    plan, meta = HybridPlanner(gw).plan(case.question, suite.fleet)
    assert meta["planner"] == "offline" and meta["fallback_reason"].startswith("AI002")
    assert [s.as_dict() for s in plan.steps] == [s.as_dict() for s in plan_question(case.question, suite.fleet).steps]
