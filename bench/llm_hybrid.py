"""Benchmark: offline planner vs hybrid with the local 0.5B model, side by side.

For the same diagnosis questions about this machine (its real Salt returns, read
in process through Salt's loader, so no daemon is needed) it prints, per mode:
  - time to the first streamed answer token, median over the runs. "First token"
    is the first ``{"type": "token"}`` delta the chat turn emits: offline, the
    template answer (all of it at once); hybrid, the first word the model wrote,
    released once it is complete and grounded (if a later word is not grounded,
    the template answer replaces the model's and the answer time counts
    instead). Timed from the question (plan + Salt + the model reading its
    prompt + that word);
  - full answer time (plan + Salt + answer), median;
  - LLM tokens per answer;
  - eval pass rate and safety violations over the public eval file, with how
    many cases the model planned (``hybrid, LLM plans all`` asks it for every
    case the deterministic stages do not refuse: the issue's eval);
and the semantic-cache speedup (the same question again, then a paraphrase,
with a private Redis). Needs the local model: `make local-llm`.

Modes: ``offline`` (no model); ``hybrid, LLM plans all`` is the pipeline as it
was before the latency work (the model re-plans every question, a larger
writer prompt, nothing read ahead; its first token is measured the same way,
per word); ``hybrid`` is the product default (the model plans only when the
offline plan is unsure, reads the question and each finished step's findings
while the slower steps run, compact prompt). The plan's steps run at once, as
the engine publishes a parallel group.
Both hybrid modes run interleaved in the same process, so they see the same
machine load.

    .venv/bin/python bench/llm_hybrid.py [--runs 3] [--questions 5] [--no-evals]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from salt_ext.execution.model import MinionReturn, StepResult  # noqa: E402
from salt_ext.inventory.model import Server  # noqa: E402
from salt_ext.llm.assist import LLMAssist  # noqa: E402
from salt_ext.errors import ServerFlowError  # noqa: E402
from salt_ext.llm import local_model  # noqa: E402
from salt_ext.llm.setup import cli_llm_block, local_llm_block  # noqa: E402
from salt_ext.responder import respond  # noqa: E402

HOST = "bench-01"
QUESTIONS = [
    f"why is {HOST} slow?",
    f"check memory and swap on {HOST}",
    f"how much disk space is left on {HOST}?",
    f"what is using the cpu on {HOST}?",
    f"is {HOST} healthy?",
]


def salt_functions():
    """This machine's execution modules, loaded in process (real returns, no daemon)."""
    import salt.config
    import salt.loader

    tmp = Path(tempfile.mkdtemp(prefix="sf-bench-"))
    opts = salt.config.minion_config(None)
    opts.update({"file_client": "local", "cachedir": str(tmp / "cache"), "pki_dir": str(tmp / "pki"),
                 "sock_dir": str(tmp / "sock"), "log_file": str(tmp / "minion.log"), "id": HOST})
    opts["grains"] = salt.loader.grains(opts)
    return salt.loader.minion_mods(opts)


def execute(funcs, plan, on_step=None) -> tuple[list[StepResult], float]:
    """The plan's read steps, run at once as the engine publishes a parallel group; ``on_step``
    gets each finished step, in the order they finish (as ``executor.run_steps`` does)."""
    started = time.perf_counter()
    reads = [s for s in plan.steps if not s.requires_approval]

    def run(step):
        try:
            ret, ok = funcs[step.function](**step.args), True
        except Exception as exc:  # noqa: BLE001 - a failing function is a result too
            ret, ok = f"ERROR: {exc}", False
        return StepResult(step.function, step.args, step.targets, jid=f"bench-{step.function}",
                          returns={HOST: MinionReturn(HOST, ret, success=ok)})

    done = {}
    with ThreadPoolExecutor(max_workers=max(1, len(reads))) as pool:
        futures = {pool.submit(run, step): i for i, step in enumerate(reads)}
        for future in as_completed(futures):
            done[futures[future]] = future.result()
            if on_step is not None:
                on_step(done[futures[future]])
    return [done[i] for i in sorted(done)], (time.perf_counter() - started) * 1000


