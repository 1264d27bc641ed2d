import os
import uuid

import pytest

from salt_ext.approvals.model import action_hash
from salt_ext.chat.client import describe_delta
from salt_ext.chat.service import ChatRequest, ChatService
from salt_ext.chat.signing import Verifier, load_key, sign
from salt_ext.errors import ServerFlowError
from salt_ext.pipeline import PlanResult, PlanStep


def test_bus_key_is_private_and_signatures_verify_once(tmp_path):
    opts = {"cachedir": str(tmp_path)}
    with pytest.raises(ServerFlowError):
        load_key(opts)
    key = load_key(opts, create=True)
    assert load_key(opts) == key
    assert oct(os.stat(tmp_path / "serverflow" / "bus.key").st_mode & 0o777) == "0o600"
    verifier = Verifier(key)
    request = sign(key, {"request_id": "r1", "conversation_id": str(uuid.uuid4()),
                         "message": "hi", "user": "op"})
    verifier.check(request)
    with pytest.raises(ServerFlowError, match="replayed"):
        verifier.check(request)
    forged = sign(key, {"request_id": "r2", "conversation_id": "c", "message": "hi", "user": "op"})
    forged["user"] = "admin"
    with pytest.raises(ServerFlowError, match="signature") as err:
        verifier.check(forged)
    assert err.value.code == "AUTH001"
    with pytest.raises(ServerFlowError, match="signature"):
        verifier.check({"request_id": "r3", "message": "no sig"})
    stale = sign(key, {"request_id": "r4", "conversation_id": "c", "message": "m", "user": "u"})
    with pytest.raises(ServerFlowError) as err:
        verifier.check(stale, now=stale["ts"] + 3600)
    assert err.value.code == "AUTH002"
    other = sign(b"another key", {"request_id": "r5", "conversation_id": "c", "message": "m", "user": "u"})
    with pytest.raises(ServerFlowError):
        verifier.check(other)


def test_chat_request_from_event_validates_ids():
    cid = str(uuid.uuid4())
    req = ChatRequest.from_event({"conversation_id": cid, "message": "hello", "user": "op", "request_id": "x"})
    assert (req.conversation_id, req.message, req.user, req.request_id) == (cid, "hello", "op", "x")
    assert ChatRequest.from_event({"message": 5}).message == ""
    with pytest.raises(ServerFlowError) as err:
        ChatRequest.from_event({"conversation_id": "nope", "message": "x"})
    assert err.value.code == "AI001"


class _Suggested:
    def __init__(self, function, targets, args):
        self.function, self.targets, self.args = function, targets, args
        self.label, self.reason = f"{function}", "because"


class _Response:
    def __init__(self, actions):
        self.suggested_actions = actions


def test_proposals_merge_plan_writes_and_suggestions_without_duplicates():
    plan = PlanResult(question="restart nginx on web-1", steps=[
        PlanStep("service.status", ["web-1"], {"name": "nginx"}, "read", False),
        PlanStep("service.restart", ["web-1"], {"name": "nginx"}, "write", True)])
    response = _Response([_Suggested("service.restart", ["web-1"], {"name": "nginx"}),
                          _Suggested("ps.kill_pid", ["web-1"], {"pid": 42})])
    out = ChatService._proposals(plan, response)
    assert [(p["function"], p["args"]) for p in out] == [
        ("service.restart", {"name": "nginx"}), ("ps.kill_pid", {"pid": 42})]
    refused = PlanResult(question="x", refused=True, steps=[])
    assert ChatService._proposals(refused, _Response([])) == []


def test_action_hash_pins_function_targets_and_args():
    base = action_hash("t", "ps.kill_pid", ["b", "a"], {"pid": 42})
    assert base == action_hash("t", "ps.kill_pid", ["a", "b"], {"pid": 42})
    assert base != action_hash("t", "ps.kill_pid", ["a", "b"], {"pid": 1})
    assert base != action_hash("t", "ps.kill_pid", ["a"], {"pid": 42})
    assert base != action_hash("other", "ps.kill_pid", ["a", "b"], {"pid": 42})


def test_progress_lines():
    assert describe_delta({"type": "plan", "plan": {"intent": "DIAGNOSE", "targets": ["a"],
                                                    "steps": [{"function": "ps.top"}]}}) == \
        "plan: DIAGNOSE on a: ps.top"
    assert describe_delta({"type": "result", "minion": "a", "function": "ps.top", "success": True}) == \
        "a answered ps.top"
    assert describe_delta({"type": "answer"}) is None


def test_unsupported_questions_say_what_can_be_asked():
    from salt_ext.inventory.model import Server
    from salt_ext.pipeline import plan_question

    fleet = [Server(minion_id="web-1", os="Debian", os_family="Debian", tags=["web"], services=["nginx"])]
    plan = plan_question("tell me a joke", fleet)
    assert plan.error.code == "AI001" and plan.steps == []
    assert "restart a service" in plan.clarification and "metrics" in plan.clarification
    # a question about a named server is never "unsupported": it gets a health check
    assert plan_question("how is web-1 doing?", fleet).steps


def test_a_write_only_plan_says_nothing_ran_and_what_waits():
    from salt_ext.chat.service import _PlainAnswer

    plan = PlanResult(question="restart nginx on web-1", requires_approval=True, steps=[
        PlanStep("service.restart", ["web-1"], {"name": "nginx"}, "write", True)])
    text = _PlainAnswer(plan).as_text()
    assert text.startswith("Nothing has run") and "service.restart on web-1" in text
    mixed = PlanResult(question="x", steps=[PlanStep("service.status", ["web-1"], {"name": "nginx"}, "read", False)])
    assert _PlainAnswer(mixed).as_text() == ""  # a read plan is answered by the responder, not here
