"""Users, lockout, MFA, refresh-token rotation and API keys against the real PostgreSQL."""

from __future__ import annotations

import time

import pyotp
import pytest

from salt_ext.db import Database
from salt_ext.errors import ServerFlowError
from salt_ext.security import admin, audit, identity, tokens
from salt_ext.security.identity import Principal

pytestmark = pytest.mark.functional

FAST_ARGON2 = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}


@pytest.fixture
def db(services):
    database = Database(services.dsn("app"))
    yield database
    database.close()


@pytest.fixture
def sec(settings, tenant_id):
    """Settings for a fresh tenant: cheap argon2, a lockout after 3 failures for 1 s."""
    return {**settings, "tenant_id": tenant_id, "tenant_slug": "sec-" + tenant_id[:8],
            "security": {**settings.get("security", {}), "argon2": FAST_ARGON2,
                         "lockout": {"max_failures": 3, "lock_seconds": 1}}}


def owner(sec) -> Principal:
    return Principal(tenant_id=sec["tenant_id"], email="root", role="owner", method="local")


def add(db, sec, email, role="operator", password="correct horse 42", **kw):
    return admin.user_add(sec, db, owner(sec), email, role, password=password, **kw)["user"]


def actions(db, sec, **filters):
    with db.tenant(sec["tenant_id"]) as conn:
        return [r["action"] for r in reversed(audit.search(conn, **filters))]


def code(exc_info) -> str:
    return exc_info.value.code


def test_add_list_authenticate_and_disable(db, sec):
    created = admin.user_add(sec, db, owner(sec), "Alice@Example.com", "operator", tags="web,prod")
    assert created["password"] and created["user"]["role"] == "operator"
    assert created["user"]["tags"] == ["prod", "web"]
    with db.tenant(sec["tenant_id"]) as conn:
        row = identity.get_user(conn, "alice@example.com")
        assert row["password_hash"].startswith("$argon2id$") and created["password"] not in row["password_hash"]
    me = identity.authenticate(db, sec, "alice@example.com", created["password"], ip="10.0.0.7", user_agent="pytest")
    assert (me.email, me.role, me.tags, me.method) == ("Alice@Example.com", "operator", ("prod", "web"), "password")
    with pytest.raises(ServerFlowError) as err:
        admin.user_add(sec, db, owner(sec), "alice@EXAMPLE.com", "viewer")
    assert "already exists" in str(err.value)
    listed = admin.user_list(sec, db, owner(sec))
    assert [u["email"] for u in listed] == ["Alice@Example.com"] and "password_hash" not in listed[0]

    admin.user_disable(sec, db, owner(sec), "alice@example.com")
    with pytest.raises(ServerFlowError) as err:
        identity.authenticate(db, sec, "alice@example.com", created["password"])
    assert code(err) == "AUTH001" and "disabled" in str(err.value)
    with db.tenant(sec["tenant_id"]) as conn:
        entries = audit.search(conn, user="alice@example.com")
    login = next(e for e in entries if e["action"] == "auth.login")
    assert login["ip_address"].startswith("10.0.0.7") and login["user_agent"] == "pytest"
    assert login["user_id"] == me.id
    assert {"auth.login", "auth.login_failed"} <= {e["action"] for e in entries}
    # admin changes are filed under the admin who made them, about the user's row
    changes = [e for e in audit_rows(db, sec) if e["action"] in ("user.add", "user.disable")]
    assert [(e["details"]["actor"], e["resource_id"]) for e in changes] == [("root", me.id)] * 2
    assert all(created["password"] not in str(e) for e in audit_rows(db, sec))