def turn(assist: LLMAssist, funcs, fleet, question, tenant="bench-tenant", read_ahead=True):
    """One chat turn as ChatService runs it; returns timings (ms) and tokens."""
    started = time.perf_counter()
    first = []
    t = assist.turn()
    plan = assist.plan(t, question, fleet, None, max_chars=4000, tenant_id=tenant)
    inventory = {s.minion_id: s.as_dict() for s in fleet}
    finished = []

    def step_finished(result):
        finished.append(result)
        assist.read_along(t, question, plan, list(finished), inventory)

    if read_ahead:
        # as ChatService does: the model reads the question, then each finished step's findings, while Salt runs
        assist.read_ahead(t, question, plan)
    results, salt_ms = execute(funcs, plan, on_step=step_finished if read_ahead else None)
    results_at = (time.perf_counter() - started) * 1000
    response = respond(question, plan.intent or "", results, inventory=inventory)

    def on_delta(d):
        if d.get("type") == "token" and not first:
            first.append((time.perf_counter() - started) * 1000)

    response = assist.write(t, question, plan, results, inventory, response, on_delta=on_delta, tenant_id=tenant)
    total = (time.perf_counter() - started) * 1000
    meta = t.meta()
    if meta["writer"] != "llm" or not first:
        # offline, or the model's words were withdrawn (not grounded) and the template answered:
        # the answer that stands is the first one, shown whole at the end
        first[:] = [total]
    return {"question": question, "first": first[0], "total": total, "salt": salt_ms, "after_salt": first[0] - results_at, "tokens": meta["tokens"]["total"],
            "planner": meta["planner"], "writer": meta["writer"], "fallback": meta.get("fallback_reason"),
            "summary": response.summary}


