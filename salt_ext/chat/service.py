"""One chat turn: load context, plan, run the read-only steps, answer, and record it all.

``ChatService.handle`` is what the engine runs for every ``serverflow/chat/request``.
It streams progress through ``emit(kind, data)`` (kinds: delta, action, done, error)
and never raises: every failure ends as an ``error`` event with a spec code.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from salt_ext.approvals.preview import preview_actions
from salt_ext.chat import executor, store as chat_store
from salt_ext.errors import ErrorInfo, ServerFlowError
from salt_ext.inventory import store as inventory_store
from salt_ext.inventory.model import Server
from salt_ext.llm.assist import LLMAssist
from salt_ext.pipeline import PlanResult, PlanStep
from salt_ext.pipeline.policy import check_step
from salt_ext.registry import load_registry
from salt_ext.responder import respond
from salt_ext.security import audit
from salt_ext.security.identity import principal_for_salt_user
from salt_ext.security.ratelimit import RateLimiter
from salt_ext.security.roles import authorize, authorize_plan

log = logging.getLogger(__name__)

Emit = Callable[[str, dict[str, Any]], None]


@dataclass
class ChatRequest:
    """A question as it arrives on the bus; ``user`` comes from Salt's authentication."""

    message: str
    conversation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    user: str | None = None

    @classmethod
    def from_event(cls, data: dict[str, Any]) -> "ChatRequest":
        conversation = str(data.get("conversation_id") or "") or str(uuid.uuid4())
        try:
            conversation = str(uuid.UUID(conversation))
        except ValueError:
            raise ServerFlowError("AI001", f"conversation id {conversation!r} is not a UUID") from None
        message = data.get("message")
        return cls(message=message if isinstance(message, str) else "",
                   conversation_id=conversation,
                   request_id=str(data.get("request_id") or uuid.uuid4().hex),
                   user=str(data["user"]) if data.get("user") else None)


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 1)


