"""Requests, responses and errors of the ``/v1`` API, independent of the web server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Iterable, Mapping
from uuid import UUID

from salt_ext.errors import ERROR_CODES, ServerFlowError

# HTTP status for each spec code (§10.2); anything unlisted is a 400.
STATUS_FOR_CODE: dict[str, int] = {
    "AUTH001": 401, "AUTH002": 401, "AUTH003": 403, "AUTH004": 401,
    "SRV001": 404, "SRV002": 409, "SRV003": 504, "SRV004": 409,
    "EXEC001": 502, "EXEC002": 504, "EXEC003": 403, "EXEC004": 409, "EXEC005": 403,
    "AI001": 400, "AI002": 503, "AI003": 413, "AI004": 422,
    "RATE001": 429, "RATE002": 429,
    "INT001": 501, "INT002": 502, "INT003": 429,
    "SYS001": 503, "SYS002": 503, "SYS003": 400,
}
# HTTP-level failures that are not in the spec's table (no route, wrong method, bad JSON).
HTTP_CODES = {"HTTP400": "Bad request", "HTTP404": "Not found", "HTTP405": "Method not allowed",
              "HTTP415": "Unsupported media type", "HTTP500": "Internal error"}

# The web app and the API share one strict policy: no inline script or style, same origin only.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class ApiError(Exception):
    """An error answered as ``{"error": {...}}`` with an HTTP status."""

    def __init__(self, code: str, message: str, status: int | None = None, **details: Any) -> None:
        if code not in ERROR_CODES and code not in HTTP_CODES:
            raise ValueError(f"unknown error code {code!r}")
        self.code, self.message, self.details = code, message, details
        if status:
            self.status = status
        elif code.startswith("HTTP"):
            self.status = int(code[4:])
        else:
            self.status = STATUS_FOR_CODE.get(code, 400)
        super().__init__(f"{code}: {message}")

    @classmethod
    def from_serverflow(cls, exc: ServerFlowError) -> "ApiError":
        return cls(exc.info.code, exc.info.message, **exc.info.details)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = to_jsonable(self.details)
        return {"error": out}


def to_jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def dumps(value: Any) -> bytes:
    return json.dumps(to_jsonable(value), separators=(",", ":"), ensure_ascii=False).encode()


def _has_nul(value: Any) -> bool:
    """PostgreSQL text cannot hold NUL: find it anywhere in a decoded JSON body."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


@dataclass
class Request:
    method: str
    path: str  # below /v1, e.g. "/servers/abc"
    query: dict[str, Any] = field(default_factory=dict)  # str -> str | list[str]
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    remote_ip: str | None = None
    cookies: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)  # path parameters, set by the router

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        ctype = (self.header("content-type") or "").split(";")[0].strip().lower()
        if ctype and ctype != "application/json":
            raise ApiError("HTTP415", "send the body as application/json")
        try:
            data = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ApiError("HTTP400", "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise ApiError("HTTP400", "the body must be a JSON object")
        if _has_nul(data):
            raise ApiError("SYS003", "text may not contain NUL characters (\\u0000)", status=400)
        return data

    def arg(self, name: str, default: Any = None) -> Any:
        value = self.query.get(name, default)
        if isinstance(value, list):
            value = value[-1] if value else default
        if isinstance(value, str) and "\x00" in value:
            raise ApiError("SYS003", f"{name} may not contain NUL characters", status=400)
        return value

    def args(self, name: str) -> list[str]:
        """A repeatable query parameter, also accepting comma-separated values."""
        value = self.query.get(name)
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        if any("\x00" in str(v) for v in values):
            raise ApiError("SYS003", f"{name} may not contain NUL characters", status=400)
        return [p.strip() for v in values for p in str(v).split(",") if p.strip()]

    def int_arg(self, name: str, default: int, minimum: int, maximum: int) -> int:
        raw = self.arg(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(str(raw))
        except ValueError:
            raise ApiError("SYS003", f"{name} must be an integer, not {raw!r}", status=400) from None
        if not minimum <= value <= maximum:
            raise ApiError("SYS003", f"{name} must be between {minimum} and {maximum}", status=400)
        return value


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-able, bytes, or an iterator of bytes (streamed)
    headers: dict[str, str] = field(default_factory=dict)
    cookies: list[str] = field(default_factory=list)  # Set-Cookie values

    @property
    def streamed(self) -> bool:
        return self.body is not None and not isinstance(self.body, (bytes, dict, list, str))

    def encoded(self) -> bytes | Iterable[bytes]:
        if self.status == 204 or self.body is None:
            return b""
        if isinstance(self.body, bytes) or self.streamed:
            return self.body
        self.headers.setdefault("Content-Type", "application/json")
        return dumps(self.body)


def error_response(exc: ApiError) -> Response:
    headers = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="serverflow"'
    if exc.code == "RATE001" and exc.details.get("retry_after"):
        headers["Retry-After"] = str(int(float(exc.details["retry_after"])) + 1)
    return Response(exc.status, exc.body(), headers)
