"""Benchmark: the web chat in headless Chromium vs the same question through `salt-run serverflow.ask`.

Starts a stack of its own (PostgreSQL, Redis, master with the engine and the offline
planner, the demo minions, salt-api) under ``$SERVERFLOW_BENCH_HOME`` (default
``.bench-web/``) on the test ports + ``$SERVERFLOW_BENCH_PORT_OFFSET`` (default 500), and
stops it at the end. Printed side by side, medians of ``--runs`` (20) from the same run:

- browser: pressing Send -> first streamed delta shown, -> complete answer shown
  (Debian chromium driven by playwright-core, tests/e2e/chat_timing.mjs);
- baseline: the same question through the chat client the runner uses
  (``salt_ext.chat.client.ask``: first streamed event, done), and the wall time of the
  whole ``salt-run serverflow.ask`` command (process start included).

    .venv/bin/python bench/web_chat.py [--runs 20] [--question "..."]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.functional.api_stack import PASSWORD, USERS, own_stack  # noqa: E402

E2E = REPO / "tests" / "e2e"
# one user asks every question: lift the chat rate limit as the tests do
MASTER_EXTRA = {"serverflow": {"security": {"rate_limit": {"buckets": {
    "chat": {"user": {"limit": 2000, "window": 60}, "tenant": {"limit": 5000, "window": 60}}}}}}}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    # a stopped benchmark still stops its stack (the `with own_stack` exit runs)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--question", default="why is demo-db-01 slow?")
    args = parser.parse_args()
    subprocess.run(["bash", str(E2E / "install-browser.sh")], check=True, timeout=900)
    home = Path(os.environ.get("SERVERFLOW_BENCH_HOME", REPO / ".bench-web"))
    offset = int(os.environ.get("SERVERFLOW_BENCH_PORT_OFFSET", "500"))

    with own_stack(home, offset, master_extra=MASTER_EXTRA) as (layout, api):
        import salt.config

        from salt_ext.chat.client import ask

        # browser
        config = {"email": USERS["operator"], "password": PASSWORD, "question": args.question, "runs": args.runs}
        proc = subprocess.run(["node", str(E2E / "chat_timing.mjs"), api.base, json.dumps(config)], cwd=E2E,
                              capture_output=True, text=True, timeout=args.runs * 150 + 120)
        lines = proc.stdout.strip().splitlines()
        browser = json.loads(lines[-1]) if lines else {"ok": False, "error": proc.stderr[-2000:]}
        if not browser.get("ok"):
            print("browser run failed:", browser.get("error"), file=sys.stderr)
            return 1
        answered = [r for r in browser["runs"] if not r.get("timeout") and not r.get("failed")]
        unanswered = [r.get("error") or "no answer in 120 s" for r in browser["runs"] if r not in answered]
        if not answered:
            print("no question was answered in the browser:", unanswered[:3], file=sys.stderr)
            return 1
        web_first = [r["first_ms"] for r in answered]
        web_done = [r["done_ms"] for r in answered]

        # baseline: the runner's chat client, in process (what salt-run serverflow.ask does after start-up)
        opts = salt.config.master_config(str(layout.etc / "master"))
        ask(opts, args.question, timeout=120)
        cli_first, cli_done = [], []
        cli_failed = 0
        for _ in range(args.runs):
            first: list[float] = []
            started = time.perf_counter()
            try:
                ask(opts, args.question, timeout=120,
                    on_event=lambda kind, data: first or first.append((time.perf_counter() - started) * 1000))
            except Exception as exc:  # counted and reported, like the browser's
                cli_failed += 1
                print("ask failed:", exc, file=sys.stderr)
                continue
            cli_done.append((time.perf_counter() - started) * 1000)
            cli_first.append(first[0] if first else cli_done[-1])
        # and the whole command, process start included
        wall, wall_failed = [], 0
        argv = [str(layout.venv_bin / "salt-run"), "-c", str(layout.etc), "serverflow.ask", args.question,
                "--out=quiet"]
        for _ in range(args.runs):
            started = time.perf_counter()
            run = subprocess.run(argv, capture_output=True, text=True, timeout=120)
            if run.returncode != 0:
                wall_failed += 1
                print("salt-run failed:", run.stderr[-500:], file=sys.stderr)
                continue
            wall.append((time.perf_counter() - started) * 1000)

    if not cli_done or not wall:
        print("the baseline never answered", file=sys.stderr)
        return 1
    med = statistics.median
    findings = answered[-1]["findings"]
    print(f"\nquestion: {args.question!r}  runs: {args.runs} (after one warm-up)  offline planner  "
          f"findings shown: {findings}")
    print(f"unanswered: browser {len(unanswered)}, chat client {cli_failed}, salt-run {wall_failed} "
          f"(medians over the answered ones)")
    print(f"{'measure':<58}{'median ms':>11}{'p90 ms':>9}")
    rows = [
        ("web: Send -> first streamed delta shown (Chromium)", web_first),
        ("baseline: chat client -> first streamed event", cli_first),
        ("web: Send -> complete answer shown (Chromium)", web_done),
        ("baseline: chat client -> answer (done event)", cli_done),
        ("baseline: `salt-run serverflow.ask` wall time", wall),
    ]
    for name, values in rows:
        print(f"{name:<58}{med(values):>11.1f}{pct(values, 0.9):>9.1f}")
    print(f"ratios (median): web/baseline first delta {med(web_first) / med(cli_first):.2f}, "
          f"web/baseline answer {med(web_done) / med(cli_done):.2f}, "
          f"web answer / salt-run wall {med(web_done) / med(wall):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