def test_only_admins_administer_and_never_above_their_role(db, sec):
    add(db, sec, "boss@example.com", "admin")
    add(db, sec, "op@example.com", "operator")
    boss = identity.principal_for_salt_user(db, sec, "boss@example.com")
    op = identity.principal_for_salt_user(db, sec, "op@example.com")
    assert boss.role == "admin" and op.role == "operator" and op.method == "salt"
    with pytest.raises(ServerFlowError) as err:
        admin.user_add(sec, db, op, "x@example.com", "viewer")
    assert code(err) == "AUTH003"
    with pytest.raises(ServerFlowError) as err:
        admin.user_add(sec, db, boss, "y@example.com", "owner")
    assert code(err) == "AUTH003"
    assert admin.user_add(sec, db, boss, "z@example.com", "viewer")["user"]["role"] == "viewer"
    with pytest.raises(ServerFlowError) as err:
        identity.principal_for_salt_user(db, sec, "nobody@example.com")
    assert code(err) == "AUTH003"
    # the master's shell: root and sudo users act as owner
    assert identity.principal_for_salt_user(db, sec, "root").role == "owner"
    assert identity.principal_for_salt_user(db, sec, "sudo_bob").role == "owner"
    with pytest.raises(ServerFlowError):
        identity.principal_for_salt_user(db, sec, "mallory")


def test_the_last_owner_cannot_be_disabled(db, sec):
    add(db, sec, "first@example.com", "owner")
    with pytest.raises(ServerFlowError) as err:
        admin.user_disable(sec, db, owner(sec), "first@example.com")
    assert "last enabled owner" in str(err.value)


def test_lockout_after_repeated_failures_then_unlock(db, sec):
    add(db, sec, "bob@example.com", password="right password 1")
    for _ in range(3):
        with pytest.raises(ServerFlowError) as err:
            identity.authenticate(db, sec, "bob@example.com", "wrong password")
        assert code(err) == "AUTH001"
    # locked: even the right password is refused, and the message says until when
    with pytest.raises(ServerFlowError) as err:
        identity.authenticate(db, sec, "bob@example.com", "right password 1")
    assert code(err) == "AUTH001" and "locked until" in str(err.value) and err.value.info.details["locked_until"]
    time.sleep(1.2)
    # after the lock, one more failure locks again at once (the count is still at the limit)
    with pytest.raises(ServerFlowError):
        identity.authenticate(db, sec, "bob@example.com", "wrong again")
    with pytest.raises(ServerFlowError) as err:
        identity.authenticate(db, sec, "bob@example.com", "right password 1")
    assert "locked" in str(err.value)
    # an admin unlocks; success resets the count
    admin.user_enable(sec, db, owner(sec), "bob@example.com")
    assert identity.authenticate(db, sec, "bob@example.com", "right password 1").email == "bob@example.com"
    with db.tenant(sec["tenant_id"]) as conn:
        row = identity.get_user(conn, "bob@example.com")
    assert row["failed_logins"] == 0 and row["locked_until"] is None
    seen = actions(db, sec, user="bob@example.com", action="auth.*")
    assert seen.count("auth.locked") == 2 and seen[-1] == "auth.login"
    # unknown users fail the same way and are audited
    with pytest.raises(ServerFlowError) as err:
        identity.authenticate(db, sec, "ghost@example.com", "x")
    assert code(err) == "AUTH001"
    assert actions(db, sec, user="ghost@example.com") == ["auth.login_failed"]


