"""The /v1 REST API inside salt-api, against the real stack (master, engine, minions, PostgreSQL)."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest

from tests.functional.api_stack import PASSWORD, USERS, start_api_stack

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def api(salt_stack):
    return start_api_stack(salt_stack)


@pytest.fixture(scope="module")
def tokens(api):
    return {who: api.login(who)["access_token"] for who in ("owner", "admin", "admin2", "operator", "viewer", "scoped")}


def sse_events(body: bytes) -> list[tuple[str, str, dict]]:
    out = []
    for frame in body.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            out.append((fields.get("id"), fields["event"], json.loads(fields["data"])))
    return out


def ask(api, token, question, cid=None):
    if cid is None:
        cid = api.request("POST", "/v1/chat/conversations", {"title": question}, token=token).json()["id"]
    res = api.request("POST", f"/v1/chat/conversations/{cid}/messages", {"content": question}, token=token,
                      timeout=150)
    assert res.status == 200 and res.headers["Content-Type"].startswith("text/event-stream"), res.body
    return cid, sse_events(res.body)


def test_salt_endpoints_still_work_and_events_refused_to_non_admins(api, salt_stack):
    assert api.request("GET", "/").json()["return"] == "Welcome"
    secret = salt_stack.secrets()["api_secret"]
    login = api.request("POST", "/login", {"username": "admin", "password": secret, "eauth": "sharedsecret"})
    assert login.status == 200
    salt_token = login.json()["return"][0]["token"]
    minions = api.request("GET", "/minions", headers={"X-Auth-Token": salt_token, "Accept": "application/json"})
    assert minions.status == 200 and "sf-web-1" in minions.json()["return"][0]
    viewer = api.request("POST", "/login", {"username": USERS["viewer"], "password": PASSWORD, "eauth": "serverflow"})
    assert viewer.status == 200
    refused = api.request("GET", "/events", headers={"X-Auth-Token": viewer.json()["return"][0]["token"]})
    assert refused.status == 401


def test_login_failures_and_refresh_rotation(api):
    bad = api.request("POST", "/v1/auth/login", {"email": USERS["viewer"], "password": "wrong-password-1"})
    assert bad.status == 401 and bad.json()["error"]["code"] == "AUTH001"
    assert api.request("POST", "/v1/auth/login", {"email": "x"}).json()["error"]["code"] == "AUTH001"
    notjson = api.request("POST", "/v1/auth/login", raw=b"email=a", headers={"Content-Type": "text/plain"})
    assert notjson.status == 415
    pair = api.login("viewer")
    assert pair["user"]["role"] == "viewer" and pair["expires_in"] == 900
    rotated = api.request("POST", "/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert rotated.status == 200 and rotated.json()["refresh_token"] != pair["refresh_token"]
    # the old refresh token was used: reuse revokes the family
    reuse = api.request("POST", "/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert reuse.status == 401
    assert api.request("POST", "/v1/auth/refresh", {"refresh_token": rotated.json()["refresh_token"]}).status == 401
    # cookie refresh needs the CSRF header
    fresh = api.request("POST", "/v1/auth/login", {"email": USERS["viewer"], "password": PASSWORD})
    cookie = fresh.headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in fresh.headers["Set-Cookie"] and "SameSite=Strict" in fresh.headers["Set-Cookie"]
    forged = api.request("POST", "/v1/auth/refresh", {}, headers={"Cookie": cookie})
    assert forged.status == 403 and forged.json()["error"]["code"] == "AUTH003"
    ok = api.request("POST", "/v1/auth/refresh", {}, headers={"Cookie": cookie, "X-Requested-With": "serverflow"})
    assert ok.status == 200
    out = api.request("POST", "/v1/auth/logout", {"refresh_token": ok.json()["refresh_token"]})
    assert out.status == 204
    assert api.request("POST", "/v1/auth/refresh", {"refresh_token": ok.json()["refresh_token"]}).status == 401


def test_auth_required_and_bad_tokens(api, tokens):
    for method, path in [("GET", "/v1/servers"), ("GET", "/v1/chat/conversations"), ("GET", "/v1/audit"),
                         ("GET", "/v1/executions"), ("GET", "/v1/chat/actions"), ("GET", "/v1/auth/me")]:
        res = api.request(method, path)
        assert res.status == 401 and res.json()["error"]["code"] == "AUTH001", path
    assert api.request("GET", "/v1/servers", token="not.a.jwt").status == 401
    assert api.request("GET", "/v1/servers", token="sfk_000000000000_" + "x" * 40).status == 401
    me = api.request("GET", "/v1/auth/me", token=tokens["operator"]).json()
    assert me["role"] == "operator" and "approve" not in me["permissions"]
    missing = api.request("GET", "/v1/nothing", token=tokens["viewer"])
    assert missing.status == 404 and missing.json()["error"]["code"] == "HTTP404"
    wrong = api.request("PUT", "/v1/servers", {}, token=tokens["viewer"])
    assert wrong.status == 405 and "GET" in wrong.headers["Allow"]
    assert "default-src 'none'" in missing.headers["Content-Security-Policy"]


def test_servers_list_filters_pagination_detail(api, tokens):
    t = tokens["viewer"]
    page = api.request("GET", "/v1/servers", token=t).json()
    assert {s["minion_id"] for s in page["data"]} >= {"sf-web-1", "sf-db-1"}
    assert page["pagination"]["limit"] == 50
    one = api.request("GET", "/v1/servers?limit=1&page=2", token=t).json()
    assert len(one["data"]) == 1 and one["pagination"]["page"] == 2 and one["pagination"]["total"] >= 2
    too_big = api.request("GET", "/v1/servers?limit=101", token=t)
    assert too_big.status == 400 and too_big.json()["error"]["code"] == "SYS003"
    assert api.request("GET", "/v1/servers?limit=0", token=t).status == 400
    assert api.request("GET", "/v1/servers?page=abc", token=t).status == 400
    assert api.request("GET", "/v1/servers?status=broken", token=t).status == 400
    db = api.request("GET", "/v1/servers?tags=db", token=t).json()["data"]
    assert [s["minion_id"] for s in db] == ["sf-db-1"]
    assert [s["minion_id"] for s in api.request("GET", "/v1/servers?search=web", token=t).json()["data"]] == ["sf-web-1"]
    detail = api.request("GET", "/v1/servers/sf-db-1", token=t).json()
    assert detail["grains"]["id"] == "sf-db-1" and isinstance(detail["recent_executions"], list)
    gone = api.request("GET", "/v1/servers/nope-1", token=t)
    assert gone.status == 404 and gone.json()["error"]["code"] == "SRV001"
    # a user scoped to tag web does not see the db server at all
    scoped = api.request("GET", "/v1/servers", token=tokens["scoped"]).json()
    assert [s["minion_id"] for s in scoped["data"]] == ["sf-web-1"]
    assert api.request("GET", "/v1/servers/sf-db-1", token=tokens["scoped"]).status == 404


def test_execute_read_runs_write_needs_approval_blocked_refused(api, tokens):
    read = api.request("POST", "/v1/servers/sf-web-1/execute", {"module": "test.ping"}, token=tokens["viewer"])
    assert read.status == 202 and read.json()["status"] == "pending" and read.json()["job_id"]
    blocked = api.request("POST", "/v1/servers/sf-web-1/execute", {"module": "cmd.run_all", "args": {"cmd": "id"}},
                          token=tokens["owner"])
    assert blocked.status in (403, 422) and blocked.json()["error"]["code"] in ("EXEC003", "AI004")
    write_by_viewer = api.request("POST", "/v1/servers/sf-web-1/execute",
                                  {"module": "service.restart", "args": {"name": "nginx"}}, token=tokens["viewer"])
    assert write_by_viewer.status == 403 and write_by_viewer.json()["error"]["code"] == "AUTH003"
    write = api.request("POST", "/v1/servers/sf-web-1/execute",
                        {"module": "service.restart", "args": {"name": "nginx"}}, token=tokens["operator"])
    assert write.status == 202 and write.json()["status"] == "approval_required"
    bad = api.request("POST", "/v1/servers/sf-web-1/execute", {"module": "test.ping", "timeout": 0},
                      token=tokens["viewer"])
    assert bad.status == 400


def test_chat_streams_findings_and_history_is_private(api, tokens):
    cid, events = ask(api, tokens["operator"], "why is sf-db-1 slow?")
    kinds = [e[1] for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_end" and "content_delta" in kinds
    ids = [int(e[0]) for e in events[1:]]
    assert ids == sorted(ids)
    end = events[-1][2]
    assert end["response"]["findings"] and end["message_id"]
    listed = api.request("GET", "/v1/chat/conversations", token=tokens["operator"]).json()
    assert cid in [c["id"] for c in listed["data"]]
    conv = api.request("GET", f"/v1/chat/conversations/{cid}", token=tokens["operator"]).json()
    assert [m["role"] for m in conv["messages"]] == ["user", "assistant"]
    # another user sees neither the conversation nor its events
    assert api.request("GET", f"/v1/chat/conversations/{cid}", token=tokens["viewer"]).status == 404
    assert cid not in [c["id"] for c in api.request("GET", "/v1/chat/conversations", token=tokens["viewer"]).json()["data"]]
    stolen = api.request("POST", f"/v1/chat/conversations/{cid}/messages", {"content": "hi"}, token=tokens["viewer"])
    assert stolen.status == 404
    # resume: replaying after the first delta's id yields the rest, including message_end
    first_delta = events[1][0]
    replay = api.request("GET", f"/v1/events?conversation_id={cid}&max_seconds=2",
                         token=tokens["operator"], headers={"Last-Event-ID": first_delta})
    replayed = sse_events(replay.body)
    assert [e[0] for e in replayed] == [e[0] for e in events[2:]]
    viewer_replay = api.request("GET", "/v1/events?max_seconds=1", token=tokens["viewer"],
                                headers={"Last-Event-ID": first_delta})
    assert all(e[2].get("conversation_id") != cid for e in sse_events(viewer_replay.body))
    assert api.request("POST", f"/v1/chat/conversations/{uuid.uuid4()}/messages", {"content": "x"},
                       token=tokens["operator"]).status == 404
    empty = api.request("POST", f"/v1/chat/conversations/{cid}/messages", {"content": " "}, token=tokens["operator"])
    assert empty.status == 400 and empty.json()["error"]["code"] == "AI001"


def test_action_flow_viewer_refused_admin_approves_audit(api, tokens):
    cid, events = ask(api, tokens["operator"], "restart nginx on sf-web-1")
    actions = [e[2] for e in events if e[1] == "action_available"]
    assert actions and actions[0]["function"] == "service.restart" and actions[0]["requires_confirmation"]
    aid = actions[0]["action_id"]
    pending = api.request("GET", "/v1/chat/actions", token=tokens["viewer"]).json()
    assert pending["can_approve"] is False and aid not in [a["id"] for a in pending["data"]]
    assert aid in [a["id"] for a in api.request("GET", "/v1/chat/actions", token=tokens["admin"]).json()["data"]]
    for who in ("viewer", "operator"):
        refused = api.request("POST", f"/v1/chat/actions/{aid}/execute", {"confirm": True}, token=tokens[who])
        assert refused.status == 403 and refused.json()["error"]["code"] == "AUTH003", who
    unconfirmed = api.request("POST", f"/v1/chat/actions/{aid}/execute", {"confirm": False}, token=tokens["admin"])
    assert unconfirmed.status == 400 and unconfirmed.json()["error"]["code"] == "EXEC004"
    # an admin's live stream sees the action being approved and executed
    seen: list = []
    listener = threading.Thread(target=lambda: seen.extend(sse_events(api.request(
        "GET", "/v1/events?max_seconds=20", token=tokens["admin2"], timeout=40).body)))
    listener.start()
    done = api.request("POST", f"/v1/chat/actions/{aid}/execute", {"confirm": True}, token=tokens["admin"], timeout=120)
    assert done.status == 202, done.body
    assert done.json()["status"] in ("executed", "failed") and done.json()["jid"]
    again = api.request("POST", f"/v1/chat/actions/{aid}/execute", {"confirm": True}, token=tokens["admin"])
    assert again.status == 409 and again.json()["error"]["code"] == "EXEC004"
    listener.join(40)
    assert any(e[1] == "action_update" and e[2]["action_id"] == aid for e in seen)
    execs = api.request("GET", "/v1/executions", token=tokens["admin"]).json()["data"]
    assert any(e["job_id"] == done.json()["jid"] for e in execs)
    assert not any(e["job_id"] == done.json()["jid"] for e in
                   api.request("GET", "/v1/executions", token=tokens["viewer"]).json()["data"])
    trail = api.request("GET", "/v1/audit?limit=100", token=tokens["admin"]).json()["data"]
    assert any(r["action"] == "action.executed" and r["resource_id"] == aid for r in trail)
    assert api.request("GET", "/v1/audit", token=tokens["operator"]).status == 403
    assert api.request("GET", "/v1/audit?limit=1000", token=tokens["admin"]).status == 400


def test_delete_server_admin_only(api, tokens):
    assert api.request("DELETE", "/v1/servers/sf-web-1", token=tokens["operator"]).status == 403
    assert api.request("DELETE", "/v1/servers/not-there", token=tokens["admin"]).status == 404


def test_openapi_document_matches_routes(api):
    doc = api.request("GET", "/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/chat/conversations/{id}/messages" in doc["paths"] and "/servers" in doc["paths"]
    limit = [p for p in doc["paths"]["/servers"]["get"]["parameters"] if p["name"] == "limit"][0]
    assert limit["schema"]["maximum"] == 100


# -- previews: a proposed write carries what the minion said, and the dry run changes nothing ----------
# (checked on the minion itself: the test minions are local processes, their files are this machine's)

@pytest.fixture
def target_file():
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
