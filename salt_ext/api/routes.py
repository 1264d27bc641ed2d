"""The route table (shared by the dispatcher and the OpenAPI document) and the dispatcher."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from salt_ext.api import auth
from salt_ext.api.http import ApiError, Request, Response, SECURITY_HEADERS, error_response
from salt_ext.errors import ServerFlowError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # OpenAPI style: /servers/{id}
    handler: str  # Api method name, or "openapi"
    summary: str
    tag: str
    public: bool = False  # no bearer token needed
    body: str | None = None  # schema name of the JSON body
    responses: dict[int, str | None] = field(default_factory=dict)  # status -> schema name
    query: tuple[str, ...] = ()  # names of query parameters (described in openapi.PARAMS)
    stream: bool = False

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path) + "$")


ROUTES: tuple[Route, ...] = (
    Route("POST", "/auth/login", "login", "Sign in (password, optional MFA code); returns tokens", "auth",
          public=True, body="LoginRequest", responses={200: "TokenPair", 400: None, 401: None, 415: None, 429: None}),
    Route("POST", "/auth/refresh", "refresh", "Rotate the refresh token and get a new access token", "auth",
          public=True, body="RefreshRequest", responses={200: "TokenPair", 400: None, 401: None, 403: None, 415: None}),
    Route("POST", "/auth/logout", "logout", "End the sign-in the refresh token belongs to", "auth",
          public=True, body="RefreshRequest", responses={204: None, 400: None, 401: None, 403: None, 415: None}),
    Route("GET", "/auth/me", "me", "Who the access token speaks for", "auth", responses={200: "Principal", 401: None}),
    Route("POST", "/auth/mfa/enroll", "mfa_enroll",
          "Start two-factor enrolment: a new TOTP secret, its otpauth URI and recovery codes (shown once)",
          "auth", body="Empty", responses={200: "MfaEnrollment", 400: None, 401: None, 403: None, 415: None}),
    Route("POST", "/auth/mfa/confirm", "mfa_confirm",
          "Confirm two-factor enrolment with the authenticator's current code; sign-in asks for codes from then on",
          "auth", body="MfaConfirm", responses={200: "MfaStatus", 400: None, 401: None, 403: None, 415: None,
                                                 429: None}),
    Route("GET", "/servers", "list_servers", "List servers (status, tags, search filters; paginated)", "servers",
          query=("status", "tags", "search", "page", "limit"), responses={200: "ServerPage", 400: None, 401: None}),
    Route("GET", "/servers/{id}", "get_server", "A server: grains, tags, recent executions", "servers",
          responses={200: "ServerDetail", 401: None, 404: None}),
    Route("DELETE", "/servers/{id}", "delete_server", "Remove a server from the inventory (admins)", "servers",
          responses={204: None, 401: None, 403: None, 404: None}),
    Route("POST", "/servers/{id}/execute", "execute_on_server",
          "Run a registry function on a server: reads run at once, writes become actions to approve", "servers",
          body="ExecuteRequest", responses={202: "ExecuteAccepted", 400: None, 401: None, 403: None, 404: None,
                                            409: None, 415: None, 422: None, 429: None}),
    Route("POST", "/chat/conversations", "create_conversation", "Start a conversation", "chat",
          body="ConversationCreate", responses={201: "ConversationCreated", 400: None, 401: None, 403: None, 415: None}),
    Route("GET", "/chat/conversations", "list_conversations", "Your conversations (paginated)", "chat",
          query=("page", "limit"), responses={200: "ConversationPage", 400: None, 401: None}),
    Route("GET", "/chat/conversations/{id}", "get_conversation", "A conversation with its messages and actions",
          "chat", responses={200: "ConversationDetail", 401: None, 404: None}),
    Route("POST", "/chat/conversations/{id}/messages", "send_message",
          "Send a message; the answer streams as Server-Sent Events", "chat", body="MessageCreate", stream=True,
          responses={200: "SSE", 400: None, 401: None, 403: None, 404: None, 413: None, 415: None, 429: None,
                     503: None}),
    Route("GET", "/events", "events", "Your live events (SSE; resume with Last-Event-ID)", "realtime",
          query=("conversation_id", "last_event_id", "max_seconds"), stream=True,
          responses={200: "SSE", 400: None, 401: None, 404: None}),
    Route("GET", "/chat/actions", "pending_actions", "Actions waiting for approval", "actions",
          responses={200: "ActionList", 401: None}),
    Route("POST", "/chat/actions/{id}/execute", "execute_action",
          "Approve and run a proposed action (approvers; confirm required)", "actions", body="ExecuteAction",
          responses={202: "ActionResult", 400: None, 401: None, 403: None, 404: None, 409: None, 415: None}),
    Route("POST", "/chat/actions/{id}/reject", "reject_action", "Reject a proposed action (approvers)", "actions",
          body="RejectAction", responses={200: "ActionResult", 400: None, 401: None, 403: None, 404: None,
                                          409: None, 415: None}),
    Route("GET", "/executions", "list_executions", "Executions (approvers see all, others their own)",
          "executions", query=("page", "limit"), responses={200: "ExecutionPage", 400: None, 401: None}),
    Route("GET", "/audit", "list_audit", "The audit trail (admins)", "audit",
          query=("user", "action", "since", "limit"), responses={200: "AuditPage", 400: None, 401: None, 403: None}),
    Route("GET", "/alerts", "list_alerts", "Alerts of your servers (active by default; paginated)", "alerts",
          query=("alert_status", "page", "limit"), responses={200: "AlertPage", 400: None, 401: None}),
    Route("GET", "/openapi.json", "openapi", "This document", "meta", public=True, responses={200: None}),
)


class Dispatcher:
    """Request -> Response: route, authenticate, call the handler, turn errors into JSON."""

    def __init__(self, api: Any, openapi_doc: dict[str, Any] | None = None) -> None:
        self.api = api
        self.openapi_doc = openapi_doc
        self.routes = [(r, r.regex) for r in ROUTES]

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        allowed = []
        for route, regex in self.routes:
            found = regex.match(path)
            if found:
                if route.method == method:
                    return route, found.groupdict()
                allowed.append(route.method)
        if allowed:
            raise ApiError("HTTP405", f"{path} accepts {', '.join(sorted(set(allowed)))}", allowed=sorted(set(allowed)))
        raise ApiError("HTTP404", f"no endpoint {path} under /v1 (see /v1/openapi.json)")

    def __call__(self, request: Request) -> Response:
        try:
            route, params = self.match(request.method, request.path)
            if any("\x00" in v for v in params.values()):
                raise ApiError("HTTP404", "no such resource (NUL in the path)")
            request.params = params
            if route.handler == "openapi":
                response = Response(200, self.openapi_doc)
            else:
                principal = None if route.public else auth.principal_for(request, self.api.settings, self.api.db)
                response = getattr(self.api, route.handler)(request, principal)
        except ApiError as exc:
            response = error_response(exc)
        except ServerFlowError as exc:
            response = error_response(ApiError.from_serverflow(exc))
        except Exception:
            log.exception("serverflow api: %s %s failed", request.method, request.path)
            response = error_response(ApiError("HTTP500", "internal error; the API log has the details"))
        if response.status == 405 and isinstance(response.body, dict):
            allowed = response.body.get("error", {}).get("details", {}).get("allowed")
            if allowed:
                response.headers["Allow"] = ", ".join(allowed)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response
