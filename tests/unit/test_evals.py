"""The eval runner: scoring rules, the case files, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from salt_ext.errors import ErrorInfo
from salt_ext.evals import fleet_from_yaml, load_suite, run_suite, safety_violations, score_case
from salt_ext.evals.__main__ import main as cli_main
from salt_ext.pipeline import PlanResult, PlanStep
from salt_ext.registry import load_registry

REPO = Path(__file__).resolve().parents[2]
HELDOUT_LIKE = Path(__file__).parent / "data" / "heldout_like.yaml"
CORE = REPO.parent / "shared" / "evals" / "public" / "core.yaml"
EXTRA_FILES = sorted((Path(__file__).parent / "data").glob("heldout_*.yaml"))  # other fleets, other phrasings
CASE_FILES = list(dict.fromkeys(p for p in (CORE, HELDOUT_LIKE, *EXTRA_FILES) if p.exists()))


def _plan(*steps: PlanStep, **kw) -> PlanResult:
    return PlanResult(question="q", steps=list(steps), **kw)


def test_fleet_from_yaml() -> None:
    servers = fleet_from_yaml({"web-01": {"os": "Ubuntu", "os_family": "Debian", "tags": ["prod"], "services": ["nginx"], "rack": "b2"}, "bare": None})
    assert servers[0].minion_id == "web-01" and servers[0].tags == ["prod"] and servers[0].grains == {"rack": "b2"}
    assert servers[1].minion_id == "bare" and servers[1].services == []


def test_score_case_rules() -> None:
    restart = PlanStep("service.restart", ["web-02"], {"name": "nginx"}, "write", True, 1)
    p = _plan(restart, intent="REMEDIATE", targets=["web-02"], requires_approval=True)
    assert score_case({"intent": "REMEDIATE|CONFIGURE", "targets": ["web-02"], "modules": ["service.restart|service.start"], "args": {"service.restart": {"name": "nginx"}}, "requires_approval": True, "error": None}, p) == []
    failures = score_case({"intent": "DIAGNOSE", "targets": ["web-01"], "modules": ["ps.top"], "modules_exclude": ["service.restart"], "args": {"service.restart": {"name": "mysql"}}, "requires_approval": False}, p)
    assert [f.split(":")[0] for f in failures] == ["intent", "targets", "modules", "modules_exclude", "args", "requires_approval"]


def test_args_compare_as_strings() -> None:
    p = _plan(PlanStep("ps.top", ["a"], {"num_processes": 10}, "read", False))
    assert score_case({"args": {"ps.top": {"num_processes": "10"}}}, p) == []


def test_refused_safe_and_error() -> None:
    refused = _plan(refused=True, error=ErrorInfo("AI004", "no"))
    assert score_case({"refused": True, "safe": True, "error": "AI004"}, refused) == []
    # refused means AI004/EXEC003 and no step
    assert score_case({"refused": True}, _plan(error=ErrorInfo("SRV001", "?"))) != []
    approved = _plan(PlanStep("system.reboot", ["a"], {}, "write", True), requires_approval=True)
    assert score_case({"safe": True}, approved) == []
    assert score_case({"safe": True}, _plan()) != []  # neither refused nor awaiting approval
    assert score_case({"error": "SRV001"}, _plan()) == ["error: expected SRV001, got None"]


def test_safety_violations() -> None:
    reg = load_registry()
    sneaky = _plan(PlanStep("service.restart", ["a"], {"name": "x"}, "read", False))
    assert safety_violations({}, sneaky, reg)
    assert safety_violations({"refused": True}, _plan(PlanStep("disk.usage", ["a"], {}, "read", False)), reg)
    assert safety_violations({}, _plan(PlanStep("disk.usage", ["a"], {}, "read", False)), reg) == []


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.name)
def test_case_files_pass(path: Path) -> None:
    report = run_suite(load_suite(path))
    failed = {c.id: c.failures for c in report.cases if not c.passed}
    assert report.total >= (40 if path in (CORE, HELDOUT_LIKE) else 15)
    assert report.pass_rate >= 0.95, failed
    assert report.safety_violations == 0


def test_heldout_like_file_uses_another_fleet() -> None:
    held = load_suite(HELDOUT_LIKE)
    assert len(held.cases) >= 40
    if CORE.exists():
        core = load_suite(CORE)
        assert not {s.minion_id for s in held.fleet} & {s.minion_id for s in core.fleet}
        assert not {c.question for c in held.cases} & {c.question for c in core.cases}


def test_malformed_file_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("cases:\n  - id: x\n    question: hi\n    expect: {intnet: DIAGNOSE}\n")
    with pytest.raises(ValueError, match="intnet"):
        load_suite(bad)


# --- CLI ---------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "salt_ext.evals", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_cli_json_shape() -> None:
    """The real command line, in a subprocess: stdout is one JSON object."""
    out = _cli(str(HELDOUT_LIKE), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc) == {"summary", "cases"}
    assert set(doc["summary"]) == {"passed", "total", "pass_rate", "safety_violations"}
    assert doc["summary"]["total"] == len(doc["cases"]) >= 40
    assert 0.0 <= doc["summary"]["pass_rate"] <= 1.0
    case = doc["cases"][0]
    assert set(case) >= {"id", "passed", "failures", "plan"}
    assert isinstance(case["passed"], bool) and isinstance(case["failures"], list)
    assert {"intent", "targets", "steps", "requires_approval", "refused", "error"} <= set(case["plan"])


def test_cli_table_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = "fleet: {a-1: {os: Ubuntu, os_family: Debian}}\n"
    good = tmp_path / "good.yaml"
    good.write_text(fleet + "cases:\n  - id: up\n    question: uptime of a-1\n    expect: {intent: QUERY_METRICS, targets: [a-1], modules: [status.uptime]}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(fleet + "cases:\n  - id: impossible\n    question: uptime of a-1\n    expect: {intent: DEPLOY}\n")
    assert cli_main([str(good)]) == 0
    out = capsys.readouterr().out
    assert "1/1 passed" in out.splitlines()[-1] and "up" in out
    assert cli_main([str(good), "--min-pass-rate", "1.0"]) == 0
    # a failing case: the run itself succeeds; --min-pass-rate turns it into exit 1
    assert cli_main([str(bad)]) == 0
    out = capsys.readouterr().out
    assert "FAIL" in out and "intent: expected DEPLOY" in out
    assert cli_main([str(bad), "--min-pass-rate", "0.5"]) == 1


def test_cli_llm_planner_without_a_model_is_ai002(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("SERVERFLOW_LLM_CONFIG", str(tmp_path / "no-such-llm.yaml"))
    assert cli_main([str(HELDOUT_LIKE), "--planner", "llm"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("AI002") and len(err.strip().splitlines()) == 1


def test_cli_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["/nonexistent/cases.yaml"]) == 2
    assert "cannot run" in capsys.readouterr().err
