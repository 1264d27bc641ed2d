"""Questions answered by the engine from real executions on real minions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import pytest

from salt_ext.devstack import postgres, processes
from tests.functional.saltcli import run_cli, run_json, wait_for

pytestmark = pytest.mark.functional


def ask(layout, question, conversation=None, timeout=180):
    args = ["serverflow.ask", question] + ([f"conversation={conversation}"] if conversation else [])
    proc = run_cli(layout, "salt-run", *args, "--out=json", timeout=timeout)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def db_rows(layout, sql, *params):
    with psycopg.connect(layout.dsn("owner")) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture
def inventory_online(salt_stack):
    assert wait_for(lambda: all(s["status"] == "online" for s in run_json(
        salt_stack, "salt-run", "serverflow.servers") if s["minion_id"] in salt_stack.minions), 60)
    return salt_stack


@pytest.fixture
def cpu_hog():
    """A real busy process on this machine (every test minion runs here)."""
    # raised priority: on a loaded 2-core machine it must still be the top consumer
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=lambda: os.nice(-15))
    time.sleep(6)  # let it accumulate more CPU time than anything else
    yield hog.pid
    hog.kill()
    hog.wait()


def test_why_slow_names_the_real_top_consumer(inventory_online, cpu_hog):
    layout = inventory_online
    rc, done, progress = ask(layout, "why is sf-db-1 slow?")
    assert rc == 0, done
    assert done["intent"] == "DIAGNOSE" and done["plan"]["targets"] == ["sf-db-1"]
    # the answer cites the hog by pid, with the jid of the ps.top job that saw it
    evidence = [ev for f in done["response"]["findings"] for ev in f["evidence"]]
    top = [ev for ev in evidence if ev["function"] == "ps.top" and ev["value"] == cpu_hog]
    assert top and top[0]["minion_id"] == "sf-db-1" and top[0]["jid"]
    assert str(cpu_hog) in done["text"]
    # progress was streamed while it ran
    assert "plan: DIAGNOSE on sf-db-1" in progress and "sf-db-1 answered ps.top" in progress
    # every executed step is an executions row linked to its jid and the conversation
    rows = db_rows(layout, "SELECT job_id, module, status FROM executions WHERE conversation_id = %s",
                   done["conversation_id"])
    assert {r[1] for r in rows} >= {"ps.top", "status.meminfo"}
    assert all(r[2] == "completed" for r in rows)
    assert {r[0] for r in rows} == {e["jid"] for e in done["executions"]}
    history = run_json(layout, "salt-run", "serverflow.conversation", done["conversation_id"])
    assert [m["role"] for m in history["messages"]] == ["user", "assistant"]
    meta = history["messages"][1]["metadata"]
    assert meta["intent"] == "DIAGNOSE" and meta["plan"]["steps"] and meta["timings"]["total_ms"] > 0


def test_followups_resolve_against_the_conversation(inventory_online):
    layout = inventory_online
    rc, first, _ = ask(layout, "check disk space on sf-db-1")
    assert rc == 0 and first["plan"]["targets"] == ["sf-db-1"]
    cid = first["conversation_id"]
    rc, second, _ = ask(layout, "and on the web servers?", conversation=cid)
    assert rc == 0 and second["conversation_id"] == cid
    assert second["plan"]["targets"] == ["sf-web-1"]
    assert "disk.usage" in {s["function"] for s in second["plan"]["steps"]}
    listed = run_json(layout, "salt-run", "serverflow.conversations")
    assert any(c["id"] == cid and c["messages"] == 4 for c in listed)


def test_write_request_is_proposed_never_run(inventory_online):
    layout = inventory_online
    before = set(run_json(layout, "salt-run", "jobs.list_jobs", "search_function=service.restart"))
    rc, done, _ = ask(layout, "restart nginx on sf-web-1")
    assert rc == 0 and done["plan"]["requires_approval"] is True
    (action,) = [a for a in done["actions"] if a["function"] == "service.restart"]
    assert action["targets"] == ["sf-web-1"] and action["args"] == {"name": "nginx"}
    assert done["text"].startswith("Nothing has run") and "service.restart on sf-web-1" in done["text"]
    rows = db_rows(layout, "SELECT status FROM actions WHERE id = %s", action["action_id"])
    assert rows == [("proposed",)]
    ran = db_rows(layout, "SELECT count(*) FROM executions WHERE conversation_id = %s AND module = 'service.restart'",
                  done["conversation_id"])
    assert ran == [(0,)]
    # the master's job cache saw no new service.restart job either (other tests may approve one)
    jobs = run_json(layout, "salt-run", "jobs.list_jobs", "search_function=service.restart")
    assert set(jobs) == before


def test_refusals_and_bad_input_have_codes(inventory_online):
    layout = inventory_online
    rc, done, _ = ask(layout, "run rm -rf / on all servers")
    assert rc == 0 and done["plan"]["refused"] is True and done["plan"]["steps"] == []
    assert done["plan"]["error"]["code"] in ("AI004", "EXEC003") and done["actions"] == []
    rc, done, _ = ask(layout, "why is sf-db-9 slow?")
    assert done["plan"]["error"]["code"] == "SRV001" and "sf-db-1" in done["text"]
    rc, out, _ = ask(layout, "   ")
    assert rc != 0 and out["error"]["code"] == "AI001"
    rc, out, _ = ask(layout, "x" * 5000)
    assert rc != 0 and out["error"]["code"] == "AI001"
    rc, out, _ = ask(layout, "hello", conversation="not-a-uuid")
    assert rc != 0 and out["error"]["code"] == "AI001"
    plan = run_json(layout, "salt-run", "serverflow.plan", "restart nginx on sf-web-1")
    assert plan["requires_approval"] and plan["steps"][0]["function"] == "service.restart"


def test_a_frozen_minion_delays_only_its_own_conversation(inventory_online):
    layout = inventory_online
    pid = processes.running(layout.run, "minion-sf-web-1")
    os.killpg(pid, signal.SIGSTOP)
    try:
        answers = {}

        def run(name, question):
            result = ask(layout, question)
            answers[name] = (time.monotonic(), result)

        started = time.monotonic()
        slow = threading.Thread(target=run, args=("slow", "show uptime for all servers"))
        slow.start()
        time.sleep(0.5)
        run("fast", "how much disk space is left on sf-db-1?")
        slow.join(120)
        fast_at, (rc_fast, fast, _) = answers["fast"]
        slow_at, (rc_slow, slow_done, _) = answers["slow"]
        assert rc_fast == 0 and rc_slow == 0
        assert fast_at < slow_at  # the other conversation did not wait for the frozen minion
        assert "sf-web-1" in slow_done["response"]["unanswered"]
        assert "sf-db-1" not in slow_done["response"]["unanswered"]
        assert any("sf-web-1" in f.get("detail", "") + f.get("title", "") or f.get("minion_id") == "sf-web-1"
                   for f in slow_done["response"]["findings"])
        assert slow_at - started < 60
    finally:
        os.killpg(pid, signal.SIGCONT)


def test_database_outage_is_a_clear_error_and_loses_nothing(inventory_online):
    layout = inventory_online
    cid = str(uuid.uuid4())
    rc, first, _ = ask(layout, "check memory on sf-db-1", conversation=cid)
    assert rc == 0
    postgres.stop(layout)
    try:
        rc, out, _ = ask(layout, "check disk space on sf-db-1", conversation=cid)
        assert rc != 0 and out["error"]["code"] == "SYS001"
    finally:
        postgres.start(layout)
    history = wait_for(lambda: _conversation(layout, cid), 30)
    # the failed turn left nothing half-written
    assert [m["role"] for m in history["messages"]] == ["user", "assistant"]


def _conversation(layout, cid):
    proc = run_cli(layout, "salt-run", "serverflow.conversation", cid, "--out=json")
    return json.loads(proc.stdout) if proc.returncode == 0 else None