def test_mfa_enrol_confirm_sign_in_replay_and_recovery_codes(db, sec):
    add(db, sec, "carol@example.com", password="carol password 9")
    carol = identity.principal_for_salt_user(db, sec, "carol@example.com")
    started = admin.mfa_enroll(sec, db, carol, "carol@example.com")  # self-service
    secret, recovery = started["secret"], started["recovery_codes"]
    assert started["otpauth_uri"].startswith("otpauth://totp/") and len(recovery) == 10
    with db.tenant(sec["tenant_id"]) as conn:
        row = identity.get_user(conn, "carol@example.com")
        assert secret not in (row["mfa_pending_secret_enc"] or "") and not row["mfa_enabled"]
        assert all(c not in str(row["mfa_pending_recovery_hashes"]) for c in recovery)
    # until confirmed, the password alone still signs in
    assert identity.authenticate(db, sec, "carol@example.com", "carol password 9").method == "password"
    totp = pyotp.TOTP(secret)
    with pytest.raises(ServerFlowError) as err:
        admin.mfa_enroll(sec, db, carol, "carol@example.com", code="000000" if totp.now() != "000000" else "111111")
    assert code(err) == "AUTH001"
    # the confirming code uses up the previous step; sign in with the next one
    admin.mfa_enroll(sec, db, carol, "carol@example.com", code=totp.at(time.time() - 30))
    with pytest.raises(ServerFlowError) as err:
        identity.authenticate(db, sec, "carol@example.com", "carol password 9")
    assert code(err) == "AUTH004"
    with pytest.raises(ServerFlowError) as err:
        identity.authenticate(db, sec, "carol@example.com", "carol password 9", totp="123456" if totp.now() != "123456" else "654321")
    assert code(err) == "AUTH001"
    current = totp.now()
    me = identity.authenticate(db, sec, "carol@example.com", f"carol password 9:{current}", combined=True)
    assert me.method == "password+totp"
    with pytest.raises(ServerFlowError) as err:  # the same code twice is a replay
        identity.authenticate(db, sec, "carol@example.com", "carol password 9", totp=current)
    assert code(err) == "AUTH001"
    # recovery codes work once each, in any case/format
    me = identity.authenticate(db, sec, "carol@example.com", "carol password 9", totp=recovery[0].upper())
    assert me.method == "password+recovery_code"
    with pytest.raises(ServerFlowError):
        identity.authenticate(db, sec, "carol@example.com", "carol password 9", totp=recovery[0])
    # the wrong password with a valid code is still a failure
    with pytest.raises(ServerFlowError):
        identity.authenticate(db, sec, "carol@example.com", "nope", totp=recovery[1])
    seen = actions(db, sec, user="carol@example.com")
    assert {"mfa.enroll", "mfa.confirm", "mfa.recovery_code_used", "auth.mfa_failed"} <= set(seen)
    # an operator may not switch off someone else's MFA; an owner may
    add(db, sec, "dave@example.com")
    dave = identity.principal_for_salt_user(db, sec, "dave@example.com")
    with pytest.raises(ServerFlowError) as err:
        admin.mfa_enroll(sec, db, dave, "carol@example.com", disable=True)
    assert code(err) == "AUTH003"
    admin.mfa_enroll(sec, db, owner(sec), "carol@example.com", disable=True)
    assert identity.authenticate(db, sec, "carol@example.com", "carol password 9").method == "password"


def test_refresh_rotation_and_reuse_detection_revokes_the_family(db, sec):
    add(db, sec, "erin@example.com", password="erin password 1")
    first = tokens.login(db, sec, "erin@example.com", "erin password 1", ip="192.0.2.1")
    assert tokens.verify_access_token(sec, first.access_token).email == "erin@example.com"
    assert first.as_dict()["expires_in"] == 900 and first.refresh_token.startswith("sfr_")
    with db.tenant(sec["tenant_id"]) as conn:
        stored = conn.execute("SELECT token_hash FROM refresh_tokens").fetchall()
    assert all(first.refresh_token not in r["token_hash"] for r in stored)

    second = tokens.refresh(db, sec, first.refresh_token)
    third = tokens.refresh(db, sec, second.refresh_token)
    assert len({first.refresh_token, second.refresh_token, third.refresh_token}) == 3
    # a second, separate sign-in is a different family and survives what follows
    other = tokens.login(db, sec, "erin@example.com", "erin password 1")

    with pytest.raises(ServerFlowError) as err:  # the first token again: stolen or replayed
        tokens.refresh(db, sec, first.refresh_token)
    assert code(err) == "AUTH001" and "already used" in str(err.value)
    with pytest.raises(ServerFlowError) as err:  # ... so the newest one of that family is dead too
        tokens.refresh(db, sec, third.refresh_token)
    assert code(err) == "AUTH001"
    assert tokens.refresh(db, sec, other.refresh_token).principal.email == "erin@example.com"
    assert "auth.refresh_reuse" in actions(db, sec, user="erin@example.com")

    # logout ends a family; disabling the user ends every family
    assert tokens.logout(db, sec, tokens.login(db, sec, "erin@example.com", "erin password 1").refresh_token)
    fresh = tokens.login(db, sec, "erin@example.com", "erin password 1")
    admin.user_disable(sec, db, owner(sec), "erin@example.com")
    with pytest.raises(ServerFlowError):
        tokens.refresh(db, sec, fresh.refresh_token)


