"""Write actions: proposed by a question, run only after an allowed approval, exactly once."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import psycopg
import pytest

from salt_ext.approvals.service import ApprovalService
from salt_ext.chat.client import ask
from salt_ext.db import Database
from salt_ext.devstack import stack
from salt_ext.errors import ServerFlowError
from tests.functional.saltcli import run_cli, wait_for

pytestmark = pytest.mark.functional

from salt_ext.config import DEFAULT_TENANT_ID
from salt_ext.security.identity import Principal

OPERATOR = Principal(DEFAULT_TENANT_ID, "op@test", "operator")
ADMIN = Principal(DEFAULT_TENANT_ID, "admin@test", "admin")
ADMIN2 = Principal(DEFAULT_TENANT_ID, "admin2@test", "admin")


@pytest.fixture(scope="module")
def env(salt_stack, test_users):
    import salt.client
    import salt.config

    opts = salt.config.master_config(str(salt_stack.etc / "master"))
    settings = stack.settings_for(salt_stack)
    db = Database(settings["database"]["url"])
    fired: list[tuple[str, dict]] = []
    service = ApprovalService(settings, db, lambda: salt.client.get_local_client(mopts=opts),
                              fire=lambda tag, data: fired.append((tag, data)))
    yield opts, settings, service, fired
    db.close()


@pytest.fixture
def victim():
    """A real process the approved action will kill; alive until then."""
    proc = subprocess.Popen(["sleep", "600"])
    yield proc
    proc.kill()
    proc.wait()


def propose_kill(opts, pid: int, user: str) -> dict:
    done = ask(opts, f"kill process {pid} on sf-web-1", user=user, timeout=120)
    (action,) = [a for a in done["actions"] if a["function"] == "ps.kill_pid"]
    assert action["args"]["pid"] == pid and action["targets"] == ["sf-web-1"]
    # the approver sees the very process, read from the minion when it was proposed
    preview = action["preview"]
    assert preview["mode"] == "current_state" and preview["function"] == "ps.proc_info" and preview["jid"]
    assert preview["returns"]["sf-web-1"]["ret"]["pid"] == pid
    return action


def owner_sql(layout, sql, *params):
    with psycopg.connect(layout.dsn("owner"), autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else cur.rowcount


def test_operator_proposes_admin_approves_it_runs_once(salt_stack, env, victim):
    opts, settings, service, fired = env
    action = propose_kill(opts, victim.pid, OPERATOR.name)
    time.sleep(2)
    assert victim.poll() is None, "a proposal must not run anything"
    assert any(a["id"] == action["action_id"] for a in service.pending())

    with pytest.raises(ServerFlowError) as err:
        service.approve(action["action_id"], OPERATOR)
    assert err.value.code == "AUTH003"
    assert victim.poll() is None

    result = service.approve(action["action_id"], ADMIN)
    assert result["status"] == "executed" and result["jid"]
    assert wait_for(lambda: victim.poll() is not None, 15)
    tags = [t for t, _ in fired if action["action_id"] in t]
    assert tags[-2:] == [f"serverflow/action/{action['action_id']}/approved",
                         f"serverflow/action/{action['action_id']}/executed"]
    row = owner_sql(salt_stack, "SELECT status, decided_by, job_id FROM actions WHERE id = %s",
                    action["action_id"])
    assert row == [("executed", ADMIN.name, result["jid"])]
    ran = owner_sql(salt_stack, "SELECT requested_by, status FROM executions WHERE job_id = %s", result["jid"])
    assert ran == [(ADMIN.name, "completed")]

    # a second approval (replay) is refused
    with pytest.raises(ServerFlowError) as err:
        service.approve(action["action_id"], ADMIN2)
    assert err.value.code == "EXEC004"


def test_self_approval_tampering_expiry_and_rejection(salt_stack, env, victim):
    opts, settings, service, fired = env
    # four-eyes: the admin who asked cannot approve their own action
    mine = propose_kill(opts, victim.pid, ADMIN.name)
    with pytest.raises(ServerFlowError) as err:
        service.approve(mine["action_id"], ADMIN)
    assert err.value.code == "AUTH003" and "four-eyes" in str(err.value)

    # changed arguments after the proposal: the hash no longer matches
    owner_sql(salt_stack, "UPDATE actions SET args = '{\"pid\": 1}'::jsonb WHERE id = %s", mine["action_id"])
    with pytest.raises(ServerFlowError) as err:
        service.approve(mine["action_id"], ADMIN2)
    assert err.value.code == "EXEC004" and "no longer matches" in str(err.value)

    # expired proposals cannot be approved
    expired = propose_kill(opts, victim.pid, OPERATOR.name)
    owner_sql(salt_stack, "UPDATE actions SET expires_at = now() - interval '1 minute' WHERE id = %s",
              expired["action_id"])
    with pytest.raises(ServerFlowError) as err:
        service.approve(expired["action_id"], ADMIN)
    assert err.value.code == "EXEC004" and "expired" in str(err.value)

    rejected = propose_kill(opts, victim.pid, OPERATOR.name)
    assert service.reject(rejected["action_id"], ADMIN, "not now")["status"] == "rejected"
    with pytest.raises(ServerFlowError):
        service.approve(rejected["action_id"], ADMIN)
    with pytest.raises(ServerFlowError) as err:
        service.approve(str(uuid.uuid4()), ADMIN)
    assert err.value.code == "EXEC004"
    time.sleep(1)
    assert victim.poll() is None, "nothing refused may have run"


def test_cli_approve_refuses_unknown_and_self(salt_stack, env, victim):
    opts, settings, service, fired = env
    # root asks through the runner, so root (the owner) may not approve it: four-eyes
    proc = run_cli(salt_stack, "salt-run", "serverflow.ask", f"kill process {victim.pid} on sf-web-1",
                   "--out=json")
    done = json.loads(proc.stdout)
    (action,) = [a for a in done["actions"] if a["function"] == "ps.kill_pid"]
    out = run_cli(salt_stack, "salt-run", "serverflow.approve", action["action_id"], "--out=json")
    assert out.returncode != 0 and "AUTH003" in out.stdout
    listed = json.loads(run_cli(salt_stack, "salt-run", "serverflow.actions", "--out=json").stdout)
    assert any(a["id"] == action["action_id"] for a in listed)
    assert victim.poll() is None


def test_cli_operator_asks_admin_approves_through_eauth_and_the_chain_verifies(salt_stack, env):
    """The issue's acceptance loop, as people run it: salt-run with Salt eauth, per person."""
    from tests.conftest import TEST_PASSWORD

    def as_user(user, *args):
        proc = run_cli(salt_stack, "salt-run", "-a", "serverflow", "--username", user, "--password", TEST_PASSWORD,
                       *args, "--out=json", timeout=180)
        return proc, proc.stdout

    service_name = f"sf-test-{uuid.uuid4().hex[:6]}"
    proc, out = as_user("op@test", "serverflow.ask", f"restart {service_name} on sf-web-1", "full=True")
    assert proc.returncode == 0, proc.stderr + out
    done = json.loads(out)
    (action,) = [a for a in done["actions"] if a["function"] == "service.restart"]
    assert action["args"] == {"name": service_name} and action["targets"] == ["sf-web-1"]
    assert action["preview"]["mode"] == "current_state" and action["preview"]["function"] == "service.status"
    assert "sf-web-1" in action["preview"]["returns"]
    # proposing ran nothing: no service.restart job exists for it
    jobs = json.loads(run_cli(salt_stack, "salt-run", "jobs.list_jobs", "search_function=service.restart",
                              "--out=json").stdout)
    assert not [j for j in jobs.values() if service_name in json.dumps(j.get("Arguments"))]

    # the operator cannot approve; an admin can, under their own name
    proc, out = as_user("op@test", "serverflow.approve", action["action_id"])
    # Salt's ACL (operators may not call serverflow.approve) or our AUTH003 refuses it
    refusal = (out + proc.stderr).lower()
    assert "auth003" in refusal or "authentication failure" in refusal or "authorization" in refusal, refusal
    assert action["action_id"] in {a["id"] for a in env[2].pending()}  # still waiting
    proc, out = as_user("admin@test", "serverflow.approve", action["action_id"])
    result = json.loads(out)
    assert result["jid"] and result["status"] in ("executed", "failed") and "sf-web-1" in result["returns"]

    with Database(env[1]["database"]["url"]).tenant(env[1]["tenant_id"]) as conn:
        rows = conn.execute("SELECT action, user_id IS NOT NULL AS has_user, details FROM audit_logs"
                            " WHERE resource_id = %s ORDER BY id", (action["action_id"],)).fetchall()
    assert [(r["action"], r["details"]["actor"]) for r in rows][:3] == [
        ("action.proposed", "op@test"), ("action.approved", "admin@test"), ("action.executed", "admin@test")]
    assert all(r["has_user"] for r in rows[:3])  # each entry is tied to the person's users row
    proc, out = as_user("admin@test", "serverflow.audit_verify")
    assert proc.returncode == 0 and json.loads(out)["ok"] is True, out
