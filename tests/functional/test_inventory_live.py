"""The suite inside a real master with real minions: loading, live inventory, presence, health."""

from __future__ import annotations

import os

import pytest

from salt_ext.devstack import postgres, salt_daemons, stack
from tests.functional.saltcli import config_variant, run_cli, run_json, wait_for
from tests.functional.saltcli import added_minion

pytestmark = pytest.mark.functional

EXTRA = "sf-extra-1"


def inventory(layout) -> dict[str, dict]:
    return {s["minion_id"]: s for s in run_json(layout, "salt-run", "serverflow.servers")}


def test_suite_loads_through_the_entry_point(salt_stack):
    # Nothing has been synced into extension_modules: the runner and the minion
    # module come from the salt.loader entry point of the installed package.
    import salt.config

    extmods = salt.config.master_config(str(salt_stack.etc / "master"))["extension_modules"]
    assert extmods.startswith(str(salt_stack.home))
    assert not os.path.exists(os.path.join(extmods, "runners", "serverflow.py"))
    assert run_json(salt_stack, "salt-run", "serverflow.servers") is not None
    versions = run_json(salt_stack, "salt", "sf-web-1", "serverflow.version")
    from salt_ext import __version__

    assert versions == {"sf-web-1": __version__}


def test_inventory_lists_the_minions_online_with_their_facts(salt_stack):
    servers = wait_for(lambda: (inv := inventory(salt_stack)) and
                       all(inv.get(m, {}).get("status") == "online" for m in salt_stack.minions) and inv, 60)
    assert servers, "minions never showed up online"
    web = servers["sf-web-1"]
    assert web["os"] and web["os_family"] and web["kernel"] and web["cpu_count"] >= 1
    assert web["memory_total"] > 0 and web["last_seen_at"]
    assert web["tags"] == ["test", "web"] and web["services"] == ["nginx"]
    assert servers["sf-db-1"]["tags"] == ["test", "db"]

    online_web = run_json(salt_stack, "salt-run", "serverflow.servers", "status=online", "tag=web")
    assert [s["minion_id"] for s in online_web] == ["sf-web-1"]
    found = run_json(salt_stack, "salt-run", "serverflow.servers", "search=sf-db")
    assert [s["minion_id"] for s in found] == ["sf-db-1"]
    one = run_json(salt_stack, "salt-run", "serverflow.server", "sf-db-1")
    assert one["minion_id"] == "sf-db-1" and one["grains"]["id"] == "sf-db-1"


def test_unknown_server_is_srv001_with_near_matches(salt_stack):
    proc = run_cli(salt_stack, "salt-run", "serverflow.server", "sf-web-9", "--out=json")
    assert proc.returncode != 0
    assert "SRV001" in proc.stdout and "sf-web-1" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.fixture
def extra_minion(salt_stack):
    """A third minion the test starts and stops; its key is deleted afterwards."""
    with added_minion(salt_stack, EXTRA, ["test", "extra"]) as listener:
        yield salt_stack, listener


def test_new_minion_appears_then_goes_offline_and_back(extra_minion):
    layout, listener = extra_minion
    salt_daemons.start_minion(layout, EXTRA)
    assert listener.wait(f"serverflow/server/{EXTRA}/connected", 60) is not None
    row = wait_for(lambda: inventory(layout).get(EXTRA, {}).get("tags") == ["test", "extra"]
                   and inventory(layout)[EXTRA], 30)
    assert row and row["status"] == "online" and row["os"]

    salt_daemons.stop_minion(layout, EXTRA)
    event = listener.wait(f"serverflow/server/{EXTRA}/disconnected", 60)
    assert event is not None and event["previous"] == "online"
    assert wait_for(lambda: inventory(layout)[EXTRA]["status"] == "offline", 30)
    assert inventory(layout)["sf-web-1"]["status"] == "online"

    salt_daemons.start_minion(layout, EXTRA)
    assert listener.wait(f"serverflow/server/{EXTRA}/connected", 60) is not None
    assert wait_for(lambda: inventory(layout)[EXTRA]["status"] == "online", 30)


