"""The OpenAPI 3 document of ``/v1``, built from the route table (so the two cannot drift)."""

from __future__ import annotations

from typing import Any

from salt_ext.api.http import HTTP_CODES
from salt_ext.api.routes import ROUTES
from salt_ext.errors import ERROR_CODES

S = {"type": "string"}
NS = {"type": ["string", "null"]}
I = {"type": "integer"}
NI = {"type": ["integer", "null"]}
STRS = {"type": "array", "items": S}
OBJ = {"type": "object"}
ANY: dict[str, Any] = {}


def _obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    return out


def _page(item: str) -> dict[str, Any]:
    return _obj({"data": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
                 "pagination": {"$ref": "#/components/schemas/Pagination"}}, ("data", "pagination"))


SERVER = {"id": NS, "minion_id": S, "hostname": NS, "ip_addresses": STRS, "os": NS, "os_family": NS,
          "os_release": NS, "cpu_count": NI, "memory_total": NI,
          "status": {"type": "string", "enum": ["online", "offline", "unknown"]},
          "last_seen_at": NS, "tags": STRS, "services": STRS}

SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": _obj({"code": {"type": "string", "enum": sorted({*ERROR_CODES, *HTTP_CODES})},
                                  "message": S, "details": OBJ}, ("code", "message"))}, ("error",)),
    "Pagination": _obj({"total": I, "page": I, "limit": {"type": "integer", "minimum": 1, "maximum": 100}},
                       ("total", "page", "limit")),
    "LoginRequest": _obj({"email": {"type": "string", "minLength": 1, "maxLength": 255},
                          "password": {"type": "string", "minLength": 1, "maxLength": 1024},
                          "mfa_code": {"type": "string", "maxLength": 64}}, ("email", "password")),
    "RefreshRequest": _obj({"refresh_token": {"type": "string", "maxLength": 512}}),
    "TokenPair": _obj({"access_token": S, "token_type": S, "expires_in": I, "refresh_token": S,
                       "refresh_expires_at": NS,
                       "user": _obj({"id": NS, "email": S, "name": NS, "role": S}, ("email", "role"))},
                      ("access_token", "expires_in", "user")),
    "Principal": _obj({"id": NS, "tenant_id": S, "email": S, "name": S, "role": S, "tags": STRS,
                       "method": S, "permissions": STRS}, ("email", "role", "permissions")),
    "Server": _obj(SERVER, ("minion_id", "status", "tags")),
    "ServerPage": _page("Server"),
    "ServerDetail": _obj({**SERVER, "kernel": NS, "grains": OBJ,
                          "recent_executions": {"type": "array", "items": {"$ref": "#/components/schemas/Execution"}}},
                         ("minion_id", "status", "grains", "recent_executions")),
    "ExecuteRequest": _obj({"module": {"type": "string", "minLength": 1, "maxLength": 255}, "args": OBJ,
                            "timeout": {"type": "integer", "minimum": 1, "maximum": 600, "default": 60}},
                           ("module",)),
    "ExecuteAccepted": _obj({"job_id": S, "execution_id": S, "action_id": S,
                             "status": {"type": "string", "enum": ["pending", "approval_required"]},
                             "error": OBJ, "preview": OBJ}, ("status",)),
    "ConversationCreate": _obj({"title": {"type": "string", "maxLength": 255}}),
    "ConversationCreated": _obj({"id": S, "title": S, "created_at": S}, ("id", "title", "created_at")),
    "Conversation": _obj({"id": S, "title": NS, "created_at": NS, "updated_at": NS, "messages": I}, ("id",)),
    "ConversationPage": _page("Conversation"),
    "ConversationDetail": _obj({"id": S, "title": NS, "created_at": NS, "updated_at": NS,
                                "messages": {"type": "array", "items": OBJ},
                                "executions": {"type": "array", "items": OBJ},
                                "actions": {"type": "array", "items": OBJ}}, ("id", "messages")),
    "MessageCreate": _obj({"content": {"type": "string", "minLength": 1, "maxLength": 4000}}, ("content",)),
    "Action": _obj({"id": S, "conversation_id": NS, "requested_by": NS, "function": S, "targets": STRS,
                    "args": OBJ, "label": NS, "reason": NS, "preview": ANY, "created_at": NS, "expires_at": NS},
                   ("id", "function", "targets")),
    "ActionList": _obj({"data": {"type": "array", "items": {"$ref": "#/components/schemas/Action"}},
                        "can_approve": {"type": "boolean"}}, ("data", "can_approve")),
    "ExecuteAction": _obj({"confirm": {"type": "boolean"}, "parameters": OBJ}, ("confirm",)),
    "RejectAction": _obj({"reason": {"type": "string", "maxLength": 500}}),
    "ActionResult": _obj({"action_id": S, "status": S, "jid": NS, "execution_id": NS, "returns": OBJ,
                          "missing": STRS}, ("action_id", "status")),
    "Execution": _obj({"id": S, "conversation_id": NS, "job_id": NS, "module": S, "targets": ANY, "args": ANY,
                       "status": S, "requested_by": NS, "started_at": NS, "completed_at": NS,
                       "created_at": NS}, ("id", "module", "status")),
    "ExecutionPage": _page("Execution"),
    "AuditEntry": _obj({"id": I, "action": S}, ("id", "action")),
    "Empty": _obj({}),
    "MfaEnrollment": _obj({"secret": S, "otpauth_uri": S, "recovery_codes": STRS, "mfa_enabled": {"type": "boolean"}},
                          ("secret", "otpauth_uri", "recovery_codes", "mfa_enabled")),
    "MfaConfirm": _obj({"code": {"type": "string", "minLength": 1, "maxLength": 64}}, ("code",)),
    "MfaStatus": _obj({"mfa_enabled": {"type": "boolean"}}, ("mfa_enabled",)),
    "Alert": _obj({"id": S, "minion_id": NS, "server_id": NS,
                   "severity": S, "title": S, "description": NS, "metric_name": NS,
                   "metric_value": {"type": ["number", "null"]}, "threshold": {"type": ["number", "null"]},
                   "status": {"type": "string", "enum": ["active", "resolved", "acknowledged"]},
                   "created_at": NS, "resolved_at": NS}, ("id", "severity", "title", "status")),
    "AlertPage": _page("Alert"),
    # One Server-Sent Events frame; ``data`` is a JSON object (see salt_ext.api.events for each type).
    "SseEvent": _obj({"id": S, "event": {"type": "string", "enum": [
        "message_start", "content_delta", "action_available", "message_end", "error",
        "action_update", "server_status", "alert", "reset"]},
        "data": {"type": "string", "contentMediaType": "application/json"}, "retry": I}),
    "AuditPage": _page("AuditEntry"),
}

