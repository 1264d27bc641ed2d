"""CherryPy glue: one server in salt-api with Salt's own endpoints, ``/v1`` and the web app.

``serve(opts)`` (called by ``_netapi/serverflow_api.py``) mounts

- ``/``    Salt's rest_cherrypy application, unchanged (``/login``, ``/minions``, ``/run``,
           ``/jobs``, ``/keys``, ``/stats``, ``/hook`` ...) so SaltGUI and scripts keep working,
           except that ``/events`` (the whole bus) is refused to ServerFlow users below admin;
- ``/v1``  the ServerFlow REST API (``salt_ext.api.routes.Dispatcher``);
- ``/ui``  the web app (``webui/``), static files under a strict Content-Security-Policy.
"""

from __future__ import annotations

import logging
import os
import threading
from http.cookies import SimpleCookie
from typing import Any

import cherrypy

from salt_ext.api.events import EventHub, Visibility
from salt_ext.api.handlers import Api
from salt_ext.api.http import SECURITY_HEADERS, Request
from salt_ext.api.openapi import document
from salt_ext.api.routes import Dispatcher
from salt_ext.security.masking import install_log_masking

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
WEBUI_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "webui")


def to_request(path: str) -> Request:
    req = cherrypy.request
    cookies = {}
    raw = req.headers.get("Cookie")
    if raw:
        jar = SimpleCookie()
        try:
            jar.load(raw)
            cookies = {k: v.value for k, v in jar.items()}
        except Exception:
            cookies = {}
    body = b""
    length = req.headers.get("Content-Length")
    if length:
        try:
            size = int(length)
        except ValueError:
            raise cherrypy.HTTPError(400, "bad Content-Length") from None
        if size > MAX_BODY:
            raise cherrypy.HTTPError(413, f"request bodies are limited to {MAX_BODY} bytes")
        body = req.rfile.read(size) if size > 0 else b""
    return Request(method=req.method, path=path, query=dict(req.params),
                   headers={k.lower(): v for k, v in req.headers.items()}, body=body,
                   remote_ip=req.remote.ip, cookies=cookies)


class V1:
    """Everything under /v1 goes through the dispatcher."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher

    @cherrypy.expose
    def default(self, *vpath: str, **_params: Any):
        request = to_request("/" + "/".join(vpath))
        response = self.dispatcher(request)
        body = response.encoded()
        out = cherrypy.response
        out.status = response.status
        for key, value in response.headers.items():
            out.headers[key] = value
        if response.cookies:
            out.headers["Set-Cookie"] = response.cookies[0]  # one cookie per response here
        if response.streamed:
            out.stream = True
            return body
        return body


def _ui_headers() -> None:
    for key, value in SECURITY_HEADERS.items():
        cherrypy.response.headers[key] = value
    cherrypy.response.headers["Cache-Control"] = "no-cache"


class _Owners:
    """Cached lookups for event visibility (conversation and action owners, minion tags)."""

    def __init__(self, db: Any, tenant_id: str) -> None:
        self.db, self.tenant_id = db, tenant_id
        self.lock = threading.Lock()
        self.cache: dict[tuple[str, str], Any] = {}

    def _one(self, kind: str, key: str, sql: str) -> Any:
        with self.lock:
            if (kind, key) in self.cache:
                return self.cache[(kind, key)]
        try:
            with self.db.tenant(self.tenant_id) as conn:
                row = conn.execute(sql, (key,)).fetchone()
        except Exception:
            return None
        value = (row or {}).get("v")
        if kind != "tags" and value is not None:
            with self.lock:
                if len(self.cache) > 10000:
                    self.cache.clear()
                self.cache[(kind, key)] = value
        return value

    def conversation(self, cid: str) -> str | None:
        return self._one("conv", cid, "SELECT created_by AS v FROM conversations WHERE id::text = %s")

    def action(self, aid: str) -> str | None:
        return self._one("action", aid, "SELECT requested_by AS v FROM actions WHERE id::text = %s")

    def tags(self, minion: str) -> set[str] | None:
        value = self._one("tags", minion, "SELECT tags AS v FROM servers WHERE minion_id = %s")
        return set(value or [])


def _guard_events(root: Any, opts: dict[str, Any], settings: dict[str, Any], db: Any) -> None:
    """Salt's /events shows the whole bus: keep it for Salt admins, refuse ServerFlow non-admins."""
    import salt.auth

    events_cls = type(root.events)
    resolver = salt.auth.Resolver(opts)

    class GuardedEvents(events_cls):  # type: ignore[misc, valid-type]
        def _is_valid_token(self, auth_token):  # noqa: ANN001
            if not super()._is_valid_token(auth_token):
                return False
            orig_session, _ = cherrypy.session.cache.get(auth_token, ({}, None))
            token = resolver.get_token(orig_session.get("token", auth_token)) or {}
            if token.get("eauth") != "serverflow":
                return True  # pam/sharedsecret: Salt's own administrators
            from salt_ext.security.identity import principal_for_salt_user

            try:
                principal = principal_for_salt_user(db, settings, token.get("name"))
            except Exception:
                return False
            return "administer" in principal.permissions

    root.events = GuardedEvents()


