"""Proposed writes carry a preview taken on the real minion; the dry run changes nothing.

Checked on the minion itself (the demo minions run as local processes here, so
their files are this machine's files), not only in the responses.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.functional.api_stack import start_api_stack

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def api(salt_stack):
    return start_api_stack(salt_stack)


@pytest.fixture(scope="module")
def tokens(api):
    return {who: api.login(who)["access_token"] for who in ("admin", "operator")}


@pytest.fixture
def target_file(tmp_path_factory):
    path = Path(f"/tmp/serverflow-preview-{uuid.uuid4().hex}")
    yield path
    path.unlink(missing_ok=True)


def test_state_write_is_dry_run_then_runs_as_previewed(api, tokens, target_file):
    body = {"module": "file.managed", "args": {"name": str(target_file), "contents": "managed by serverflow"}}
    proposed = api.request("POST", "/v1/servers/sf-db-1/execute", body, token=tokens["operator"], timeout=120)
    assert proposed.status == 202 and proposed.json()["status"] == "approval_required", proposed.body
    preview = proposed.json()["preview"]
    assert preview["mode"] == "dry_run" and preview["jid"]
    assert preview["returns"]["sf-db-1"]["success"] is True
    (change,) = preview["would_change"]["sf-db-1"]
    assert change["result"] is None and str(target_file) in change["comment"]
    assert not target_file.exists(), "a dry run must not write the file"

    pending = api.request("GET", "/v1/chat/actions", token=tokens["admin"]).json()
    (stored,) = [a for a in pending["data"] if a["id"] == proposed.json()["action_id"]]
    assert stored["preview"]["jid"] == preview["jid"]  # what the approver reads is what was taken

    done = api.request("POST", f"/v1/chat/actions/{stored['id']}/execute", {"confirm": True},
                       token=tokens["admin"], timeout=120)
    assert done.status == 202 and done.json()["status"] == "executed", done.body
    assert target_file.read_text().rstrip("\n") == "managed by serverflow"


def test_write_without_dry_run_shows_the_current_state(api, tokens):
    body = {"module": "service.restart", "args": {"name": "serverflow-no-such-service"}}
    proposed = api.request("POST", "/v1/servers/sf-web-1/execute", body, token=tokens["operator"], timeout=120)
    assert proposed.status == 202, proposed.body
    preview = proposed.json()["preview"]
    assert preview["mode"] == "current_state" and preview["function"] == "service.status"
    assert preview["args"] == {"name": "serverflow-no-such-service"}
    assert "sf-web-1" in preview["returns"] and preview["jid"]
    assert "no dry run" in preview["note"]
