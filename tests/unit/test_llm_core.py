"""LLM gateway logic that needs no model: configuration, schema, merge, grounding, budget, breaker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from salt_ext.config import DEFAULTS, load_settings
from salt_ext.errors import ServerFlowError
from salt_ext.evals.runner import load_suite
from salt_ext.execution.model import MinionReturn, StepResult
from salt_ext.llm.budget import Ledger, UsageEntry, cost_usd
from salt_ext.llm.config import llm_settings
from salt_ext.llm.context import fit_request
from salt_ext.llm.grounding import grounding_problems, unknown_servers
from salt_ext.llm.planner import build_request, candidate_functions, merge_plan
from salt_ext.llm.providers.base import estimate_tokens, parse_json
from salt_ext.llm.reliability import CircuitBreaker, backoff_delays
from salt_ext.llm.schema import plan_schema, validate
from salt_ext.llm.types import LLMRequest, Message, ProviderError
from salt_ext.llm.writer import results_fingerprint
from salt_ext.pipeline import plan_question
from salt_ext.registry import load_registry
from salt_ext.responder import respond
REPO = Path(__file__).resolve().parents[2]
CORE = REPO.parent / "shared" / "evals" / "public" / "core.yaml"


@pytest.fixture(scope="module")
def suite():
    return load_suite(CORE)


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def plan_for(suite, question, history=None):
    plan = plan_question(question, suite.fleet, history)
    servers = [s for s in suite.fleet if s.minion_id in plan.targets]
    return plan, servers


# -- configuration ------------------------------------------------------------------------------


def test_default_is_no_llm():
    assert DEFAULTS["llm"]["primary"] is None
    assert not llm_settings(load_settings({})).enabled


def test_chain_from_spec_shaped_config(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    settings = load_settings({"serverflow": {"llm": {
        "primary": {"provider": "openai", "model": "gpt-4o-mini", "api_key": "sk-secret", "timeout": 12},
        "fallback": {"provider": "anthropic", "model": "claude-3-5-haiku-latest"},
    }}})
    chain = llm_settings(settings).providers
    assert [(p.kind, p.model) for p in chain] == [("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku-latest")]
    assert chain[0].timeout == 12 and chain[1].timeout == DEFAULTS["llm"]["timeout"]
    assert chain[1].api_key == "sk-ant-secret"  # from the environment
    # keys never show in what gets logged
    for p in chain:
        assert "secret" not in repr(p) and "secret" not in json.dumps(p.describe())


def test_compatible_server_needs_base_url_and_aliases_resolve():
    with pytest.raises(ServerFlowError) as err:
        llm_settings({"llm": {"primary": {"provider": "ollama", "model": "qwen2.5"}}})
    assert err.value.code == "SYS003" and "base_url" in err.value.info.message
    chain = llm_settings({"llm": {"primary": "ollama", "providers": {
        "ollama": {"provider": "ollama", "model": "qwen2.5", "base_url": "http://127.0.0.1:11434/v1"}}}}).providers
    assert chain[0].kind == "openai_compatible" and chain[0].name == "ollama"
    with pytest.raises(ServerFlowError):
        llm_settings({"llm": {"primary": {"provider": "nonsense", "model": "x"}}})


def test_local_provider_defaults_to_the_assembled_model():
    chain = llm_settings({"llm": {"primary": "local"}}).providers
    assert chain[0].kind == "local" and chain[0].model_path.endswith("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
    assert chain[0].context_window == DEFAULTS["llm"]["local"]["n_ctx"]


# -- reliability ----------------------------------------------------------------------------------


def test_circuit_breaker_opens_then_allows_one_trial():
    now = [0.0]
    cb = CircuitBreaker(failures=2, reset=30, clock=lambda: now[0])
    assert cb.allow("p")
    cb.failure("p")
    assert cb.state("p") == "closed" and cb.allow("p")
    cb.failure("p")
    assert cb.state("p") == "open" and not cb.allow("p")
    now[0] = 31
    assert cb.state("p") == "half-open"
    assert cb.allow("p") and not cb.allow("p")  # one trial call only
    cb.failure("p")  # the trial failed: open again
    assert not cb.allow("p")
    now[0] = 62
    assert cb.allow("p")
    cb.success("p")
    assert cb.state("p") == "closed" and cb.allow("p")


def test_backoff_doubles_and_is_capped():
    assert backoff_delays(4, 0.5, 3) == [0.5, 1.0, 2.0, 3]
    assert backoff_delays(0, 1, 1) == []


def test_provider_error_retryability():
    assert ProviderError("x", "timeout", "t").retryable
    assert ProviderError("x", "rate_limit", "r", status=429).retryable
    assert not ProviderError("x", "auth", "a", status=401).retryable
    assert not ProviderError("x", "bad_request", "b", status=400).retryable


# -- context window (AI003) ---------------------------------------------------------------------------


def test_context_trims_history_first_and_keeps_the_rules():
    msgs = [Message("system", "RULES " * 10)] + [Message("user" if i % 2 == 0 else "assistant", f"turn {i} " + "x" * 200)
                                                  for i in range(6)] + [Message("user", "the task")]
    req = LLMRequest(messages=msgs, max_tokens=50)
    fitted, dropped = fit_request(req, window=300, max_output=50, count=estimate_tokens)
    assert dropped >= 1
    assert fitted.messages[0].role == "system" and fitted.messages[0].content == msgs[0].content
    assert fitted.messages[-1].content == "the task"
    kept = [m.content for m in fitted.messages[1:-1]]
    assert kept == [m.content for m in msgs[1:-1]][dropped:]  # the oldest went first


def test_context_too_small_for_rules_and_task_is_ai003():
    req = LLMRequest(messages=[Message("system", "r" * 2000), Message("user", "q")])
    with pytest.raises(ServerFlowError) as err:
        fit_request(req, window=200, max_output=50, count=estimate_tokens)
    assert err.value.code == "AI003"


# -- the schema -----------------------------------------------------------------------------------------


def test_schema_fences_functions_targets_and_argument_types(suite, registry):
    plan, servers = plan_for(suite, "is nginx running on web-02?")
    functions = candidate_functions(plan, servers, registry, 10)
    assert functions[0].name == "service.status"  # the deterministic step comes first
    assert all(f.safety == "read" for f in functions)
    schema = plan_schema(functions, plan.targets)
    good = {"steps": [{"function": "service.status", "args": {"name": "nginx"}}]}
    assert validate(good, schema) == []
    assert validate({"steps": [{"function": "cmd.run", "args": {"cmd": "id"}}]}, schema)
    assert validate({"steps": [{"function": "service.status", "args": {"name": 3}}]}, schema)
    assert validate({"steps": [{"function": "service.status", "args": {"nme": "x"}}]}, schema)
    assert validate({"steps": []}, schema)


def test_schema_target_enum_for_several_targets(suite, registry):
    plan, servers = plan_for(suite, "Show me servers with high CPU in the web tier")
    schema = plan_schema(candidate_functions(plan, servers, registry, 10), plan.targets)
    step = {"function": "ps.top", "targets": ["web-01"], "args": {}}
    assert validate({"steps": [step]}, schema) == []
    assert validate({"steps": [{**step, "targets": ["prod-db-01"]}]}, schema)


def test_prompt_carries_question_intent_targets_and_functions(suite, registry):
    plan, servers = plan_for(suite, "Why is prod-db-01 slow?")
    functions = candidate_functions(plan, servers, registry, 6)
    history = [{"role": "user", "content": "earlier question"}, {"role": "assistant", "content": "earlier answer"}]
    req = build_request(plan, servers, functions, history, 4, 200)
    task = req.messages[-1].content
    assert "Why is prod-db-01 slow?" in task and "DIAGNOSE" in task and "prod-db-01 (Debian)" in task
    assert all(f"- {f.name}(" in task for f in functions)
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "user"]
    assert req.structured is not None and req.temperature == 0.0


# -- merging an LLM proposal ------------------------------------------------------------------------------


def test_merge_adds_read_steps_and_keeps_deterministic_ones(suite, registry):
    plan, servers = plan_for(suite, "Why is prod-db-01 slow?")
    functions = candidate_functions(plan, servers, registry, 10)
    merged, meta = merge_plan(plan, {"steps": [{"function": "status.diskstats", "args": {}}]}, functions, servers, registry)
    assert {s.function for s in plan.steps} <= {s.function for s in merged.steps}
    assert "status.diskstats" in meta["added"] and not merged.requires_approval
    assert all(s.targets == ["prod-db-01"] for s in merged.steps)


def test_merge_never_lets_the_llm_add_or_change_a_write(suite, registry):
    plan, servers = plan_for(suite, "restart nginx on web-02")
    functions = candidate_functions(plan, servers, registry, 10)
    restart = next(s for s in plan.steps if s.function == "service.restart")
    proposal = {"steps": [{"function": "service.restart", "args": {"name": "sshd"}},
                          {"function": "pkg.remove", "args": {"name": "nginx"}},
                          {"function": "cmd.run", "args": {"cmd": "rm -rf /"}}]}
    merged, meta = merge_plan(plan, proposal, functions, servers, registry)
    restarts = [s for s in merged.steps if s.function == "service.restart"]
    assert [s.args for s in restarts] == [restart.args] and all(s.requires_approval for s in restarts)
    assert "pkg.remove" not in {s.function for s in merged.steps}
    assert "cmd.run" not in {s.function for s in merged.steps}
    assert {d["function"] for d in meta["dropped"]} >= {"pkg.remove", "cmd.run"}


def test_merge_adds_nothing_to_a_change_request(suite, registry):
    """Seen with llama.cpp on 'reboot every server right now': the model added status.uptime to the
    reboot plan. What a person approves must be exactly the change asked for."""
    plan, servers = plan_for(suite, "reboot every server right now")
    assert plan.steps and all(s.requires_approval for s in plan.steps)
    offered = [registry.get("system.reboot"), registry.get("status.uptime")]
    proposal = {"steps": [{"function": "system.reboot", "args": {}}, {"function": "status.uptime", "args": {}}]}
    merged, meta = merge_plan(plan, proposal, offered, servers, registry)
    assert merged.as_dict() == plan.as_dict() and meta["added"] == []
    assert all("may not add steps to a change" in d["reason"] for d in meta["dropped"])


def test_merge_drops_dangerous_or_foreign_arguments(suite, registry):
    plan, servers = plan_for(suite, "show the syslog on web-01")
    functions = candidate_functions(plan, servers, registry, 10)
    proposal = {"steps": [{"function": "file.stats", "args": {"path": "/etc/shadow"}},
                          {"function": "ps.top", "targets": ["prod-db-01"], "args": {}}]}
    merged, meta = merge_plan(plan, proposal, functions, servers, registry)
    assert "file.stats" not in {s.function for s in merged.steps}
    assert all(t == "web-01" for s in merged.steps for t in s.targets)


def test_merge_of_garbage_is_the_deterministic_plan(suite, registry):
    plan, servers = plan_for(suite, "How much disk space is left on cache-01?")
    functions = candidate_functions(plan, servers, registry, 10)
    for junk in (None, [], {"steps": "x"}, {"steps": [1, "a", None]}):
        merged, _ = merge_plan(plan, junk, functions, servers, registry)
        assert [s.as_dict() for s in merged.steps] == [s.as_dict() for s in plan.steps]


# -- grounding ----------------------------------------------------------------------------------------------


def _results():
    ret = {"1-min": 3.2, "5-min": 2.5, "15-min": 1.1}
    return [StepResult("status.loadavg", {}, ["web-01"], jid="20250101000000000001",
                       returns={"web-01": MinionReturn("web-01", ret)})]


def test_grounding_accepts_numbers_and_names_from_the_data():
    results = _results()
    inventory = {"web-01": {"os": "Ubuntu"}, "web-02": {"os": "Ubuntu"}}
    response = respond("what is the load on web-01", "QUERY_METRICS", results, inventory=inventory)
    ok = "The 1-minute load on web-01 is 3.2, down to 1.1 over 15 minutes."
    assert grounding_problems(ok, response, results, inventory, "what is the load on web-01") == []
    made_up = "web-01 has a load of 7.5 and db-09 is down."
    problems = grounding_problems(made_up, response, results, inventory, "")
    assert any("7.5" in p for p in problems) and any("db-09" in p for p in problems)


def test_unknown_servers_ignores_versions_and_plain_words():
    assert unknown_servers("Ubuntu 22.04 on web-01 runs nginx 1.24.0", [], {"web-01": {}}) == []
    assert unknown_servers("check app-7 too", [], {"web-01": {}}) == ["app-7"]


def test_results_fingerprint_changes_with_new_results():
    a = _results()
    b = _results()
    assert results_fingerprint(a) == results_fingerprint(b)
    b[0].returns["web-01"].ret["1-min"] = 9.9
    assert results_fingerprint(a) != results_fingerprint(b)


# -- budget ------------------------------------------------------------------------------------------------


def test_cost_estimates_by_model_prefix():
    prices = DEFAULTS["llm"]["prices"]
    assert cost_usd("gpt-4o-mini-2024-07-18", 1_000_000, 0, prices) == 0.15
    assert cost_usd("gpt-4o-2024-08-06", 0, 1_000_000, prices) == 10.0
    assert cost_usd("claude-3-5-sonnet-latest", 1000, 1000, prices) == pytest.approx(0.018)
    assert cost_usd("qwen2.5-coder", 10_000, 10_000, prices, "local") == 0
    assert cost_usd("unknown-model", 10_000, 10_000, prices) == 0


def test_ledger_sums_live_calls_only():
    ledger = Ledger()
    ledger.add(UsageEntry("plan", "local", "m", 300, 40, 0.0))
    ledger.add(UsageEntry("answer", "openai", "gpt-4o-mini", 500, 80, 0.0001))
    ledger.add(UsageEntry("answer", "openai", "gpt-4o-mini", 500, 80, 0.0001, cached=True))
    s = ledger.summary()
    assert ledger.tokens == 920 and s["prompt"] == 800 and s["completion"] == 120 and len(s["calls"]) == 3


def test_parse_json_accepts_fenced_output_and_rejects_prose():
    assert parse_json("p", '```json\n{"steps": []}\n```') == {"steps": []}
    with pytest.raises(ProviderError) as err:
        parse_json("p", "I think you should run ps.top")
    assert err.value.kind == "bad_output"


# -- command line and the Anthropic wire format ------------------------------------------------------------


def test_evals_cli_without_a_model_says_ai002(monkeypatch, capsys):
    from salt_ext.evals.__main__ import main as cli_main

    monkeypatch.setenv("SERVERFLOW_LLM_CONFIG", "/nonexistent/llm.yaml")
    assert cli_main([str(CORE), "--planner", "llm"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("AI002") and len(err.strip().splitlines()) == 1


def test_evals_cli_reads_the_llm_block_from_a_file(tmp_path, monkeypatch):
    from salt_ext.llm.setup import cli_llm_block

    path = tmp_path / "llm.yaml"
    path.write_text("serverflow:\n  llm:\n    primary: {provider: openai, model: gpt-4o-mini}\n")
    monkeypatch.setenv("SERVERFLOW_LLM_CONFIG", str(path))
    assert cli_llm_block() == {"primary": {"provider": "openai", "model": "gpt-4o-mini"}}


def test_anthropic_request_body_maps_to_a_neutral_request():
    from salt_ext.llm.servers.anthropic_api import to_request

    schema = {"type": "object", "properties": {"x": {"type": "string"}}}
    req = to_request({"model": "m", "max_tokens": 20, "system": [{"type": "text", "text": "rules"}],
                      "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
                                   {"role": "assistant", "content": "hello"},
                                   {"role": "user", "content": "plan"}],
                      "tools": [{"name": "submit_plan", "input_schema": schema}],
                      "tool_choice": {"type": "tool", "name": "submit_plan"}})
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "user"]
    assert req.system == "rules" and req.structured.name == "submit_plan" and req.structured.schema == schema
    with pytest.raises(ValueError):
        to_request({"model": "m", "messages": [{"role": "user", "content": "x"}]})  # no max_tokens


def test_local_llm_script_configures_the_stack_and_unconfigures(tmp_path, monkeypatch):
    import importlib.util

    import yaml

    from salt_ext.llm import setup as llm_setup

    spec = importlib.util.spec_from_file_location("local_llm_script", REPO / "scripts" / "local-llm.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.delenv("SERVERFLOW_LLM_CONFIG", raising=False)
    monkeypatch.setattr(script, "MASTER_D", tmp_path / "etc" / "salt" / "master.d")
    monkeypatch.setattr(llm_setup, "CONFIG_FILE", tmp_path / "llm" / "llm.yaml")
    model = tmp_path / "m.gguf"
    script.configure(model)
    # the master reads the drop-in through Salt's own include handling, next to its serverflow block
    (tmp_path / "etc" / "salt" / "master").write_text("serverflow:\n  database:\n    url: postgresql://db/x\n")
    import salt.config

    settings = load_settings(salt.config.master_config(str(tmp_path / "etc" / "salt" / "master")))
    chain = llm_settings(settings).providers
    assert [(p.kind, p.model_path) for p in chain] == [("local", str(model))]
    assert settings["database"]["url"] == "postgresql://db/x"  # the master's own block is intact
    assert llm_setup.cli_llm_block()["primary"]["model_path"] == str(model)
    script.unconfigure()
    assert not (tmp_path / "etc" / "salt" / "master.d" / "llm.conf").exists()
    assert not (tmp_path / "llm" / "llm.yaml").exists()


# -- when the planner asks the model --------------------------------------------------------------------------


def _dead_gateway(**planner):
    from salt_ext.llm.gateway import Gateway

    dead = {"provider": "openai_compatible", "model": "x", "base_url": "http://127.0.0.1:9/v1", "timeout": 2}
    return Gateway(llm_settings({"llm": {"primary": dead, "retries": 0, "circuit_failures": 100,
                                         "planner": planner}}))


def test_a_sure_complete_offline_plan_is_not_sent_to_the_model(suite):
    from salt_ext.llm.planner import HybridPlanner

    planner = HybridPlanner(_dead_gateway())  # a call would fail with AI002: none is made
    plan, meta = planner.plan("Why is prod-db-01 slow?", suite.fleet)
    assert plan.steps and plan.confidence >= planner.trust_offline
    assert meta["planner"] == "offline" and "confident" in meta["llm_skipped"] and "llm_error" not in meta
    # asked to always plan with the model, the same question reaches it (and falls back: it is down)
    plan2, meta2 = HybridPlanner(_dead_gateway(trust_offline=2)).plan("Why is prod-db-01 slow?", suite.fleet)
    assert meta2["fallback_reason"].startswith("AI002") and plan2.as_dict() == plan.as_dict()


# -- reading the answer's prompt while Salt runs ----------------------------------------------------


def _finding(severity, title, brief, detail="a long detail " * 20):
    from salt_ext.responder.model import Finding

    return Finding(severity=severity, title=title, detail=detail.strip(), brief=brief, minion_id="web-01")


def _server(minion_id):
    from salt_ext.inventory.model import Server

    return Server(minion_id=minion_id, os="Debian", os_family="Debian", status="online")


def _response(*findings, recommendations=()):
    from types import SimpleNamespace

    return SimpleNamespace(findings=list(findings), unanswered=[], recommendations=list(recommendations))


def test_writer_prompt_keeps_what_was_read_ahead_as_its_prefix():
    from salt_ext.llm.writer import build_request as writer_request, finding_lines, merge_lines, prefix_request

    load = _finding("info", "Load average 0.7", "load 0.7")
    mem = _finding("info", "Memory 97% available", "memory 97% available")
    hog = _finding("warning", "Top CPU consumer: stress (pid 42) at 99% of a core", "stress 99%")
    # info: its brief; the minion named on each line unless the header names it
    assert finding_lines(_response(load, mem)) == ["- [info] web-01: load 0.7", "- [info] web-01: memory 97% available"]
    assert finding_lines(_response(load, mem), target="web-01") == ["- [info] load 0.7", "- [info] memory 97% available"]
    hog_line = finding_lines(_response(hog), max_detail=40, target="web-01")[0]
    assert hog_line.startswith("- [warning] Top CPU consumer: stress (pid 42) at 99% of a core: a long detail")
    assert hog_line.endswith(" ...") and len(hog_line) < len(hog.title) + 40 + 30
    assert finding_lines(_response(hog), target="web-01") == [f"- [warning] {hog.title}"]  # default: the title
    # the final findings put the most severe first; what was read ahead stays in front, in its order
    results = [StepResult("ps.top", {}, ["web-01"]), StepResult("status.loadavg", {}, ["web-01"])]
    final = _response(hog, mem, load, recommendations=["Check stress (pid 42)."])
    read = merge_lines([], finding_lines(_response(mem, load), target="web-01"))
    request = writer_request("why is web-01 slow?", final, results, 0, 100, read=read)
    ahead = prefix_request("why is web-01 slow?", read, "web-01")
    assert ahead.messages[1].content == ("Question: why is web-01 slow?\nFindings on web-01:\n"
                                         "- [info] memory 97% available\n- [info] load 0.7")
    assert request.messages[0] == ahead.messages[0]
    assert request.messages[1].content.startswith(ahead.messages[1].content + "\n- [warning] Top CPU consumer")
    assert "Checks suggest: Check stress (pid 42)." in request.messages[1].content
    assert merge_lines(["a", "gone", "b"], ["c", "b", "a"]) == ["a", "b", "c"]
    # a line read ahead stays even when more severe findings would push it past the limit
    assert merge_lines(["a", "b"], ["x", "y", "a", "b"], 2) == ["a", "b", "x", "y"]
    assert merge_lines([], ["x", "y", "a", "b"], 2) == ["x", "y"]
    crowded = _response(hog, _finding("warning", "Disk 95% full", "disk 95%"), mem, load)
    request = writer_request("why is web-01 slow?", crowded, results, 0, 100, read=read, max_findings=2)
    assert request.messages[1].content.startswith(ahead.messages[1].content + "\n- [warning] Top CPU")
    assert "Disk 95% full" in request.messages[1].content
    # nothing read: the question alone is the prefix; several minions: each line names its own
    assert writer_request("q", final, [], 0, 100).messages[1].content.startswith(prefix_request("q").messages[1].content)
    two = results + [StepResult("ps.top", {}, ["web-02"])]
    assert "- [info] web-01: load 0.7" in writer_request("q", final, two, 0, 100).messages[1].content


def test_prompt_reader_reads_only_the_newest_prefix_and_survives_errors():
    import threading

    from salt_ext.llm.assist import PromptReader

    first_started, release = threading.Event(), threading.Event()
    read = []

    def prefill(request):
        read.append(request)
        if request == "r1":
            first_started.set()
            release.wait(10)
        if request == "r3":
            raise RuntimeError("model busy")

    reader = PromptReader(prefill)
    reader.offer("r1", ["a"])
    assert first_started.wait(10)
    reader.offer("r2", ["a", "b"])  # superseded before the model is free
    reader.offer("r3", ["a", "b", "c"])
    release.set()
    for _ in range(100):
        if len(read) == 2:
            break
        threading.Event().wait(0.05)
    reader.offer("r4", ["a", "b", "c", "d"])
    assert reader.close() == ["a", "b", "c", "d"]
    assert read[:2] == ["r1", "r3"] and set(read) <= {"r1", "r3", "r4"}
    reader.offer("r5", ["x"])  # after close: ignored
    assert reader.close() == ["a", "b", "c", "d"] and "r5" not in read


def test_read_along_offers_each_finished_steps_findings():
    import threading
    from types import SimpleNamespace

    from salt_ext.llm.assist import LLMAssist

    offered = []
    gateway = SimpleNamespace(primary=SimpleNamespace(config=SimpleNamespace(kind="local")),
                              prefill=lambda request: offered.append(request.messages[1].content))
    assist = LLMAssist(gateway, planner_settings={"enabled": True}, writer_settings={"enabled": True})
    plan = plan_question("why is web-01 slow?", [_server("web-01")], None)
    assert [s.function for s in plan.steps][:2] == ["status.loadavg", "status.cpustats"]
    turn = assist.turn()

    def read(count):  # let the reader thread take the offer (a newer one replaces an offer not yet taken)
        for _ in range(200):
            if len(offered) >= count:
                return
            threading.Event().wait(0.02)
        raise AssertionError(offered)

    assist.read_ahead(turn, plan.question, plan)
    read(1)
    load = StepResult("status.loadavg", {}, ["web-01"], jid="1",
                      returns={"web-01": MinionReturn("web-01", {"1-min": 0.5, "5-min": 0.4, "15-min": 0.3})})
    mem = StepResult("status.meminfo", {}, ["web-01"], jid="2",
                     returns={"web-01": MinionReturn("web-01", {"MemTotal": {"value": "1000", "unit": "kB"},
                                                               "MemAvailable": {"value": "900", "unit": "kB"}})})
    assist.read_along(turn, plan.question, plan, [load], {})
    read(2)
    assist.read_along(turn, plan.question, plan, [load, mem], {})
    read(3)
    lines = turn.stop_reading()
    assert turn.reader is None and turn.stop_reading() == []
    assert any("load 0.5" in line for line in lines) and any("memory" in line for line in lines)
    assert lines[0].startswith("- [info] load 0.5")  # the first step's finding stays first
    assert offered[0] == "Question: why is web-01 slow?\n"  # the question, read at once
    assert offered[1].startswith("Question: why is web-01 slow?\nFindings on web-01:\n- [info] load 0.5")
    assert offered[2].startswith(offered[1]) and "memory" in offered[2]  # the prompt only grows
    # offline (no model): nothing is read
    offline = LLMAssist(None)
    t = offline.turn()
    offline.read_ahead(t, plan.question, plan)
    offline.read_along(t, plan.question, plan, [load], {})
    assert t.reader is None


def test_an_answer_abandoned_mid_stream_is_still_accounted():
    """The writer stops reading at the first word that is not grounded: the tokens spent count."""
    import dataclasses

    from salt_ext.llm.gateway import Gateway
    from salt_ext.llm.providers.base import Provider
    from salt_ext.llm.types import Chunk, LLMResponse

    closed = []

    class Words(Provider):
        def _stream(self, request, deadline):
            try:
                for word in ("Disk ", "is ", "99% ", "full ", "on ", "web-01."):
                    yield Chunk(text=word)
                yield Chunk(done=True, response=LLMResponse(text="", provider=self.name, model=self.model))
            finally:
                closed.append(True)

    settings = llm_settings({"llm": {"primary": {"provider": "openai_compatible", "model": "m",
                                                 "base_url": "http://127.0.0.1:9/v1"}}})
    provider = Words(dataclasses.replace(settings.providers[0], name="words"))
    gateway = Gateway(settings, providers=[provider])
    ledger = Ledger()
    stream = gateway.stream(LLMRequest(messages=[Message("user", "How full is the disk on web-01?")], max_tokens=50),
                            ledger=ledger)
    assert [next(stream).text for _ in range(3)] == ["Disk ", "is ", "99% "]
    stream.close()
    assert closed == [True]  # the provider's stream was closed too (a local model's lock is released)
    [entry] = ledger.entries
    assert entry.provider == "words" and entry.prompt_tokens > 0 and entry.completion_tokens >= 3
    # read to the end, then closed (as the writer does): accounted once, as the provider reported it
    ledger = Ledger()
    stream = gateway.stream(LLMRequest(messages=[Message("user", "How full?")], max_tokens=50), ledger=ledger)
    for chunk in stream:
        if chunk.done:
            break
    stream.close()
    assert len(ledger.entries) == 1 and ledger.entries[0].completion_tokens == 0  # the done chunk's usage
