"""Planner evaluations (``python -m salt_ext.evals FILE.yaml``); see runner.py."""

from salt_ext.evals.runner import (
    CaseResult,
    EvalCase,
    EvalReport,
    EvalSuite,
    fleet_from_yaml,
    format_table,
    get_planner,
    load_suite,
    run_file,
    run_suite,
    safety_violations,
    score_case,
)

__all__ = [
    "CaseResult",
    "EvalCase",
    "EvalReport",
    "EvalSuite",
    "fleet_from_yaml",
    "format_table",
    "get_planner",
    "load_suite",
    "run_file",
    "run_suite",
    "safety_violations",
    "score_case",
]