PARAMS: dict[str, dict[str, Any]] = {
    "status": {"schema": {"type": "string", "enum": ["online", "offline", "unknown"]},
               "description": "Filter by status"},
    "tags": {"schema": {"type": "array", "items": {"type": "string", "pattern": "^[^,\\s]{1,100}$"}},
             "style": "form", "explode": True, "description": "Servers carrying every tag"},
    "search": {"schema": {"type": "string", "maxLength": 200}, "description": "Search minion id, hostname, IP, OS"},
    "page": {"schema": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1}},
    "limit": {"schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
              "description": "Page size (max 100)"},
    "alert_status": {"name": "status", "schema": {"type": "string", "enum": ["active", "resolved", "all"],
                                                  "default": "active"}},
    "user": {"schema": {"type": "string", "maxLength": 255}},
    "action": {"schema": {"type": "string", "maxLength": 100}},
    "since": {"schema": {"type": "string", "pattern": "^[0-9]{1,6}[smhdw]$"}, "description": "e.g. 24h"},
    "conversation_id": {"schema": {"type": "string", "format": "uuid"}},
    "last_event_id": {"schema": {"type": "integer", "minimum": 0}},
    "max_seconds": {"schema": {"type": "integer", "minimum": 1, "maximum": 3600}},
}

_STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No content", 400: "Invalid request",
                401: "Not signed in, bad credentials or expired token", 403: "Not allowed",
                404: "Not found", 409: "Conflict (state)", 413: "Too large", 415: "Send JSON",
                422: "Refused as unsafe", 429: "Rate limited", 503: "Unavailable"}


def _response(status: int, schema: str | None, stream: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "")}
    if status == 204:
        return out
    if status >= 400:
        out["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    elif stream:
        out["content"] = {"text/event-stream": {"schema": {"$ref": "#/components/schemas/SseEvent"}}}
        out["description"] += (": events message_start, content_delta, action_available, message_end, error"
                               " (chat); server_status, alert, action_update (live)")
    elif schema:
        out["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
    else:
        out["content"] = {"application/json": {"schema": {"type": "object"}}}
    return out


def document(server_url: str = "/v1") -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for route in ROUTES:
        op: dict[str, Any] = {"operationId": route.handler, "summary": route.summary, "tags": [route.tag],
                              "responses": {str(s): _response(s, n, route.stream) for s, n in route.responses.items()}}
        params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in route.regex.groupindex]
        params += [{"name": q, "in": "query", "required": False, **PARAMS[q]} for q in route.query]
        if params:
            op["parameters"] = params
        if route.body:
            op["requestBody"] = {"required": route.body not in ("RefreshRequest", "ConversationCreate", "RejectAction", "Empty"),
                                 "content": {"application/json": {
                                     "schema": {"$ref": f"#/components/schemas/{route.body}"}}}}
        if route.public:
            op["security"] = []
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "ServerFlow API", "version": "1.0.0",
                 "description": "ServerFlow's REST API (spec §5), served by salt-api. Errors are "
                                "{\"error\": {\"code\", \"message\"}} with the codes of spec §10.2."},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "security": [{"bearer": []}],
    }
