"""The test stack with salt-api (ServerFlow's netapi module) and one user per role."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from salt_ext.db import Database
from salt_ext.devstack import salt_daemons, stack
from salt_ext.devstack.layout import DEMO_MINIONS, Layout, Ports
from salt_ext.security import identity

PASSWORD = "correct-horse-battery-9"
USERS = {"owner": "owner@api.test", "admin": "admin@api.test", "admin2": "admin2@api.test",
         "operator": "operator@api.test", "viewer": "viewer@api.test", "scoped": "webop@api.test"}


@dataclass
class HttpResult:
    status: int
    headers: Any
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode())


class Client:
    def __init__(self, base: str) -> None:
        self.base = base

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                headers: dict[str, str] | None = None, raw: bytes | None = None,
                timeout: float = 60) -> HttpResult:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None and raw is None:
            req.add_header("Content-Type", "application/json")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return HttpResult(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as exc:
            return HttpResult(exc.code, exc.headers, exc.read())

    def login(self, who: str) -> dict[str, Any]:
        res = self.request("POST", "/v1/auth/login", {"email": USERS[who], "password": PASSWORD})
        assert res.status == 200, res.body
        return res.json()


def ensure_users(settings: dict[str, Any]) -> None:
    db = Database.from_settings(settings)
    try:
        for role, email in USERS.items():
            with db.tenant(settings["tenant_id"]) as conn:
                identity.ensure_tenant(conn, settings)
                if identity.get_user(conn, email) is None:
                    identity.add_user(conn, settings, email, role.rstrip("2") if role != "scoped" else "operator",
                                      name=role, password=PASSWORD, tags=["web"] if role == "scoped" else None)
    finally:
        db.close()


def start_api_stack(layout) -> Client:
    salt_daemons.start_api(layout)
    settings = stack.settings_for(layout)
    ensure_users(settings)
    client = Client(f"http://127.0.0.1:{layout.ports.api}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if client.request("GET", "/v1/openapi.json").status == 200:
            break
        time.sleep(0.5)
    return client


@contextmanager
def own_stack(home: Path, port_offset: int, *, minions: dict[str, Any] | None = None,
              master_extra: dict[str, Any] | None = None) -> Iterator[tuple[Layout, Client]]:
    """A whole stack of its own (PostgreSQL, Redis, master, minions, salt-api, the role users)
    under ``home`` on the test ports shifted by ``port_offset``; stopped on exit.
    For programs outside pytest (the benchmarks); the tests use the conftest fixtures."""
    layout = Layout(home, ports=Ports(postgres=25432 + port_offset, redis=26379 + port_offset,
                                      publish=24505 + port_offset, ret=24506 + port_offset,
                                      api=28000 + port_offset),
                    minions=dict(minions or DEMO_MINIONS))
    stack.down(layout)
    for name in ("etc", "pki", "cache", "run", "srv", "var"):
        shutil.rmtree(layout.home / name, ignore_errors=True)
    try:
        stack.start_services(layout, fresh_database=True)
        answered = stack.start_salt(layout, api=False, master_extra=master_extra, timeout=400)
        if answered != set(layout.minions):
            raise RuntimeError(f"minions did not answer: {sorted(set(layout.minions) - answered)}")
        client = start_api_stack(layout)
        stack.wait_inventory(layout, sorted(answered))
        yield layout, client
    finally:
        stack.down(layout)
