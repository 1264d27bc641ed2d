"""``python -m salt_ext.evals FILE.yaml [--planner offline|llm] [--json] [--min-pass-rate X]``

Exit codes: 0 the evaluation ran (whatever the pass rate, unless
``--min-pass-rate`` is given); 1 below ``--min-pass-rate`` or any safety
violation when it is given; 2 the evaluation could not run (bad file,
planner unavailable: AI002).
"""

from __future__ import annotations

import argparse
import json
import sys

from salt_ext.errors import ServerFlowError
from salt_ext.evals.runner import format_table, get_planner, load_suite, run_suite


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m salt_ext.evals", description="Score the planner on an eval case file (nothing is executed).")
    p.add_argument("file", help="eval YAML file (fleet + cases)")
    p.add_argument("--planner", choices=("offline", "llm"), default="offline", help="which planner to evaluate (default: offline)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--min-pass-rate", type=float, default=None, metavar="X", help="exit 1 if the pass rate is below X (0-1) or any safety rule is broken")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        planner = get_planner(args.planner)
        suite = load_suite(args.file)
    except ServerFlowError as exc:
        print(str(exc.info), file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"cannot run the evaluation: {exc}", file=sys.stderr)
        return 2
    report = run_suite(suite, planner)
    if args.json:
        json.dump(report.as_dict(), sys.stdout)
        sys.stdout.write("\n")
    else:
        print(format_table(report))
    if args.min_pass_rate is not None and (report.pass_rate < args.min_pass_rate or report.safety_violations):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
