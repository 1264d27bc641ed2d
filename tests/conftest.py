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
    answered = stack.start_salt(services, api=False)
    assert answered == set(services.minions), f"minions did not answer: {answered}"
    yield services
    from salt_ext.devstack import salt_daemons

    salt_daemons.stop_all(services)


@pytest.fixture
def tenant_id() -> str:
    """A fresh tenant per test, so tests never see each other's rows."""
    return str(uuid.uuid4())
