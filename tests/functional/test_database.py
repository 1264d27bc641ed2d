"""Migrations and row-level security against the real PostgreSQL of the test stack."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from salt_ext.db import Database
from salt_ext.db.migrate import applied, available, current_version, migrate
from salt_ext.errors import ServerFlowError
from salt_ext.inventory import store
from salt_ext.inventory.model import Server

pytestmark = pytest.mark.functional


@pytest.fixture
def scratch_db(services):
    """An empty database owned by the schema owner, dropped afterwards."""
    name = "sf_scratch_" + uuid.uuid4().hex[:8]
    with psycopg.connect(services.dsn("super", "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" OWNER serverflow')
    yield services.dsn("owner", name), services.dsn("app", name)
    with psycopg.connect(services.dsn("super", "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def app_db(services):
    db = Database(services.dsn("app"))
    yield db
    db.close()


def test_migrations_apply_once_and_are_idempotent(scratch_db):
    owner_dsn, _ = scratch_db
    assert current_version(owner_dsn) == 0
    first = migrate(owner_dsn)
    assert first["applied"] == [f"{m.version:04d}_{m.name}" for m in available()]
    second = migrate(owner_dsn)
    assert second["applied"] == [] and second["version"] == first["version"]
    rows = applied(owner_dsn)
    assert sorted(rows) == [m.version for m in available()]
    with psycopg.connect(owner_dsn) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"tenants", "users", "servers", "conversations", "messages", "executions",
            "audit_logs", "alerts", "schema_migrations"} <= tables


def test_edited_applied_migration_is_reported(scratch_db, tmp_path):
    owner_dsn, _ = scratch_db
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t1 (id int);")
    migrate(owner_dsn, tmp_path)
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t1 (id bigint);")
    with pytest.raises(ServerFlowError) as err:
        migrate(owner_dsn, tmp_path)
    assert err.value.code == "SYS003" and "differ" in str(err.value)


def _seed(db: Database, tenant: str, minion: str) -> None:
    with db.tenant(tenant) as conn:
        store.ensure_tenant(conn, tenant, f"T {tenant[:4]}", "t-" + tenant[:8])
        store.upsert_facts(conn, tenant, Server(minion_id=minion, os="Debian", tags=["web"]))


def test_rls_isolates_tenants_for_reads_and_writes(app_db):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    _seed(app_db, a, "a-web-1")
    _seed(app_db, b, "b-web-1")

    with app_db.tenant(a) as conn:
        seen = {r["minion_id"] for r in conn.execute("SELECT minion_id FROM servers")}
        assert "a-web-1" in seen and "b-web-1" not in seen
        # B's rows can be neither changed nor deleted from A's transaction
        assert conn.execute("UPDATE servers SET status = 'x' WHERE minion_id = 'b-web-1'").rowcount == 0
        assert conn.execute("DELETE FROM servers WHERE minion_id = 'b-web-1'").rowcount == 0
        assert conn.execute("SELECT count(*) AS n FROM tenants").fetchone()["n"] == 1

    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with app_db.tenant(a) as conn:
            conn.execute("INSERT INTO servers (tenant_id, minion_id) VALUES (%s, 'sneaky')", (b,))

    with app_db.tenant(b) as conn:
        row = conn.execute("SELECT status FROM servers WHERE minion_id = 'b-web-1'").fetchone()
        assert row["status"] == "unknown"

    # without a tenant the application role sees nothing at all
    with app_db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM servers").fetchone()["n"] == 0
        conn.rollback()


def test_audit_log_is_append_only_for_the_application(app_db):
    tenant = str(uuid.uuid4())
    with app_db.tenant(tenant) as conn:
        conn.execute("INSERT INTO audit_logs (tenant_id, action) VALUES (%s, 'test')", (tenant,))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with app_db.tenant(tenant) as conn:
            conn.execute("UPDATE audit_logs SET action = 'rewritten'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with app_db.tenant(tenant) as conn:
            conn.execute("DELETE FROM audit_logs")


def test_store_filters_search_and_status(app_db):
    tenant = str(uuid.uuid4())
    with app_db.tenant(tenant) as conn:
        store.ensure_tenant(conn, tenant, "Store", "store-" + tenant[:8])
        store.upsert_facts(conn, tenant, Server(minion_id="web-1", os="Ubuntu", tags=["prod", "web"],
                                                ip_addresses=["10.0.0.5"]))
        store.upsert_facts(conn, tenant, Server(minion_id="db-1", os="Debian", tags=["prod", "db"]))
        store.set_status(conn, tenant, "web-1", "online", None)
        store.upsert_facts(conn, tenant, Server(minion_id="web-1", os="Ubuntu", tags=["prod", "web", "edge"]))

    with app_db.tenant(tenant) as conn:
        everything, total = store.list_servers(conn)
        assert total == 2 and [s.minion_id for s in everything] == ["db-1", "web-1"]
        web = store.get_server(conn, "web-1")
        # a facts refresh keeps the presence status
        assert web.status == "online" and web.tags == ["prod", "web", "edge"]
        assert [s.minion_id for s in store.list_servers(conn, tags=["web"])[0]] == ["web-1"]
        assert [s.minion_id for s in store.list_servers(conn, tags=["prod", "db"])[0]] == ["db-1"]
        assert [s.minion_id for s in store.list_servers(conn, status="online")[0]] == ["web-1"]
        assert [s.minion_id for s in store.list_servers(conn, search="debian")[0]] == ["db-1"]
        page, total = store.list_servers(conn, limit=1, offset=1)
        assert total == 2 and [s.minion_id for s in page] == ["web-1"]
        assert store.get_server(conn, web.id).minion_id == "web-1"
        assert store.delete_server(conn, "db-1") and store.get_server(conn, "db-1") is None


def test_unreachable_database_is_one_clear_error():
    db = Database("postgresql://serverflow_app:x@127.0.0.1:1/serverflow", connect_timeout=1)
    with pytest.raises(ServerFlowError) as err:
        with db.tenant(str(uuid.uuid4())):
            pass
    db.close()
    message = str(err.value)
    assert err.value.code == "SYS001"
    assert "127.0.0.1:1" in message and "make up" in message and ":x@" not in message
    assert "\n" not in message
