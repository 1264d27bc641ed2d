"""Benchmark: the assistant's own overhead on top of Salt, and planner throughput.

Runs against the `make up` stack (started here if it is not running). Printed side
by side, from the same run:
  - raw LocalClient time of the plan's Salt calls (published together, as the engine does);
  - the full ask (request on the bus -> engine -> pipeline -> Salt -> responder -> done);
  - the difference (the assistant's overhead) and the engine's own overhead measure;
  - time to the first streamed event;
  - offline planner throughput over the public eval file.
Timings are noisy here: medians of N runs, ratios, no pass/fail.

    .venv/bin/python bench/chat_overhead.py [--runs 15] [--question "..."]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from salt_ext.devstack import stack  # noqa: E402
from salt_ext.devstack.layout import Layout  # noqa: E402


def raw_salt(client, steps, timeout=20.0) -> float:
    """Publish every read step at once with LocalClient, wait for every return (ms)."""
    started = time.perf_counter()
    jobs = []
    for step in steps:
        pub = client.run_job(step["targets"], step["function"], kwarg=step["args"], tgt_type="list",
                             timeout=timeout, listen=True)
        jobs.append((pub["jid"], pub["minions"]))
    for jid, minions in jobs:
        for _ in client.get_iter_returns(jid, minions, timeout=timeout, tgt=minions, tgt_type="list"):
            pass
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--question", default="why is demo-db-01 slow?")
    parser.add_argument("--evals", default=str(REPO.parent / "shared" / "evals" / "public" / "core.yaml"))
    args = parser.parse_args()

    layout = Layout(REPO / ".serverflow")
    if not all(stack.status(layout).values()):
        print("starting the make-up stack ...", flush=True)
        stack.up(layout)

    import salt.client
    import salt.config

    from salt_ext.chat.client import ask

    opts = salt.config.master_config(str(layout.etc / "master"))
    client = salt.client.LocalClient(mopts=opts)

    # warm-up (first call loads modules on the minions)
    ask(opts, args.question, timeout=60)
    raw_ms, ask_ms, first_ms, engine_overhead = [], [], [], []
    for _ in range(args.runs):
        first: list[float] = []
        started = time.perf_counter()
        done = ask(opts, args.question, timeout=60,
                   on_event=lambda kind, data: first or first.append((time.perf_counter() - started) * 1000))
        ask_ms.append((time.perf_counter() - started) * 1000)
        first_ms.append(first[0])
        engine_overhead.append(done["timings"]["overhead_ms"])
        steps = [s for s in done["plan"]["steps"] if not s["requires_approval"]]
        raw_ms.append(raw_salt(client, steps))
    client.destroy()

    med = statistics.median
    overhead = [a - r for a, r in zip(ask_ms, raw_ms)]
    print(f"\nquestion: {args.question!r}  runs: {args.runs}  steps: {len(steps)} "
          f"({', '.join(s['function'] for s in steps)})")
    print(f"{'measure':<46}{'median ms':>12}{'p90 ms':>10}")
    rows = [
        ("raw LocalClient, same Salt calls (baseline)", raw_ms),
        ("full ask through the engine", ask_ms),
        ("assistant overhead = ask - raw", overhead),
        ("engine-measured overhead (total - Salt time)", engine_overhead),
        ("first streamed event after the request", first_ms),
    ]
    for name, values in rows:
        p90 = sorted(values)[max(0, int(len(values) * 0.9) - 1)]
        print(f"{name:<46}{med(values):>12.1f}{p90:>10.1f}")
    print(f"ratio ask/raw (median): {med(ask_ms) / med(raw_ms):.2f}   "
          f"goals: overhead <= 150 ms, first event <= 250 ms")

    # planner-only throughput over the public eval file
    import yaml

    from salt_ext.evals.runner import fleet_from_yaml
    from salt_ext.pipeline import plan_question

    data = yaml.safe_load(Path(args.evals).read_text())
    fleet = fleet_from_yaml(data["fleet"])
    cases = data["cases"]
    rounds, started = 0, time.perf_counter()
    while time.perf_counter() - started < 3 or rounds < 2:
        for case in cases:
            plan_question(case["question"], fleet, case.get("history"))
        rounds += 1
    elapsed = time.perf_counter() - started
    print(f"offline planner: {rounds * len(cases) / elapsed:.0f} questions/s "
          f"({len(cases)} eval questions x {rounds} rounds, {elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
