"""The ``/v1`` endpoints: each a method of ``Api`` taking (request, principal) and returning a Response.

Reads go through the existing stores and queries (inventory, chat, approvals,
audit); every decision about who may do what goes through
``salt_ext.security.roles``; identities come from ``salt_ext.security``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Callable, Iterator

from salt_ext.api import auth
from salt_ext.api.events import Event, EventHub, sse
from salt_ext.api.http import ApiError, Request, Response, to_jsonable
from salt_ext.approvals.preview import preview_actions
from salt_ext.approvals.service import ApprovalService
from salt_ext.chat import store as chat_store
from salt_ext.chat.client import CHAT_REQUEST
from salt_ext.chat.signing import load_key, sign
from salt_ext.errors import ServerFlowError
from salt_ext.inventory import store as inventory_store
from salt_ext.pipeline import PlanResult, PlanStep, check_plan
from salt_ext.registry import salt_call
from salt_ext.alerts import store as alert_store
from salt_ext.security import admin, audit, tokens
from salt_ext.security.identity import Principal
from salt_ext.security.roles import authorize, authorizer, in_scope

log = logging.getLogger(__name__)

MAX_LIMIT = 100


def _uuid(value: str, what: str, code: str = "SYS003") -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ApiError(code, f"{what} {value!r} is not a UUID", status=404 if code != "SYS003" else 400) from None


def _pagination(request: Request, default: int = 50) -> tuple[int, int]:
    page = request.int_arg("page", 1, 1, 1_000_000)
    limit = request.int_arg("limit", default, 1, MAX_LIMIT)
    return page, limit


def _server_summary(server: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "minion_id", "hostname", "ip_addresses", "os", "os_family", "os_release", "cpu_count",
            "memory_total", "status", "last_seen_at", "tags", "services")
    return {k: server.get(k) for k in keep}


class Api:
    """The API's state: settings, database, event hub and the ways to reach Salt."""

    def __init__(self, settings: dict[str, Any], db: Any, hub: EventHub, *,
                 opts: dict[str, Any] | None = None, limiter: Any = None,
                 client_factory: Callable[[], Any] | None = None,
                 fire: Callable[[str, dict[str, Any]], None] | None = None,
                 secure_cookies: bool = False) -> None:
        self.settings = settings
        self.tenant_id = str(settings["tenant_id"])
        self.db = db
        self.hub = hub
        self.opts = opts or {}
        self.limiter = limiter
        self.client_factory = client_factory
        self.fire = fire or (lambda tag, data: None)
        self.secure_cookies = secure_cookies
        self.audit = audit.Auditor(db, self.tenant_id)

    # -- helpers ------------------------------------------------------------------------------
    def _limit(self, bucket: str, who: str | None) -> None:
        if self.limiter is None:
            return
        try:
            self.limiter.enforce(bucket, self.tenant_id, who)
        except ServerFlowError as exc:
            raise ApiError.from_serverflow(exc) from None

    def _inventory(self) -> dict[str, set[str]]:
        with self.db.tenant(self.tenant_id) as conn:
            rows = conn.execute("SELECT minion_id, tags FROM servers").fetchall()
        return {r["minion_id"]: set(r["tags"] or []) for r in rows}

    def _approvals(self) -> ApprovalService:
        return ApprovalService(self.settings, self.db, self.client_factory,
                               authorize=authorizer(self._inventory), fire=self.fire, audit=self.audit)

    def _server_or_404(self, conn: Any, key: str, principal: Principal) -> Any:
        found = inventory_store.get_server(conn, key)
        if found is None or not in_scope(principal.tags, found.tags):
            raise ApiError("SRV001", f"no server {key!r} in the inventory")
        return found

    def _conversation_or_404(self, conn: Any, cid: str, principal: Principal) -> dict[str, Any]:
        row = conn.execute("SELECT id, title, created_by, created_at, updated_at FROM conversations"
                           " WHERE id::text = %s", (cid,)).fetchone()
        if row is None or (row["created_by"] or "").lower() != principal.email.lower():
            raise ApiError("AI001", f"no conversation {cid}", status=404)
        return row

    # -- auth ---------------------------------------------------------------------------------
    def _session_response(self, pair: tokens.TokenPair, status: int = 200) -> Response:
        body = pair.as_dict()
        cookies = []
        if pair.refresh_token:
            ttl = int(tokens._conf(self.settings)["refresh_ttl"])
            cookies.append(auth.refresh_cookie(pair.refresh_token, ttl, self.secure_cookies))
        return Response(status, body, cookies=cookies)

    def login(self, request: Request, principal: None) -> Response:
        data = request.json()
        email, password = data.get("email"), data.get("password")
        if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
            raise ApiError("AUTH001", "send email and password")
        mfa_code = data.get("mfa_code")
        if mfa_code is not None and not isinstance(mfa_code, str):
            raise ApiError("AUTH001", "mfa_code must be a string")
        self._limit("login", email.strip().lower())
        try:
            pair = tokens.login(self.db, self.settings, email, password, mfa_code or None,
                                ip=request.remote_ip, user_agent=request.header("user-agent"))
        except ServerFlowError as exc:
            raise ApiError.from_serverflow(exc) from None
        return self._session_response(pair)

    def _refresh_token(self, request: Request) -> str:
        data = request.json()
        token = data.get("refresh_token")
        if token is not None and not isinstance(token, str):
            raise ApiError("AUTH001", "refresh_token must be a string")
        if not token:
            token = request.cookies.get(auth.REFRESH_COOKIE)
            if not token:
                raise ApiError("AUTH001", "send refresh_token (or the sf_refresh cookie)")
            auth.check_csrf(request)
        return token

    def refresh(self, request: Request, principal: None) -> Response:
        token = self._refresh_token(request)
        try:
            pair = tokens.refresh(self.db, self.settings, token, ip=request.remote_ip,
                                  user_agent=request.header("user-agent"))
        except ServerFlowError as exc:
            raise ApiError.from_serverflow(exc) from None
        return self._session_response(pair)

    def logout(self, request: Request, principal: None) -> Response:
        token = self._refresh_token(request)
        tokens.logout(self.db, self.settings, token, ip=request.remote_ip,
                      user_agent=request.header("user-agent"))
        return Response(204, cookies=[auth.refresh_cookie(None, 0, self.secure_cookies)])

    def me(self, request: Request, principal: Principal) -> Response:
        return Response(200, principal.as_dict())

    def _mfa(self, principal: Principal, code: str | None) -> dict[str, Any]:
        if principal.id is None or principal.api_key_id:
            raise ApiError("AUTH003", "two-factor enrolment is for signed-in users, not API keys")
        try:
            return admin.mfa_enroll(self.settings, self.db, principal, principal.email, code)
        except ServerFlowError as exc:
            raise ApiError.from_serverflow(exc) from None

    def mfa_enroll(self, request: Request, principal: Principal) -> Response:
        """A new pending TOTP secret and recovery codes (shown once); MFA stays as it was until confirmed."""
        request.json()
        found = self._mfa(principal, None)
        return Response(200, {"secret": found["secret"], "otpauth_uri": found["otpauth_uri"],
                              "recovery_codes": found["recovery_codes"], "mfa_enabled": found["mfa_enabled"]})

    def mfa_confirm(self, request: Request, principal: Principal) -> Response:
        code = request.json().get("code")
        if not isinstance(code, str) or not code.strip() or len(code) > 64:
            raise ApiError("AUTH001", "send the current 6-digit code of the authenticator as code")
        self._limit("login", "mfa:" + principal.email.lower())
        found = self._mfa(principal, code.strip())
        return Response(200, {"mfa_enabled": bool(found["mfa_enabled"])})

    # -- servers ------------------------------------------------------------------------------
    def list_servers(self, request: Request, principal: Principal) -> Response:
        page, limit = _pagination(request)
        status = request.arg("status")
        if status and status not in ("online", "offline", "unknown"):
            raise ApiError("SYS003", f"status must be online, offline or unknown, not {status!r}")
        search = request.arg("search")
        if search is not None and len(search) > 200:
            raise ApiError("SYS003", "search is limited to 200 characters")
        tags = request.args("tags") or request.args("tag")
        with self.db.tenant(self.tenant_id) as conn:
            if principal.tags:
                every, _ = inventory_store.list_servers(conn, status=status, tags=tags, search=search)
                scoped = [s for s in every if in_scope(principal.tags, s.tags)]
                total, found = len(scoped), scoped[(page - 1) * limit:page * limit]
            else:
                found, total = inventory_store.list_servers(conn, status=status, tags=tags, search=search,
                                                            limit=limit, offset=(page - 1) * limit)
        return Response(200, {"data": [_server_summary(s.as_dict()) for s in found],
                              "pagination": {"total": total, "page": page, "limit": limit}})

    def get_server(self, request: Request, principal: Principal) -> Response:
        with self.db.tenant(self.tenant_id) as conn:
            server = self._server_or_404(conn, request.params["id"], principal).as_dict()
            recent = conn.execute(
                "SELECT id, job_id, module, targets, args, status, requested_by, started_at, completed_at"
                " FROM executions WHERE targets @> %s::jsonb ORDER BY created_at DESC LIMIT 20",
                (json.dumps([server["minion_id"]]),)).fetchall()
        server["recent_executions"] = [chat_store.clean_row(r) for r in recent]
        return Response(200, server)

    def delete_server(self, request: Request, principal: Principal) -> Response:
        auth.require(principal, "administer")
        with self.db.tenant(self.tenant_id) as conn:
            server = self._server_or_404(conn, request.params["id"], principal)
            inventory_store.delete_server(conn, server.minion_id)
        self.audit("server.delete", user=principal.name, resource_type="server",
                   resource_id=server.minion_id, details={"minion_id": server.minion_id})
        return Response(204)

    def execute_on_server(self, request: Request, principal: Principal) -> Response:
        data = request.json()
        module = data.get("module")
        args = data.get("args") or {}
        timeout = data.get("timeout", 60)
        if not isinstance(module, str) or not module:
            raise ApiError("SYS003", "module is required (a Salt function such as service.status)")
        if not isinstance(args, dict):
            raise ApiError("SYS003", "args must be an object")
        if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= 600:
            raise ApiError("SYS003", "timeout must be an integer between 1 and 600")
        with self.db.tenant(self.tenant_id) as conn:
            server = self._server_or_404(conn, request.params["id"], principal)
        minion = server.minion_id
        step = PlanStep(function=module, targets=[minion], args=dict(args))
        checked = check_plan(PlanResult(question="", steps=[step], targets=[minion]),
                             known_targets=[minion])
        if checked.refused or not checked.steps:
            error = checked.error
            raise ApiError(error.code if error else "EXEC003",
                           error.message if error else f"{module} is not allowed")
        step = checked.steps[0]
        inventory = self._inventory()
        if step.safety == "read" and not step.requires_approval:
            denied = authorize(principal, "ask", [minion], inventory)
            if denied:
                raise ApiError(denied.code, denied.message)
            self._limit("api", principal.name)
            return self._run_read(step, principal, timeout)
        denied = authorize(principal, "propose", [minion], inventory)
        if denied:
            raise ApiError(denied.code, denied.message)
        preview = preview_actions(self.client_factory, [{"function": step.function, "targets": [minion],
                                                          "args": dict(step.args)}],
                                  timeout=float(self.settings["chat"]["step_timeout"]),
                                  skip=[minion] if server.status == "offline" else [])[0]
        with self.db.tenant(self.tenant_id) as conn:
            action_id = chat_store.propose_action(
                conn, self.tenant_id, conversation_id=None, message_id=None, requested_by=principal.name,
                function=step.function, targets=[minion], args=dict(step.args),
                label=f"{step.function} on {minion}", reason="requested through the API",
                ttl_seconds=int(self.settings["chat"]["action_ttl"]), preview=preview)
        self.audit("action.proposed", user=principal.name, resource_type="action", resource_id=action_id,
                   details={"function": step.function, "targets": [minion], "args": step.args,
                            "preview": {k: preview.get(k) for k in ("mode", "function", "jid")}})
        self.fire(f"serverflow/action/{action_id}/proposed", {"action_id": action_id, "by": principal.name})
        return Response(202, {"status": "approval_required", "action_id": action_id, "preview": preview,
                              "error": {"code": "EXEC004", "message": "a write action needs approval; "
                                        "an approver runs it with POST /v1/chat/actions/{id}/execute"}})

    def _run_read(self, step: PlanStep, principal: Principal, timeout: int) -> Response:
        call = salt_call(step.function, dict(step.args))
        client = self.client_factory()
        try:
            pub = client.run_job(step.targets, call.fun, arg=call.arg, kwarg=call.kwarg, tgt_type="list",
                                 timeout=timeout)
        finally:
            destroy = getattr(client, "destroy", None)
            if destroy:
                destroy()
        if not pub or not pub.get("jid"):
            raise ApiError("SRV002", f"{', '.join(step.targets)} did not take the job (offline?)")
        jid = str(pub["jid"])
        with self.db.tenant(self.tenant_id) as conn:
            execution = chat_store.start_execution(conn, self.tenant_id, conversation_id=None, jid=jid,
                                                   targets=step.targets, function=step.function,
                                                   args=dict(step.args), requested_by=principal.name)
        self.audit("execution.started", user=principal.name, resource_type="execution", resource_id=execution,
                   details={"jid": jid, "function": step.function, "targets": step.targets})
        return Response(202, {"job_id": jid, "execution_id": execution, "status": "pending"})

    # -- chat ---------------------------------------------------------------------------------
    def create_conversation(self, request: Request, principal: Principal) -> Response:
        auth.require(principal, "ask")
        data = request.json()
        title = data.get("title") or "New conversation"
        if not isinstance(title, str) or len(title) > 255:
            raise ApiError("SYS003", "title must be a string of at most 255 characters")
        cid = str(uuid.uuid4())
        with self.db.tenant(self.tenant_id) as conn:
            inventory_store.ensure_tenant(conn, self.tenant_id, self.settings["tenant_name"],
                                          self.settings["tenant_slug"])
            chat_store.ensure_conversation(conn, self.tenant_id, cid, title, principal.email)
            row = self._conversation_or_404(conn, cid, principal)
        self.hub.claim_conversation(cid, principal.email)
        return Response(201, {"id": cid, "title": row["title"], "created_at": row["created_at"]})

    def list_conversations(self, request: Request, principal: Principal) -> Response:
        page, limit = _pagination(request)
        with self.db.tenant(self.tenant_id) as conn:
            total = conn.execute("SELECT count(*) AS n FROM conversations WHERE lower(created_by) = lower(%s)",
                                 (principal.email,)).fetchone()["n"]
            rows = conn.execute(
                "SELECT c.id, c.title, c.created_at, c.updated_at,"
                " (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) AS messages"
                " FROM conversations c WHERE lower(c.created_by) = lower(%s)"
                " ORDER BY c.updated_at DESC, c.id LIMIT %s OFFSET %s",
                (principal.email, limit, (page - 1) * limit)).fetchall()
        return Response(200, {"data": [chat_store.clean_row(r) for r in rows],
                              "pagination": {"total": total, "page": page, "limit": limit}})

    def get_conversation(self, request: Request, principal: Principal) -> Response:
        cid = _uuid(request.params["id"], "conversation", "AI001")
        with self.db.tenant(self.tenant_id) as conn:
            self._conversation_or_404(conn, cid, principal)
            found = chat_store.get_conversation(conn, cid)
        found.pop("created_by", None)
        return Response(200, found)

    def send_message(self, request: Request, principal: Principal) -> Response:
        auth.require(principal, "ask")
        cid = _uuid(request.params["id"], "conversation", "AI001")
        data = request.json()
        content = data.get("content")
        if not isinstance(content, str) or not content.strip():
            raise ApiError("AI001", "content is required")
        if len(content) > int(self.settings["chat"]["max_message_chars"]):
            raise ApiError("AI003", f"a message is limited to {self.settings['chat']['max_message_chars']} characters")
        with self.db.tenant(self.tenant_id) as conn:
            self._conversation_or_404(conn, cid, principal)
        self._limit("chat", principal.name)
        self.hub.claim_conversation(cid, principal.email)
        request_id = uuid.uuid4().hex
        after = self.hub.last_id
        try:
            signed = sign(load_key(self.opts), {"conversation_id": cid, "request_id": request_id,
                                                "message": content, "user": principal.email})
        except ServerFlowError as exc:
            raise ApiError(exc.code, exc.info.message, status=503) from None
        self.fire(CHAT_REQUEST, signed)
        timeout = float(self.settings["chat"]["ask_timeout"])
        return self._sse(self._chat_stream(principal, cid, request_id, after, timeout))

    def _chat_stream(self, principal: Principal, cid: str, request_id: str, after: int,
                     timeout: float) -> Iterator[bytes]:
        yield sse(comment="stream open", retry_ms=1000)
        yield sse(Event(after, "message_start", {"message_id": request_id, "request_id": request_id,
                                                 "conversation_id": cid}))
        started = time.monotonic()
        for event in self.hub.stream(principal, after,
                                     match=lambda e: e.conversation_id == cid and e.request_id == request_id,
                                     until=lambda e: e.type in ("message_end", "error"),
                                     heartbeat=10, max_seconds=timeout):
            yield sse(event) if event is not None else sse()
            if event is not None and event.type in ("message_end", "error"):
                return
        if time.monotonic() - started >= timeout:
            yield sse(Event(self.hub.last_id, "error", {
                "conversation_id": cid, "request_id": request_id,
                "error": {"code": "EXEC002", "message": f"no answer within {timeout:.0f}s; "
                          "is the serverflow engine running? (salt-run serverflow.health)"}}))

    def _sse(self, body: Iterator[bytes]) -> Response:
        return Response(200, body, {"Content-Type": "text/event-stream; charset=utf-8",
                                    "Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    def events(self, request: Request, principal: Principal) -> Response:
        """The user's live stream: their chats, actions they may see, server status, alerts."""
        raw = request.header("last-event-id") or request.arg("last_event_id")
        try:
            after = int(raw) if raw not in (None, "") else self.hub.last_id
        except ValueError:
            raise ApiError("SYS003", "Last-Event-ID must be an event id (an integer)") from None
        cid = request.arg("conversation_id")
        if cid:
            cid = _uuid(cid, "conversation", "AI001")
            with self.db.tenant(self.tenant_id) as conn:
                self._conversation_or_404(conn, cid, principal)
        max_seconds = float(request.int_arg("max_seconds", 3600, 1, 3600))

        def body() -> Iterator[bytes]:
            yield sse(comment="stream open", retry_ms=1000)
            for event in self.hub.stream(principal, after, heartbeat=15, max_seconds=max_seconds,
                                         match=(lambda e: e.conversation_id == cid) if cid else None):
                yield sse(event) if event is not None else sse()

        return self._sse(body())

    # -- actions and approvals ----------------------------------------------------------------
    def pending_actions(self, request: Request, principal: Principal) -> Response:
        pending = self._approvals().pending()
        if "approve" not in principal.permissions:
            pending = [a for a in pending if (a.get("requested_by") or "").lower() == principal.name.lower()]
        inventory = self._inventory()
        pending = [a for a in pending if all(in_scope(principal.tags, inventory.get(t, set()))
                                             for t in a.get("targets") or [])]
        return Response(200, {"data": pending, "can_approve": "approve" in principal.permissions})

    def execute_action(self, request: Request, principal: Principal) -> Response:
        aid = _uuid(request.params["id"], "action", "EXEC004")
        data = request.json()
        if data.get("confirm") is not True:
            raise ApiError("EXEC004", "confirm the action: send {\"confirm\": true} after reading its preview",
                           status=400)
        if data.get("parameters"):
            raise ApiError("EXEC004", "an approved action runs exactly as proposed; ask again to change it",
                           status=400)
        auth.require(principal, "approve")
        try:
            result = self._approvals().approve(aid, principal)
        except ServerFlowError as exc:
            raise ApiError.from_serverflow(exc) from None
        with self.db.tenant(self.tenant_id) as conn:
            row = conn.execute("SELECT id FROM executions WHERE job_id = %s ORDER BY created_at DESC LIMIT 1",
                               (result.get("jid") or "",)).fetchone()
        return Response(202, {"execution_id": str(row["id"]) if row else None, **to_jsonable(result)})

    def reject_action(self, request: Request, principal: Principal) -> Response:
        aid = _uuid(request.params["id"], "action", "EXEC004")
        data = request.json()
        reason = data.get("reason") or ""
        if not isinstance(reason, str) or len(reason) > 500:
            raise ApiError("SYS003", "reason must be a string of at most 500 characters")
        auth.require(principal, "approve")
        try:
            result = self._approvals().reject(aid, principal, reason)
        except ServerFlowError as exc:
            raise ApiError.from_serverflow(exc) from None
        return Response(200, result)

    # -- executions and audit -----------------------------------------------------------------
    def list_executions(self, request: Request, principal: Principal) -> Response:
        page, limit = _pagination(request)
        everyone = bool({"approve", "administer"} & principal.permissions)
        where, params = ("", []) if everyone else (" WHERE lower(requested_by) = lower(%s)", [principal.name])
        with self.db.tenant(self.tenant_id) as conn:
            total = conn.execute("SELECT count(*) AS n FROM executions" + where, params).fetchone()["n"]
            rows = conn.execute(
                "SELECT id, conversation_id, job_id, module, targets, args, status, requested_by, started_at,"
                " completed_at, created_at FROM executions" + where +
                " ORDER BY created_at DESC, id LIMIT %s OFFSET %s", [*params, limit, (page - 1) * limit]).fetchall()
        return Response(200, {"data": [chat_store.clean_row(r) for r in rows],
                              "pagination": {"total": total, "page": page, "limit": limit}})

    def list_audit(self, request: Request, principal: Principal) -> Response:
        auth.require(principal, "administer")
        limit = request.int_arg("limit", 50, 1, MAX_LIMIT)
        action = request.arg("action")
        user = request.arg("user")
        since = request.arg("since")
        try:
            with self.db.tenant(self.tenant_id) as conn:
                rows = audit.search(conn, user=user, since=since, action=action, limit=limit)
        except ServerFlowError as exc:
            raise ApiError.from_serverflow(exc) from None
        return Response(200, {"data": rows, "pagination": {"total": len(rows), "page": 1, "limit": limit}})

    # -- alerts -------------------------------------------------------------------------------
    def list_alerts(self, request: Request, principal: Principal) -> Response:
        page, limit = _pagination(request)
        status = request.arg("status") or "active"
        if status not in ("active", "resolved", "all"):
            raise ApiError("SYS003", f"status must be active, resolved or all, not {status!r}")
        with self.db.tenant(self.tenant_id) as conn:
            if principal.tags:
                every, _ = alert_store.list_alerts(conn, status=None if status == "all" else status, limit=10_000)
                tags = self._inventory()
                scoped = [a for a in every if in_scope(principal.tags, tags.get(a.get("minion_id") or "", set()))]
                total, found = len(scoped), scoped[(page - 1) * limit:page * limit]
            else:
                found, total = alert_store.list_alerts(conn, status=None if status == "all" else status,
                                                       limit=limit, offset=(page - 1) * limit)
        return Response(200, {"data": found, "pagination": {"total": total, "page": page, "limit": limit}})
