"""Salt's side of security on a real master: the eauth module, role ACLs, the admin runners,
and the first admin that `make up` creates."""

from __future__ import annotations

import time
import uuid

import pyotp
import pytest

from salt_ext.db import Database
from salt_ext.devstack import stack
from salt_ext.security import admin, audit, identity
from salt_ext.security.identity import Principal
from salt_ext.security.settings import with_secret_key
from tests.functional.saltcli import run_json

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def opts(salt_stack):
    import salt.config

    return salt.config.master_config(str(salt_stack.etc / "master"))


@pytest.fixture(scope="module")
def sec(salt_stack):
    return with_secret_key(stack.settings_for(salt_stack))


@pytest.fixture(scope="module")
def db(salt_stack):
    database = Database(salt_stack.dsn("app"))
    yield database
    database.close()


def root(sec) -> Principal:
    return Principal(tenant_id=sec["tenant_id"], email="root", role="owner", method="local")


def mk_token(opts, username, password):
    import salt.auth

    return salt.auth.Resolver(opts).mk_token({"eauth": "serverflow", "username": username, "password": password})


def test_eauth_through_the_master_sets_role_groups_and_salt_enforces_the_acl(opts, sec, db):
    import salt.client
    import salt.runner

    tag = uuid.uuid4().hex[:8]
    owner_email, viewer_email = f"owner-{tag}@example.com", f"viewer-{tag}@example.com"
    admin.user_add(sec, db, root(sec), owner_email, "owner", password="owner password 1")
    admin.user_add(sec, db, root(sec), viewer_email, "viewer", password="viewer password 1")

    owner_tok = mk_token(opts, owner_email, "owner password 1")
    assert owner_tok["name"] == owner_email and owner_tok["eauth"] == "serverflow"
    assert owner_tok["groups"] == ["owner"]
    viewer_tok = mk_token(opts, viewer_email, "viewer password 1")
    assert viewer_tok["groups"] == ["viewer"]
    assert "token" not in (mk_token(opts, viewer_email, "wrong password") or {})
    assert "token" not in (mk_token(opts, f"nobody-{tag}@example.com", "x") or {})

    client = salt.client.LocalClient(mopts=opts)
    assert client.cmd("sf-web-1", "test.ping", token=owner_tok["token"], timeout=15) == {"sf-web-1": True}
    with pytest.raises(Exception):  # viewers never publish raw Salt functions
        refused = client.cmd("sf-web-1", "test.ping", token=viewer_tok["token"], timeout=15)
        assert refused == {"sf-web-1": True}, "viewer was allowed to publish"

    runner = salt.runner.RunnerClient(opts)
    listed = runner.cmd_sync({"fun": "serverflow.user_list", "token": owner_tok["token"]}, timeout=60)
    assert viewer_email in [u["email"] for u in listed]
    with pytest.raises(Exception):  # admin runners are outside the viewer ACL
        runner.cmd_sync({"fun": "serverflow.user_list", "token": viewer_tok["token"]}, timeout=60)

    with db.tenant(sec["tenant_id"]) as conn:
        seen = {(r["details"]["actor"], r["action"]) for r in audit.search(conn, action="auth.*", limit=200)}
    assert (owner_email, "auth.login") in seen and (viewer_email, "auth.login_failed") in seen


def test_eauth_with_mfa_code_in_the_password_and_with_an_api_key(opts, sec, db):
    tag = uuid.uuid4().hex[:8]
    email = f"mfa-{tag}@example.com"
    admin.user_add(sec, db, root(sec), email, "operator", password="mfa user password")
    secret = admin.mfa_enroll(sec, db, root(sec), email)["secret"]
    totp = pyotp.TOTP(secret)
    admin.mfa_enroll(sec, db, root(sec), email, code=totp.at(time.time() - 30))
    assert "token" not in (mk_token(opts, email, "mfa user password") or {})  # AUTH004: code missing
    tok = mk_token(opts, email, f"mfa user password:{totp.now()}")
    assert tok["name"] == email and tok["groups"] == ["operator"]

    key = admin.apikey_create(sec, db, root(sec), email, role="viewer", name="ci")
    tok = mk_token(opts, key["username"], key["key"])
    assert tok["name"] == key["username"] and tok["groups"] == ["viewer"]
    admin.apikey_revoke(sec, db, root(sec), key["username"])
    assert "token" not in (mk_token(opts, key["username"], key["key"]) or {})


def test_admin_runners_from_the_masters_shell_are_audited(salt_stack):
    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    added = run_json(salt_stack, "salt-run", "serverflow.user_add", email, "role=operator", "tags=web")
    assert added["user"]["email"] == email and added["user"]["tags"] == ["web"] and added["password"]
    found = run_json(salt_stack, "salt-run", "serverflow.audit", "action=user.*", "since=10m", "limit=500")
    mine = [r for r in found if r["details"].get("email") == email]
    assert [(r["action"], r["details"]["actor"], r["resource_id"]) for r in mine] == \
        [("user.add", "root", added["user"]["id"])]
    assert all(added["password"] not in str(r) for r in found)


def test_first_admin_is_created_once_and_can_sign_in(salt_stack, sec, db):
    first = stack.ensure_first_admin(salt_stack)
    again = stack.ensure_first_admin(salt_stack)
    assert first["email"] == again["email"] == "admin@serverflow.local"
    assert first["password"] == again["password"] and again["created"] is False
    assert salt_stack.secrets()["admin_password"] == first["password"]
    assert {"postgres_password", "owner_password", "app_password", "api_secret"} <= set(salt_stack.secrets())
    me = identity.authenticate(db, sec, "admin@serverflow.local", first["password"])
    assert me.role == "owner"