def test_refresh_family_cannot_outlive_the_session(db, sec):
    add(db, sec, "frank@example.com", password="frank password 1")
    short = {**sec, "security": {**sec["security"], "tokens": {"session_max_age": 1}}}
    pair = tokens.login(db, short, "frank@example.com", "frank password 1")
    time.sleep(1.2)
    with pytest.raises(ServerFlowError) as err:
        tokens.refresh(db, short, pair.refresh_token)
    assert code(err) == "AUTH002"


def test_api_keys_role_scope_last_use_and_revoke(db, sec):
    add(db, sec, "ci@example.com", "operator", tags=["web", "db"])
    with pytest.raises(ServerFlowError) as err:
        admin.apikey_create(sec, db, owner(sec), "ci@example.com", role="admin")
    assert code(err) == "AUTH003"
    with pytest.raises(ServerFlowError) as err:
        admin.apikey_create(sec, db, owner(sec), "ci@example.com", tags="cache")
    assert code(err) == "EXEC005"
    created = admin.apikey_create(sec, db, owner(sec), "ci@example.com", role="viewer", name="ci", tags="web")
    key, username = created["key"], created["username"]
    assert key.startswith(username + "_") and created["role"] == "viewer" and created["scope_tags"] == ["web"]
    with db.tenant(sec["tenant_id"]) as conn:
        row = conn.execute("SELECT * FROM api_keys WHERE key_id = %s", (username[4:],)).fetchone()
    assert key.split("_", 2)[2] not in row["secret_hash"] and row["last_used_at"] is None

    me = identity.authenticate_secret(db, sec, username, key)
    assert (me.role, me.tags, me.method, me.name, me.email) == ("viewer", ("web",), "apikey", username, "ci@example.com")
    with db.tenant(sec["tenant_id"]) as conn:
        assert conn.execute("SELECT last_used_at FROM api_keys WHERE id = %s", (row["id"],)).fetchone()["last_used_at"]
    assert identity.principal_for_salt_user(db, sec, username).role == "viewer"
    for bad_user, bad_key in [(username, key[:-2] + "xx"), ("sfk_000000000000", key), (username, "sfk_nonsense")]:
        with pytest.raises(ServerFlowError) as err:
            identity.authenticate_secret(db, sec, bad_user, bad_key)
        assert code(err) == "AUTH001"
    listed = admin.apikey_list(sec, db, owner(sec))
    assert [k["username"] for k in listed] == [username] and "key" not in listed[0]

    admin.apikey_revoke(sec, db, owner(sec), username)
    with pytest.raises(ServerFlowError) as err:
        identity.authenticate_secret(db, sec, username, key)
    assert code(err) == "AUTH001"
    with pytest.raises(ServerFlowError):
        identity.principal_for_salt_user(db, sec, username)
    assert admin.apikey_list(sec, db, owner(sec)) == []
    seen = actions(db, sec, action="*apikey*")
    assert seen == ["apikey.create", "auth.apikey", "auth.apikey_failed", "auth.apikey_failed",
                    "auth.apikey_failed", "apikey.revoke", "auth.apikey_failed"]
    # a disabled owner takes their keys down with them
    second = admin.apikey_create(sec, db, owner(sec), "ci@example.com")
    admin.user_disable(sec, db, owner(sec), "ci@example.com")
    with pytest.raises(ServerFlowError):
        identity.authenticate_secret(db, sec, second["username"], second["key"])
    assert key not in str(audit_rows(db, sec))


def audit_rows(db, sec):
    with db.tenant(sec["tenant_id"]) as conn:
        return audit.search(conn, limit=1000)
