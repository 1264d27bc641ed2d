"""The install formula and the tagging formula render and apply on a real minion."""

from __future__ import annotations

import pytest

from tests.functional.saltcli import run_json

pytestmark = pytest.mark.functional


def test_master_formula_renders_the_engine_config(salt_stack):
    out = run_json(salt_stack, "salt", "sf-db-1", "state.show_sls", "serverflow.master")["sf-db-1"]
    assert set(out) >= {"serverflow package", "serverflow master config"}
    config = out["serverflow master config"]["file"]
    dataset = next(item["dataset"] for item in config if isinstance(item, dict) and "dataset" in item)
    assert dataset["engines"] == [{"serverflow": {}}]
    assert "master_job_cache" not in dataset  # the PostgreSQL job cache is opt-in (pillar job_cache)
    assert dataset["serverflow"]["database"]["url"].startswith("postgresql://serverflow_app")


def test_minion_formula_applies_tags_in_test_mode(salt_stack):
    out = run_json(salt_stack, "salt", "sf-web-1", "state.apply", "serverflow.minion", "test=True",
                   'pillar={"serverflow": {"tags": ["edge"], "services": ["haproxy"]}}')["sf-web-1"]
    (result,) = out.values()
    assert result["result"] is None
    assert result["changes"] == {"added": {"tags": ["edge"], "services": ["haproxy"]}}