def start_redis() -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server")
    if not binary:
        raise SystemExit("redis-server not found (make up installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(50):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    return proc, f"redis://127.0.0.1:{port}/0"


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-evals", action="store_true")
    parser.add_argument("--questions", type=int, default=len(QUESTIONS), help="the first N questions only")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a model call may take here")
    parser.add_argument("--evals", default=str(REPO.parent / "shared" / "evals" / "public" / "core.yaml"))
    args = parser.parse_args()

    try:
        block = cli_llm_block()
    except ServerFlowError as exc:
        found = local_model.find_model()
        if not (found and local_model.llama_cpp_available()):
            print(f"llm_hybrid: not run: {exc}")  # benchmarks never fail `make bench` for a missing model
            return 0
        block = local_llm_block(found)  # this benchmark is about the local 0.5B model
    print(f"model: {block['primary']}; {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}", flush=True)
    funcs = salt_functions()
    fleet = [Server(minion_id=HOST, os="Debian", os_family="Debian", tags=["bench"], status="online")]
    offline = LLMAssist(None)
    # measure the model, not the product's patience: long timeouts, no breaker (the product defaults
    # give up after 45 s and answer offline, which a loaded machine triggers)
    block = {**block, "planner": {"timeout": args.timeout}, "writer": {"timeout": args.timeout},
             "circuit_failures": 1000}
    block["primary"] = {**block["primary"], "timeout": args.timeout}
    settings = {"llm": {**block, "caching": {"enabled": False}}, "redis": {"url": None}}
    hybrid = LLMAssist.from_settings(settings, warm=False)
    hybrid.gateway.primary.llama  # noqa: B018 - load the model before timing
    # the pipeline before the latency work: the model plans every question, the old writer prompt
    before_block = {**settings["llm"], "planner": {**block["planner"], "trust_offline": 2},
                    "writer": {**block["writer"], "max_tokens": 120, "max_findings": 8, "max_detail": 160,
                               "max_result_chars": 300}}
    before = LLMAssist.from_settings({**settings, "llm": before_block}, warm=False)

    rows = {"offline": [], "before": [], "hybrid": []}
    for _ in range(args.runs):
        for q in QUESTIONS[:args.questions]:
            rows["offline"].append(turn(offline, funcs, fleet, q))
            rows["before"].append(turn(before, funcs, fleet, q, read_ahead=False))
            rows["hybrid"].append(turn(hybrid, funcs, fleet, q))
            for mode in ("before", "hybrid"):
                r = rows[mode][-1]
                print(f"  {mode:7} {q!r}: first {r['first']:.0f} ms, total {r['total']:.0f} ms (Salt {r['salt']:.0f}), "
                      f"{r['tokens']} tokens, planner {r['planner']}, writer {r['writer']}"
                      f"{', ' + str(r['fallback']) if r['fallback'] else ''}", flush=True)
    llm_written = {m: sum(r["writer"] == "llm" for r in rows[m]) for m in ("before", "hybrid")}

    evals = {}
    if not args.no_evals:
        from salt_ext.evals.runner import get_planner, load_suite, run_suite

        suite = load_suite(args.evals)
        # offline; the model asked for every plan (what the eval command measures); the product default
        for mode, name, planner_cfg in (("offline", "offline", {}), ("before", "llm", {"trust_offline": 2}),
                                        ("hybrid", "llm", {})):
            cfg = Path(tempfile.mkdtemp(prefix="sf-bench-llm-")) / "llm.yaml"
            cfg.write_text(yaml.safe_dump({"llm": {**block, "planner": {**block["planner"], **planner_cfg}}}))
            os.environ["SERVERFLOW_LLM_CONFIG"] = str(cfg)
            started = time.perf_counter()
            planner = get_planner(name)
            report = run_suite(suite, planner)
            calls = sum(1 for m in getattr(planner, "calls", []) if "llm_skipped" not in m)
            fallbacks = sum(1 for m in getattr(planner, "calls", []) if m.get("fallback_reason"))
            evals[mode] = (report.summary(), time.perf_counter() - started, calls, fallbacks)

    # cache: a private Redis, the same question twice, then a paraphrase
    redis_proc, url = start_redis()
    try:
        cached = LLMAssist.from_settings({"llm": block, "redis": {"url": url}}, warm=False)
        q = QUESTIONS[2]
        results_fixed = None
        timings = []
        for question in (q, q, q.replace("how much", "How much").rstrip("?")):
            started = time.perf_counter()
            t = cached.turn()
            plan = cached.plan(t, question, fleet, None, max_chars=4000, tenant_id="bench-cache")
            if results_fixed is None:
                results_fixed, _ = execute(funcs, plan)
            inventory = {s.minion_id: s.as_dict() for s in fleet}
            response = respond(question, plan.intent or "", results_fixed, inventory=inventory)
            cached.write(t, question, plan, results_fixed, inventory, response, on_delta=None, tenant_id="bench-cache")
            timings.append(((time.perf_counter() - started) * 1000, t.plan.get("cache"), t.answer.get("cache")))
    finally:
        redis_proc.terminate()
        redis_proc.wait()

    o, b, h = rows["offline"], rows["before"], rows["hybrid"]
    print()
    print(f"{'':34}{'offline':>12}{'hybrid, LLM plans all':>23}{'hybrid':>10}")

    def line(label, fn, fmt):
        print(f"{label:34}{fn(o):>12{fmt}}{fn(b):>23{fmt}}{fn(h):>10{fmt}}")

    line("first streamed token, median ms", lambda rs: med(rs, "first"), ".0f")
    line("full answer, median ms", lambda rs: med(rs, "total"), ".0f")
    line("  of which Salt, median ms", lambda rs: med(rs, "salt"), ".0f")
    line("first token after Salt, median ms", lambda rs: med(rs, "after_salt"), ".0f")
    diagnosis = QUESTIONS[0]
    line(f"{diagnosis!r}: first token, med", lambda rs: med([r for r in rs if r["question"] == diagnosis], "first"), ".0f")
    line(f"{diagnosis!r}: full answer, med", lambda rs: med([r for r in rs if r["question"] == diagnosis], "total"), ".0f")
    line("LLM tokens per answer, mean", lambda rs: statistics.mean(r["tokens"] for r in rs), ".0f")
    written = {m: f"{llm_written[m]}/{len(rows[m])}" for m in llm_written}
    print(f"{'answers written by the LLM':34}{'0':>12}{written['before']:>23}{written['hybrid']:>10}")
    print(f"{'speedup vs LLM plans all (median)':34}{'':>12}{'1.0x':>23}"
          f"{med(b, 'total') / med(h, 'total'):>9.1f}x  (first token {med(b, 'first') / med(h, 'first'):.1f}x)")
    if evals:
        def eline(label, fn, fmt):
            print(f"{label:34}{fn(evals['offline']):>12{fmt}}{fn(evals['before']):>23{fmt}}{fn(evals['hybrid']):>10{fmt}}")

        eline("eval pass rate (public file)", lambda e: e[0]["pass_rate"], ".1%")
        eline("eval safety violations", lambda e: e[0]["safety_violations"], "")
        eline("eval cases planned by the model", lambda e: e[2], "")
        eline("  of which fell back to offline", lambda e: e[3], "")
        eline("eval wall time, s", lambda e: e[1], ".1f")
    print()
    miss, hit, para = timings
    print(f"cache: miss {miss[0]:.0f} ms, same question {hit[0]:.0f} ms ({miss[0] / hit[0]:.1f}x; plan {hit[1]}, "
          f"answer {hit[2]}), paraphrase {para[0]:.0f} ms ({miss[0] / para[0]:.1f}x; plan {para[1]}, answer {para[2]})")
    fallbacks = [r["fallback"] for r in h if r["fallback"]]
    if fallbacks:
        print(f"hybrid fallbacks: {len(fallbacks)} ({sorted(set(map(str, fallbacks)))[:3]})")
    print(f"sample hybrid summary: {h[0]['summary'][:300]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