def test_sync_all_from_file_roots(salt_stack):
    synced = run_json(salt_stack, "salt", "sf-db-1", "saltutil.sync_all")["sf-db-1"]
    assert "modules.serverflow" in synced["modules"]
    extmods = salt_stack.minion_dir("sf-db-1") / "cache" / "extmods"
    assert (extmods / "modules" / "serverflow.py").read_text() == (
        salt_stack.repo / "_modules" / "serverflow.py").read_text()
    assert "states.serverflow" in synced["states"]
    facts = run_json(salt_stack, "salt", "sf-db-1", "serverflow.facts")["sf-db-1"]
    assert facts["minion_id"] == "sf-db-1" and facts["tags"] == ["test", "db"]
    master_synced = run_json(salt_stack, "salt-run", "saltutil.sync_all")
    assert "runners.serverflow" in master_synced["runners"]
    assert "engines.serverflow" in master_synced["engines"]


def test_state_tags_a_minion_and_inventory_follows(salt_stack):
    out = run_json(salt_stack, "salt", "sf-db-1", "state.single", "serverflow.tagged",
                   "name=tags", "tags=[\"primary\"]", "test=True")["sf-db-1"]
    (result,) = out.values()
    assert result["result"] is None and result["changes"] == {"added": {"tags": ["primary"]}}
    out = run_json(salt_stack, "salt", "sf-db-1", "state.single", "serverflow.tagged",
                   "name=tags", "tags=[\"primary\"]")["sf-db-1"]
    (result,) = out.values()
    assert result["result"] is True
    # the engine refreshes facts when the minion's data cache changes
    run_cli(salt_stack, "salt", "sf-db-1", "saltutil.refresh_pillar")
    assert wait_for(lambda: "primary" in inventory(salt_stack)["sf-db-1"]["tags"], 60)


def test_health_is_ok_then_names_what_is_down(salt_stack, tmp_path):
    ok = run_json(salt_stack, "salt-run", "serverflow.health")
    assert ok["ok"] is True, ok
    broken = config_variant(salt_stack, tmp_path, lambda c: c["serverflow"]["redis"].update(
        url="redis://127.0.0.1:1/0"))
    proc = run_cli(salt_stack, "salt-run", "serverflow.health", "--out=json", config_dir=broken)
    assert proc.returncode != 0
    assert '"redis"' in proc.stdout and "127.0.0.1:1" in proc.stdout


def test_missing_database_is_a_one_line_error(salt_stack, tmp_path):
    broken = config_variant(salt_stack, tmp_path, lambda c: c["serverflow"]["database"].update(
        url="postgresql://serverflow_app:pw@127.0.0.1:1/serverflow"))
    proc = run_cli(salt_stack, "salt-run", "serverflow.servers", "--out=json", config_dir=broken)
    assert proc.returncode != 0
    assert "SYS001" in proc.stdout and "127.0.0.1:1" in proc.stdout and "make up" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr and ":pw@" not in proc.stdout


def test_engine_rides_out_a_database_outage_and_catches_up(extra_minion):
    layout, listener = extra_minion
    salt_daemons.start_minion(layout, EXTRA)
    assert wait_for(lambda: inventory(layout).get(EXTRA, {}).get("status") == "online", 60)
    postgres.stop(layout)
    try:
        salt_daemons.stop_minion(layout, EXTRA)
        # the engine still sees presence while the database is down
        assert listener.wait(f"serverflow/server/{EXTRA}/disconnected", 60) is not None
        health = run_cli(layout, "salt-run", "serverflow.health", "--out=json")
        assert health.returncode != 0 and "SYS001" in health.stdout
    finally:
        postgres.start(layout)
    assert wait_for(lambda: inventory(layout).get(EXTRA, {}).get("status") == "offline", 60)
    assert stack.status(layout)["salt-master"]
    assert wait_for(lambda: inventory(layout)["sf-web-1"]["status"] == "online", 30)
