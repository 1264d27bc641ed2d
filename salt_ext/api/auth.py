"""Who is calling the API, and the CSRF rule for cookie-carried credentials.

- ``Authorization: Bearer <JWT access token>`` (from ``POST /v1/auth/login``), checked
  with ``salt_ext.security.tokens.verify_access_token`` (no database);
- ``Authorization: Bearer sfk_...`` (an API key), checked with
  ``salt_ext.security.apikeys.authenticate`` (role and tag scope of the key).

Access tokens never live in cookies, so requests carrying them cannot be forged
cross-site. The one credential a browser keeps in a cookie is the refresh token
(``sf_refresh``: HttpOnly, SameSite=Strict, Path=/v1/auth); the endpoints that
accept it also require ``X-Requested-With: serverflow`` (a custom header a
cross-site form or image cannot send, and CORS is never granted on ``/v1``) and
an ``Origin`` matching the host when the browser sends one.
"""

from __future__ import annotations

from typing import Any, Mapping

from salt_ext.api.http import ApiError, Request
from salt_ext.errors import ServerFlowError
from salt_ext.security import apikeys, tokens
from salt_ext.security.identity import Principal

REFRESH_COOKIE = "sf_refresh"
CSRF_HEADER = "x-requested-with"
CSRF_VALUE = "serverflow"


def bearer(request: Request) -> str | None:
    value = request.header("authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def principal_for(request: Request, settings: Mapping[str, Any], db: Any) -> Principal:
    """The Principal behind the request's bearer credential; AUTH001/AUTH002 otherwise."""
    token = bearer(request)
    if token is None:
        raise ApiError("AUTH001", "sign in first: send Authorization: Bearer <access token>")
    try:
        if token.startswith("sfk_"):
            return apikeys.authenticate(db, settings, token, ip=request.remote_ip,
                                        user_agent=request.header("user-agent"))
        return tokens.verify_access_token(settings, token)
    except ServerFlowError as exc:
        raise ApiError.from_serverflow(exc) from None


def require(principal: Principal, permission: str) -> None:
    if permission not in principal.permissions:
        raise ApiError("AUTH003", f"{principal.email} is {principal.role} and may not {permission}",
                       permission=permission, role=principal.role)


def check_csrf(request: Request) -> None:
    """Refuse a cookie-authenticated request that a foreign page could have sent."""
    if (request.header(CSRF_HEADER) or "").lower() != CSRF_VALUE:
        raise ApiError("AUTH003", f"missing the {CSRF_HEADER}: {CSRF_VALUE} header (CSRF protection)")
    origin = request.header("origin")
    host = request.header("host")
    if origin and host and origin.split("://", 1)[-1].rstrip("/") != host:
        raise ApiError("AUTH003", "cross-origin request refused (CSRF protection)")


def refresh_cookie(token: str | None, max_age: int, secure: bool) -> str:
    flags = "; HttpOnly; SameSite=Strict; Path=/v1/auth" + ("; Secure" if secure else "")
    if not token:
        return f"{REFRESH_COOKIE}=; Max-Age=0{flags}"
    return f"{REFRESH_COOKIE}={token}; Max-Age={max_age}{flags}"
