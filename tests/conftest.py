"""Shared fixtures: a private stack (PostgreSQL, Redis, Salt) started by the tests themselves.

The test stack uses the same code as `make up` (``salt_ext.devstack``) with its own
home (``.test-stack/``) and ports, so it never collides with a running dev stack.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest

from salt_ext.devstack import stack
from salt_ext.devstack.layout import Layout, Ports

REPO = Path(__file__).resolve().parents[1]
TEST_HOME = Path(os.environ.get("SERVERFLOW_TEST_HOME", REPO / ".test-stack"))
# SERVERFLOW_TEST_PORT_OFFSET lets two test runs (two checkouts, two engineers) share a machine.
_OFFSET = int(os.environ.get("SERVERFLOW_TEST_PORT_OFFSET", "0"))
TEST_PORTS = Ports(postgres=25432 + _OFFSET, redis=26379 + _OFFSET, publish=24505 + _OFFSET,
                   ret=24506 + _OFFSET, api=28000 + _OFFSET)
# The red team alone sends ~70 questions a minute as one user: lift the chat rate limit
# for the tests (the limiter itself is tested on its own).
TEST_MASTER_CONFIG = {"serverflow": {"security": {"rate_limit": {"buckets": {
    "chat": {"user": {"limit": 2000, "window": 60}, "tenant": {"limit": 5000, "window": 60}}}}}}}
TEST_MINIONS = {
    "sf-web-1": {"tags": ["test", "web"], "services": ["nginx"]},
    "sf-db-1": {"tags": ["test", "db"], "services": ["postgresql"]},
}


def _fresh_layout() -> Layout:
    layout = Layout(TEST_HOME, ports=TEST_PORTS, minions=dict(TEST_MINIONS), repo=REPO)
    stack.down(layout)  # leftovers of an interrupted run
    # Keep the initialised database cluster between runs (initdb is the slow part);
    # everything Salt-related starts fresh.
    for name in ("etc", "pki", "cache", "run", "srv", "var"):
        shutil.rmtree(layout.home / name, ignore_errors=True)
    return layout


@pytest.fixture(scope="session")
def layout() -> Layout:
    return _fresh_layout()


@pytest.fixture(scope="session")
def services(layout: Layout):
    """PostgreSQL (migrated) and Redis, for the whole session."""
    stack.start_services(layout, fresh_database=True)
    yield layout
    stack.down(layout)


@pytest.fixture(scope="session")
def settings(services: Layout) -> dict:
    return stack.settings_for(services)


@pytest.fixture(scope="session")
def salt_stack(services: Layout):
    """Master (with the ServerFlow engine) and the two test minions, all answering."""
    # a loaded shared box can need more than 2 minutes for the first pings to come back
    answered = stack.start_salt(services, api=False, master_extra=TEST_MASTER_CONFIG,
                                timeout=float(os.environ.get("SERVERFLOW_TEST_START_TIMEOUT", "120")))
    assert answered == set(services.minions), f"minions did not answer: {answered}"
    yield services
    from salt_ext.devstack import salt_daemons

    salt_daemons.stop_all(services)


@pytest.fixture
def tenant_id() -> str:
    """A fresh tenant per test, so tests never see each other's rows."""
    return str(uuid.uuid4())


TEST_USERS = {"op@test": "operator", "admin@test": "admin", "admin2@test": "admin",
              "viewer@test": "viewer"}
TEST_PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def test_users(settings) -> dict[str, str]:
    """ServerFlow users the chat/approval tests act as (their role decides what they may do)."""
    from salt_ext.db import Database
    from salt_ext.security.identity import ensure_user

    from salt_ext.security.identity import add_user, get_user

    db = Database(settings["database"]["admin_url"])
    try:
        for email, role in TEST_USERS.items():
            ensure_user(db, settings, email, TEST_PASSWORD, role)
        with db.tenant(settings["tenant_id"]) as conn:
            # an operator of the web tier only
            if get_user(conn, "webop@test") is None:
                add_user(conn, settings, "webop@test", "operator", password=TEST_PASSWORD, tags=["web"])
    finally:
        db.close()
    return {**TEST_USERS, "webop@test": "operator"}