def build(opts: dict[str, Any]):
    """(salt root, its config, V1 app, Api) for ``opts`` (the salt-api master opts)."""
    import salt.client
    import salt.utils.event
    from salt.netapi.rest_cherrypy import app as rest_app

    from salt_ext.config import load_settings
    from salt_ext.db import Database
    from salt_ext.security.ratelimit import RateLimiter
    from salt_ext.security.settings import with_secret_key

    apiopts = dict(opts.get("serverflow_api") or {})
    salt_opts = dict(opts)
    salt_opts["rest_cherrypy"] = apiopts
    root, _, conf = rest_app.get_app(salt_opts)
    settings = with_secret_key(load_settings(opts), opts)
    db = Database.from_settings(settings)
    _guard_events(root, opts, settings, db)

    owners = _Owners(db, str(settings["tenant_id"]))
    hub = EventHub(Visibility(owners.conversation, owners.action, owners.tags),
                   tenant_id=str(settings["tenant_id"]))
    hub.start_bus_listener(opts)
    fire_lock = threading.Lock()
    bus_holder: dict[str, Any] = {}

    def fire(tag: str, data: dict[str, Any]) -> None:
        with fire_lock:
            bus = bus_holder.get("bus")
            if bus is None:
                bus = bus_holder["bus"] = salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=False)
            if not bus.fire_event(data, tag):
                bus_holder.pop("bus", None)
                raise RuntimeError("could not put the event on the master bus")

    limiter = RateLimiter(settings) if (settings.get("redis") or {}).get("url") else None
    api = Api(settings, db, hub, opts=opts, limiter=limiter,
              client_factory=lambda: salt.client.get_local_client(mopts=opts), fire=fire,
              secure_cookies=not apiopts.get("disable_ssl", False))
    v1 = V1(Dispatcher(api, document("/v1")))
    return root, conf, v1, api


def serve(opts: dict[str, Any]) -> None:
    install_log_masking()  # request logs can carry tokens and passwords: mask before any handler sees them
    root, conf, v1, _ = build(opts)
    apiopts = opts.get("serverflow_api") or {}
    cherrypy.tree.mount(root, apiopts.get("root_prefix", "/"), conf)
    cherrypy.tree.mount(v1, "/v1", {"/": {"request.process_request_body": False,
                                          "tools.trailing_slash.on": False,
                                          "tools.encode.on": False, "tools.gzip.on": False}})
    cherrypy.tools.serverflow_ui_headers = cherrypy.Tool("before_finalize", _ui_headers)
    cherrypy.tree.mount(None, "/ui", {"/": {"tools.staticdir.on": True,
                                            "tools.staticdir.dir": apiopts.get("webui_dir") or WEBUI_DIR,
                                            "tools.staticdir.index": "index.html",
                                            "tools.serverflow_ui_headers.on": True}})
    if not apiopts.get("disable_ssl", False):
        cherrypy.server.ssl_module = "builtin"
        cherrypy.server.ssl_certificate = apiopts["ssl_crt"]
        cherrypy.server.ssl_private_key = apiopts["ssl_key"]
    cherrypy.engine.signals.subscribe()
    cherrypy.engine.start()
    cherrypy.engine.block()
