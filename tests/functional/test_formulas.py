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
    # the PostgreSQL job cache and event store are on by default ...
    assert dataset["master_job_cache"] == dataset["event_return"] == "serverflow"
    assert dataset["event_return_queue"] == 100
    assert dataset["serverflow"]["database"]["url"].startswith("postgresql://serverflow_app")


def test_master_formula_job_cache_can_be_turned_off_by_pillar(salt_stack):
    out = run_json(salt_stack, "salt", "sf-db-1", "state.show_sls", "serverflow.master",
                   'pillar={"serverflow": {"master": {"job_cache": false}}}')["sf-db-1"]
    config = out["serverflow master config"]["file"]
    dataset = next(item["dataset"] for item in config if isinstance(item, dict) and "dataset" in item)
    # ... and pillar serverflow:master:job_cache: False keeps Salt's own
    assert "master_job_cache" not in dataset and "event_return" not in dataset
    assert dataset["engines"] == [{"serverflow": {}}]


def test_minion_formula_applies_tags_in_test_mode(salt_stack):
    out = run_json(salt_stack, "salt", "sf-web-1", "state.apply", "serverflow.minion", "test=True",
                   'pillar={"serverflow": {"tags": ["edge"], "services": ["haproxy"]}}')["sf-web-1"]
    (result,) = out.values()
    assert result["result"] is None
    assert result["changes"] == {"added": {"tags": ["edge"], "services": ["haproxy"]}}
