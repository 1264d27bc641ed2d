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
