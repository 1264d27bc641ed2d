"""The API's pure parts: errors and statuses, request parsing, event translation, visibility, SSE, OpenAPI."""

from __future__ import annotations

import json
import threading

import pytest

from salt_ext.api.events import Event, EventHub, Visibility, sse, translate
from salt_ext.api.http import ApiError, Request, error_response
from salt_ext.api.openapi import document
from salt_ext.api.routes import ROUTES, Dispatcher
from salt_ext.security.identity import Principal

OP = Principal(tenant_id="t", email="op@x", role="operator")
ADMIN = Principal(tenant_id="t", email="admin@x", role="admin")
VIEWER_WEB = Principal(tenant_id="t", email="v@x", role="viewer", tags=("web",))


def test_error_codes_map_to_http_statuses():
    assert ApiError("AUTH001", "x").status == 401
    assert ApiError("AUTH003", "x").status == 403
    assert ApiError("SRV001", "x").status == 404
    assert ApiError("RATE001", "x", retry_after=3).status == 429
    assert ApiError("HTTP405", "x").status == 405
    assert ApiError("EXEC004", "x", status=400).status == 400
    with pytest.raises(ValueError):
        ApiError("NOPE1", "x")
    resp = error_response(ApiError("RATE001", "slow down", retry_after=3))
    assert resp.body == {"error": {"code": "RATE001", "message": "slow down", "details": {"retry_after": 3}}}
    assert resp.headers["Retry-After"] == "4"
    assert "WWW-Authenticate" in error_response(ApiError("AUTH002", "expired")).headers


def test_request_parsing_limits():
    req = Request("GET", "/servers", query={"limit": "101", "tags": ["a,b", "c"], "page": "x"})
    with pytest.raises(ApiError) as exc:
        req.int_arg("limit", 50, 1, 100)
    assert exc.value.status == 400
    with pytest.raises(ApiError):
        req.int_arg("page", 1, 1, 10)
    assert req.args("tags") == ["a", "b", "c"]
    with pytest.raises(ApiError) as bad:
        Request("POST", "/x", headers={"content-type": "application/json"}, body=b"[1]").json()
    assert bad.value.code == "HTTP400"
    with pytest.raises(ApiError) as media:
        Request("POST", "/x", headers={"content-type": "text/plain"}, body=b"{}").json()
    assert media.value.status == 415
    # PostgreSQL text cannot hold NUL: refused as 400 wherever it comes (found by the contract test)
    for bad_req, read in ((Request("GET", "/s", query={"search": "a\x00b"}), lambda r: r.arg("search")),
                          (Request("GET", "/s", query={"tags": ["ok", "x\x00"]}), lambda r: r.args("tags")),
                          (Request("POST", "/s", body=b'{"content": {"k": ["\\u0000"]}}'), lambda r: r.json())):
        with pytest.raises(ApiError) as nul:
            read(bad_req)
        assert nul.value.status == 400 and nul.value.code == "SYS003"


def test_translate_chat_and_server_events():
    (kind, payload, route), = translate("serverflow/chat/c1/delta",
                                        {"request_id": "r", "type": "step", "function": "ps.top",
                                         "targets": ["m"], "jid": "1"})
    assert kind == "content_delta" and "ps.top" in payload["delta"] and route["conversation_id"] == "c1"
    assert translate("serverflow/chat/c1/delta", {"type": "answer", "text": "x"}) == []
    (kind, payload, _), = translate("serverflow/chat/c1/action", {"action_id": "a", "label": "L",
                                                                   "function": "service.restart"})
    assert kind == "action_available" and payload["requires_confirmation"] is True
    (kind, payload, _), = translate("serverflow/server/web-1/disconnected", {})
    assert kind == "server_status" and payload["status"] == "offline"
    assert translate("salt/job/1/ret/m", {}) == [] and translate("serverflow/chat/request", {}) == []


def test_sse_frames_are_single_line_json():
    frame = sse(Event(7, "content_delta", {"delta": "a\nb</script>"})).decode()
    lines = frame.strip().split("\n")
    assert lines[0] == "id: 7" and lines[1] == "event: content_delta" and len(lines) == 3
    assert json.loads(lines[2][6:])["delta"] == "a\nb</script>"
    assert sse(comment="hi", retry_ms=1000) == b"retry: 1000\n: hi\n\n"


def _hub():
    owners = {"c1": "op@x"}
    return EventHub(Visibility(owners.get, {"a1": "op@x"}.get, {"web-1": {"web"}, "db-1": {"db"}}.get))


def test_hub_visibility_and_resume():
    hub = _hub()
    start = hub.last_id
    hub.publish("serverflow/chat/c1/delta", {"request_id": "r", "type": "result", "minion": "m",
                                             "function": "f", "success": True})
    hub.publish("serverflow/action/a1/approved", {"by": "admin@x"})
    hub.publish("serverflow/server/db-1/connected", {})
    hub.publish("serverflow/server/web-1/connected", {})

    def seen(principal, after):
        out = []
        for event in hub.stream(principal, after, heartbeat=0.05, max_seconds=0.2):
            if event is not None:
                out.append(event)
        return out

    assert [e.type for e in seen(OP, start)] == ["content_delta", "action_update", "server_status", "server_status"]
    assert [e.type for e in seen(ADMIN, start)] == ["action_update", "server_status", "server_status"]
    assert [e.data["minion_id"] for e in seen(VIEWER_WEB, start)] == ["web-1"]
    first = seen(OP, start)[0].id
    assert [e.id for e in seen(OP, first)] == [e.id for e in seen(OP, start)][1:]


def test_hub_wakes_a_waiting_stream():
    hub = _hub()
    got = []

    def reader():
        for event in hub.stream(OP, hub.last_id, heartbeat=5, max_seconds=5,
                                until=lambda e: e.type == "message_end"):
            if event is not None:
                got.append(event.type)

    thread = threading.Thread(target=reader)
    thread.start()
    hub.publish("serverflow/chat/c1/done", {"request_id": "r", "message_id": "m"})
    thread.join(3)
    assert got == ["message_end"] and not thread.is_alive()


def test_openapi_covers_every_route_and_errors():
    doc = document()
    for route in ROUTES:
        op = doc["paths"][route.path][route.method.lower()]
        for status in route.responses:
            assert str(status) in op["responses"]
        if route.public:
            assert op["security"] == []
    assert doc["paths"]["/servers"]["get"]["parameters"][-1]["schema"]["maximum"] == 100


def test_dispatcher_routes_and_refuses_without_token():
    class Nothing:
        settings = {"tenant_id": "t", "security": {"secret_key": "k" * 32}}
        db = None

    dispatch = Dispatcher(Nothing(), document())
    assert dispatch(Request("GET", "/openapi.json")).status == 200
    denied = dispatch(Request("GET", "/servers"))
    assert denied.status == 401 and denied.body["error"]["code"] == "AUTH001"
    assert "Content-Security-Policy" in denied.headers
    assert dispatch(Request("PATCH", "/servers")).headers["Allow"] == "GET"
    assert dispatch(Request("GET", "/servers/x/y/z")).status == 404
