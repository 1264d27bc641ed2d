"""The audit trail: append-only walls, hash chain, tamper detection, search and export."""

from __future__ import annotations

import json
import threading
import uuid

import psycopg
import pytest

from salt_ext.db import Database
from salt_ext.security import admin, audit
from salt_ext.security.audit import Auditor
from salt_ext.security.identity import Principal

pytestmark = pytest.mark.functional

TRICKY = [
    {"question": "why is web-01 slow?", "n": 1},
    {"text": "quote \" backslash \\ tab \t newline \n bell \x07 del \x7f", "unicode": "é ü 日本 🙂"},
    {"numbers": [1.10, 1e16, -0.0, 12345678901234567890, 3.141592653589793], "nested": {"b": {"a": [None, True]}}},
    {"password": "hunter2", "dsn": "postgresql://u:s3cret@db/x", "plan": {"steps": [{"function": "disk.usage"}]}},
    {},
]


@pytest.fixture
def db(services):
    database = Database(services.dsn("app"))
    yield database
    database.close()


def write(db, tenant, n=5):
    log = Auditor(db, tenant, strict=True)
    ids = []
    for i in range(n):
        details = TRICKY[i % len(TRICKY)]
        ids.append(log(f"test.event{i % 3}", user=f"user{i % 2}@example.com", resource_type="test",
                       resource_id=i, details=details, ip="2001:db8::1" if i % 2 else "198.51.100.4",
                       user_agent="agent/\"1\"")["id"])
    return ids


def verify(db, tenant):
    with db.tenant(tenant) as conn:
        return audit.verify(conn, tenant)


def test_chain_verifies_with_tricky_content_and_details_are_masked(db, tenant_id):
    ids = write(db, tenant_id, 10)
    result = verify(db, tenant_id)
    assert result["ok"] and result["rows"] == 10 and result["head"]["id"] == ids[-1], result
    with db.tenant(tenant_id) as conn:
        rows = audit.search(conn, limit=100)
    assert all("hunter2" not in json.dumps(r, default=str) and "s3cret" not in json.dumps(r, default=str)
               for r in rows)
    assert rows[0]["details"]["actor"] == "user1@example.com"
    first = rows[-1]
    assert first["prev_hash"] == audit.GENESIS and len(first["hash"]) == 64
    assert verify(db, str(uuid.uuid4())) == {"ok": True, "rows": 0, "broken_id": None, "reason": None, "head": None}


def test_the_application_and_even_the_owner_cannot_change_or_delete(db, services, tenant_id):
    write(db, tenant_id, 2)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with db.tenant(tenant_id) as conn:
            conn.execute("UPDATE audit_logs SET action = 'x'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with db.tenant(tenant_id) as conn:
            conn.execute("DELETE FROM audit_logs")
    for statement in ("UPDATE audit_logs SET action = 'x' WHERE tenant_id = %s",
                      "DELETE FROM audit_logs WHERE tenant_id = %s"):
        with psycopg.connect(services.dsn("owner")) as conn:  # the table owner: the trigger refuses
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as err:
                conn.execute(statement, (tenant_id,))
            assert "append-only" in str(err.value)
    with psycopg.connect(services.dsn("owner")) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("TRUNCATE audit_logs")
    assert verify(db, tenant_id)["ok"]


def _tamper(services, sql, params):
    """Bypass both walls as the superuser: triggers off for this session only, then edit."""
    with psycopg.connect(services.dsn("super")) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute(sql, params)


def test_an_edited_row_is_named_by_verify(db, services, tenant_id):
    ids = write(db, tenant_id, 6)
    _tamper(services, "UPDATE audit_logs SET details = details || '{\"n\": 2}' WHERE id = %s", (ids[3],))
    result = verify(db, tenant_id)
    assert not result["ok"] and result["broken_id"] == ids[3] and "changed" in result["reason"]
    assert result["head"]["id"] == ids[2]


def test_a_forged_hash_breaks_the_next_link(db, services, tenant_id):
    ids = write(db, tenant_id, 5)
    # the attacker rewrites a row and its hash consistently, but not every later row
    _tamper(services, "UPDATE audit_logs SET action = 'test.nothing', hash = repeat('a', 64) WHERE id = %s",
            (ids[1],))
    result = verify(db, tenant_id)
    assert not result["ok"] and result["broken_id"] in (ids[1], ids[2])


def test_a_removed_row_is_detected_at_the_next_one(db, services, tenant_id):
    ids = write(db, tenant_id, 5)
    _tamper(services, "DELETE FROM audit_logs WHERE id = %s", (ids[2],))
    result = verify(db, tenant_id)
    assert not result["ok"] and result["broken_id"] == ids[3] and "removed" in result["reason"]
    other = str(uuid.uuid4())
    ids = write(db, other, 3)
    _tamper(services, "DELETE FROM audit_logs WHERE id = %s", (ids[0],))
    result = verify(db, other)
    assert not result["ok"] and result["broken_id"] == ids[1]


def test_a_row_slipped_in_with_the_trigger_off_is_detected(db, services, tenant_id):
    ids = write(db, tenant_id, 3)
    _tamper(services, "INSERT INTO audit_logs (tenant_id, action) VALUES (%s, 'auth.login')", (tenant_id,))
    result = verify(db, tenant_id)
    assert not result["ok"] and result["broken_id"] > ids[-1] and "no hash" in result["reason"]


def test_concurrent_writers_build_one_chain(db, tenant_id):
    errors = []
    pool = Database(db.dsn, max_size=6)

    def worker(n):
        try:
            log = Auditor(pool, tenant_id, strict=True)
            for i in range(10):
                log("test.concurrent", user=f"w{n}@example.com", details={"i": i})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pool.close()
    assert not errors
    result = verify(db, tenant_id)
    assert result["ok"] and result["rows"] == 40


def test_search_filters_and_jsonl_export(db, tenant_id, settings):
    write(db, tenant_id, 6)
    with db.tenant(tenant_id) as conn:
        assert {r["action"] for r in audit.search(conn, action="test.event1")} == {"test.event1"}
        assert len(audit.search(conn, action="test.*")) == 6
        assert len(audit.search(conn, user="user0@example.com")) == 3
        assert len(audit.search(conn, since="1h")) == 6 and audit.search(conn, since="2999-01-01") == []
        assert len(audit.search(conn, limit=2)) == 2
    sec = {**settings, "tenant_id": tenant_id}
    root = Principal(tenant_id=tenant_id, email="root", role="owner", method="local")
    exported = admin.audit_export(sec, db, root, action="test.*")
    lines = [json.loads(line) for line in exported["jsonl"].splitlines()]
    assert exported["rows"] == 6 and [r["id"] for r in lines] == sorted(r["id"] for r in lines)
    assert all(len(r["hash"]) == 64 and r["prev_hash"] for r in lines)
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    # the export itself is audited, and the chain still verifies
    with db.tenant(tenant_id) as conn:
        assert audit.search(conn, action="audit.export")[0]["details"]["rows"] == 6
    assert admin.audit_verify(sec, db, root)["ok"]
    viewer = Principal(tenant_id=tenant_id, email="v@example.com", role="viewer")
    with pytest.raises(Exception) as err:
        admin.audit_search(sec, db, viewer)
    assert getattr(err.value, "code", None) == "AUTH003"