class ChatService:
    """Answers questions for one tenant using a Database and a LocalClient factory."""

    def __init__(self, settings: dict[str, Any], db: Any, client_factory: Callable[[], Any], *,
                 master_user: str | None = None) -> None:
        self.settings = settings
        self.master_user = master_user
        self.limiter = RateLimiter(settings)
        self.chat = settings["chat"]
        self.tenant_id = settings["tenant_id"]
        self.db = db
        self.client_factory = client_factory
        # serverflow:llm: the hybrid LLM planner/writer, or offline only when none is configured
        self.llm = LLMAssist.from_settings(settings)

    # -- the turn ---------------------------------------------------------------------
    def handle(self, request: ChatRequest, emit: Emit) -> dict[str, Any] | None:
        """Run one turn; returns the ``done`` payload (or None after an ``error``)."""
        started = time.monotonic()
        received_at = datetime.now(timezone.utc)
        base = {"conversation_id": request.conversation_id, "request_id": request.request_id}
        try:
            # who asks comes from the signed request (Salt authenticated it), never from the text
            principal = principal_for_salt_user(self.db, self.settings, request.user,
                                                master_user=self.master_user)
            request.user = principal.name
            self.limiter.enforce("chat", self.tenant_id, principal.name)
            history, servers = self._load(request)
        except ServerFlowError as exc:
            self._audit_refusal(request, exc.info)
            emit("error", {**base, "error": exc.as_dict()})
            return None
        turn = self.llm.turn()
        plan = self.llm.plan(turn, request.message, servers, history, max_chars=int(self.chat["max_message_chars"]),
                             tenant_id=self.tenant_id)
        denied = authorize_plan(principal, plan, servers) if plan.steps else None
        if denied is not None:
            # the role or its tag scope does not cover this plan: nothing of it runs
            plan = dataclasses.replace(plan, steps=[], refused=True, requires_approval=False, error=denied)
        plan_ms = _ms(started)
        emit("delta", {**base, "type": "plan", "plan": plan.as_dict()})
        for notice in turn.notices():
            emit("delta", {**base, "type": "notice", **notice})
        if plan.error is not None and plan.error.code == "AI001":
            # an empty, over-long or off-topic message is refused before anything is recorded
            self._audit_refusal(request, plan.error)
            emit("error", {**base, "error": plan.error.as_dict()})
            return None

        inventory = {s.minion_id: s.as_dict() for s in servers}
        finished: list[Any] = []

        def step_finished(result: Any) -> None:
            # the model reads this step's findings while the slower steps still run
            finished.append(result)
            self.llm.read_along(turn, request.message, plan, list(finished), inventory)

        self.llm.read_ahead(turn, request.message, plan)  # the model reads the question while Salt runs
        try:
            salt_started = time.monotonic()
            results, executions = self._execute(request, plan, servers, emit, base, on_step=step_finished)
            salt_ms = _ms(salt_started)
            response = self._answer(request, plan, results, inventory)
            response = self.llm.write(turn, request.message, plan, results, inventory, response,
                                      on_delta=lambda d: emit("delta", {**base, **d}), tenant_id=self.tenant_id)
        finally:
            turn.stop_reading()
        for notice in turn.notices("answer"):
            emit("delta", {**base, "type": "notice", **notice})
        timings = {"plan_ms": plan_ms, "salt_ms": salt_ms, "total_ms": _ms(started)}
        timings["overhead_ms"] = round(timings["total_ms"] - salt_ms, 1)
        answer = response.as_dict()
        text = response.as_text() if hasattr(response, "as_text") else str(answer)
        emit("delta", {**base, "type": "answer", "text": text})

        proposals = self._allowed(principal, self._proposals(plan, response), servers)
        self._preview(proposals, servers, emit, base)
        persisted, message_id, action_ids, warning = self._record(
            request, plan, answer, text, timings, executions, results, proposals, received_at, turn)
        for proposal, action_id in zip(proposals, action_ids):
            emit("action", {**base, "action_id": action_id, **proposal})
        done = {**base, "message_id": message_id, "intent": plan.intent,
                "confidence": round(plan.confidence, 3), "plan": plan.as_dict(), "response": answer,
                "text": text, "actions": [{"action_id": a, **p} for p, a in zip(proposals, action_ids)],
                "timings": timings, "persisted": persisted, "llm": turn.meta(),
                "executions": [{"function": r.function, "jid": r.jid, "targets": r.targets,
                                "missing": r.missing} for r in results]}
        if warning:
            done["warning"] = warning
        emit("done", done)
        return done

    # -- stages -------------------------------------------------------------------------
    def _load(self, request: ChatRequest) -> tuple[list[dict[str, Any]], list[Server]]:
        with self.db.tenant(self.tenant_id) as conn:
            inventory_store.ensure_tenant(conn, self.tenant_id, self.settings["tenant_name"],
                                          self.settings["tenant_slug"])
            title = (request.message or "").strip().splitlines()[0][:120] if (request.message or "").strip() else "New conversation"
            chat_store.ensure_conversation(conn, self.tenant_id, request.conversation_id, title, request.user)
            history = chat_store.recent_messages(conn, request.conversation_id, int(self.chat["history"]))
            servers, _ = inventory_store.list_servers(conn)
        return [{"role": m["role"], "content": m["content"]} for m in history], servers

    def _execute(self, request: ChatRequest, plan: PlanResult, servers: list[Server], emit: Emit,
                 base: dict[str, Any], on_step: Callable[[Any], None] | None = None
                 ) -> tuple[list[Any], dict[str, str]]:
        reads = [s for s in plan.steps if s.safety == "read" and not s.requires_approval]
        if not reads or plan.refused:
            return [], {}
        offline = {s.minion_id for s in servers if s.status == "offline"}
        executions: dict[str, str] = {}  # jid -> executions.id

        def published(step, jid: str) -> None:
            emit("delta", {**base, "type": "step", "function": step.function, "targets": step.targets,
                           "jid": jid})
            try:
                with self.db.tenant(self.tenant_id) as conn:
                    executions[jid] = chat_store.start_execution(
                        conn, self.tenant_id, conversation_id=request.conversation_id, jid=jid,
                        targets=step.targets, function=step.function, args=step.args,
                        requested_by=request.user)
            except ServerFlowError as exc:
                log.warning("serverflow: execution %s not recorded: %s", jid, exc)

        client = self.client_factory()
        try:
            results = executor.run_steps(client, reads, timeout=float(self.chat["step_timeout"]),
                                         on_return=lambda d: emit("delta", {**base, **d}),
                                         on_published=published, on_step=on_step, skip=offline)
        finally:
            destroy = getattr(client, "destroy", None)
            if destroy:
                destroy()
        return results, executions

    def _answer(self, request: ChatRequest, plan: PlanResult, results: list[Any],
                inventory: dict[str, dict]) -> Any:
        only_writes = bool(plan.steps) and all(s.requires_approval for s in plan.steps)
        if plan.error is not None or plan.clarification or plan.refused or only_writes:
            return _PlainAnswer(plan)
        return respond(request.message, plan.intent or "", results, inventory=inventory)

    def _audit_refusal(self, request: ChatRequest, error: ErrorInfo) -> None:
        """Refused turns leave no conversation, but they do leave an audit entry."""
        audit.Auditor(self.db, self.tenant_id)(
            "chat.refused", user=request.user, resource_type="conversation",
            resource_id=request.conversation_id,
            details={"question": (request.message or "")[:500], "error": error.as_dict()})

    @staticmethod
    def _proposals(plan: PlanResult, response: Any) -> list[dict[str, Any]]:
        """Write steps of the plan and write actions the responder suggests: proposed, never run."""
        out: list[dict[str, Any]] = []
        seen: set[tuple] = set()
        if not plan.refused:
            for step in plan.steps:
                if step.requires_approval:
                    out.append({"function": step.function, "targets": list(step.targets),
                                "args": dict(step.args),
                                "label": f"{step.function} on {', '.join(step.targets)}",
                                "reason": f"asked: {plan.question[:200]}"})
        for action in getattr(response, "suggested_actions", []) or []:
            out.append({"function": action.function, "targets": list(action.targets),
                        "args": dict(action.args), "label": action.label, "reason": action.reason})
        unique = []
        for item in out:
            key = (item["function"], tuple(item["targets"]), repr(sorted(item["args"].items())))
            if key not in seen:
                seen.add(key)
                unique.append(item)
        return unique

    @staticmethod
    def _allowed(principal: Any, proposals: list[dict[str, Any]], servers: list[Server]) -> list[dict[str, Any]]:
        """The proposals this user may make: policy-clean and inside their role and tag scope.

        The responder may suggest a fix to anyone; only those who may propose it get an action.
        """
        known = [s.minion_id for s in servers]
        registry = load_registry()
        out = []
        for proposal in proposals:
            step = PlanStep(function=proposal["function"], targets=list(proposal["targets"]),
                            args=dict(proposal["args"]))
            _, refused = check_step(step, registry, known)
            if refused is None and authorize(principal, "propose", step.targets, servers) is None:
                out.append(proposal)
        return out

    def _preview(self, proposals: list[dict[str, Any]], servers: list[Server], emit: Emit,
                 base: dict[str, Any]) -> None:
        """Attach a preview (dry run or current state, from the minions) to every proposal."""
        if not proposals:
            return
        offline = {s.minion_id for s in servers if s.status == "offline"}
        previews = preview_actions(self.client_factory, proposals, timeout=float(self.chat["step_timeout"]),
                                   skip=offline, on_return=lambda d: emit("delta", {**base, **d, "type": "preview"}))
        for proposal, preview in zip(proposals, previews):
            proposal["preview"] = preview

    def _record(self, request: ChatRequest, plan: PlanResult, answer: dict[str, Any], text: str,
                timings: dict[str, float], executions: dict[str, str], results: list[Any],
                proposals: list[dict[str, Any]], received_at: datetime, turn: Any = None):
        """Store the turn in one transaction: both messages, execution results, proposals."""
        try:
            with self.db.tenant(self.tenant_id) as conn:
                chat_store.add_message(conn, self.tenant_id, request.conversation_id, "user",
                                       request.message, {"user": request.user, "request_id": request.request_id},
                                       created_at=received_at)
                message_id = chat_store.add_message(
                    conn, self.tenant_id, request.conversation_id, "assistant", text,
                    {"plan": plan.as_dict(), "intent": plan.intent, "confidence": round(plan.confidence, 3),
                     "timings": timings, "response": answer,
                     **(turn.meta() if turn is not None else {"planner": "offline"})},
                    tokens_used=turn.tokens_used if turn is not None else 0)
                if turn is not None:
                    LLMAssist.record(conn, self.tenant_id, turn, conversation_id=request.conversation_id,
                                     message_id=message_id, request_id=request.request_id)
                by_jid = {r.jid: r for r in results if r.jid}
                for jid, execution_id in executions.items():
                    result = by_jid.get(jid)
                    status = "completed" if result and not result.missing and not result.error else (
                        "partial" if result and result.returns else "failed")
                    chat_store.finish_execution(conn, execution_id, status=status, message_id=message_id,
                                                results={m: r.ret for m, r in (result.returns if result else {}).items()})
                action_ids = [chat_store.propose_action(
                    conn, self.tenant_id, conversation_id=request.conversation_id, message_id=message_id,
                    requested_by=request.user, ttl_seconds=int(self.chat["action_ttl"]), **p)
                    for p in proposals]
                audit.append(conn, self.tenant_id, "chat.question", actor=request.user,
                             resource_type="conversation", resource_id=request.conversation_id,
                             details={"question": request.message[:2000], "intent": plan.intent,
                                      "steps": [(s.function, s.targets) for s in plan.steps],
                                      "policy": {"refused": plan.refused,
                                                 "requires_approval": plan.requires_approval,
                                                 "error": plan.error.as_dict() if plan.error else None},
                                      "executed": [r.jid for r in results if r.jid]})
                for proposal, action_id in zip(proposals, action_ids):
                    audit.append(conn, self.tenant_id, "action.proposed", actor=request.user,
                                 resource_type="action", resource_id=action_id,
                                 details={**{k: proposal[k] for k in ("function", "targets", "args")},
                                          "preview": {k: (proposal.get("preview") or {}).get(k)
                                                      for k in ("mode", "function", "jid")}})
            return True, message_id, action_ids, None
        except ServerFlowError as exc:
            log.error("serverflow: conversation %s not saved: %s", request.conversation_id, exc)
            warning = ErrorInfo("SYS001", "the answer could not be saved (database unavailable); "
                                "the conversation is unchanged and the proposed actions were not recorded")
            return False, None, [], warning.as_dict()


class _PlainAnswer:
    """The answer to a plan that ran nothing: an error, a refusal or a question back."""

    def __init__(self, plan: PlanResult) -> None:
        self.plan = plan
        self.suggested_actions: list[Any] = []

    def as_dict(self) -> dict[str, Any]:
        return {"summary": self.as_text(), "findings": [], "recommendations": [],
                "suggested_actions": [], "follow_ups": [], "unanswered": [],
                "error": self.plan.error.as_dict() if self.plan.error else None,
                "clarification": self.plan.clarification}

    def as_text(self) -> str:
        plan = self.plan
        if plan.error is not None:
            text = f"{plan.error.code}: {plan.error.message}"
            if plan.clarification and plan.clarification != plan.error.message:
                text += f"\n{plan.clarification}"
            return text
        if plan.refused:
            return "Refused: this request is not allowed."
        if plan.steps and all(s.requires_approval for s in plan.steps) and not plan.clarification:
            asked = "; ".join(f"{s.function} on {', '.join(s.targets)}" for s in plan.steps)
            return (f"Nothing has run: this changes servers, so it waits for the approval of someone "
                    f"allowed to approve it. Proposed: {asked}.")
        return plan.clarification or ""
