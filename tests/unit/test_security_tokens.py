"""Token, MFA, password and key-material logic that needs no database."""

from __future__ import annotations

import os
import time

import jwt
import pyotp
import pytest

from salt_ext.errors import ServerFlowError
from salt_ext.security import mfa, passwords, tokens
from salt_ext.security.identity import Principal, split_mfa
from salt_ext.security.settings import derived_key, security_settings, with_secret_key

FAST = {"argon2": {"time_cost": 1, "memory_cost": 8, "parallelism": 1}}
SETTINGS = {"tenant_id": "t-1", "security": {"secret_key": "k" * 40, **FAST}}
ALICE = Principal(tenant_id="t-1", email="alice@example.com", role="operator", id="u-1", tags=("web",))


def test_access_token_round_trip_carries_identity_and_15_minute_lifetime() -> None:
    token, ttl = tokens.issue_access_token(SETTINGS, ALICE)
    assert ttl == 900
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 900 and claims["typ"] == "access" and claims["tid"] == "t-1"
    back = tokens.verify_access_token(SETTINGS, token)
    assert (back.email, back.role, back.id, back.tags, back.method) == ("alice@example.com", "operator", "u-1",
                                                                        ("web",), "token")


def test_expired_access_token_is_auth002_and_forged_ones_auth001() -> None:
    old, _ = tokens.issue_access_token(SETTINGS, ALICE, now=time.time() - 3600)
    with pytest.raises(ServerFlowError) as err:
        tokens.verify_access_token(SETTINGS, old)
    assert err.value.code == "AUTH002"
    token, _ = tokens.issue_access_token(SETTINGS, ALICE)
    other_key = {**SETTINGS, "security": {"secret_key": "z" * 40}}
    other_tenant = {**SETTINGS, "tenant_id": "t-2"}
    head, body, sig = token.split(".")
    forged_role = jwt.encode({**jwt.decode(token, options={"verify_signature": False}), "role": "owner"},
                             "a-guessed-key-that-is-long-enough-000", algorithm="HS256")
    none_alg = jwt.encode({**jwt.decode(token, options={"verify_signature": False})}, None, algorithm="none")
    for settings, value in [(other_key, token), (other_tenant, token), (SETTINGS, forged_role),
                            (SETTINGS, none_alg), (SETTINGS, f"{head}.{body}.{sig[::-1]}"), (SETTINGS, "junk"),
                            (SETTINGS, "")]:
        with pytest.raises(ServerFlowError) as err:
            tokens.verify_access_token(settings, value)
        assert err.value.code == "AUTH001", value


def test_refresh_tokens_are_opaque_and_only_their_hash_is_kept() -> None:
    a, b = tokens.new_refresh_token(), tokens.new_refresh_token()
    assert a != b and a.startswith("sfr_") and len(a) > 40
    assert tokens.hash_token(a) == tokens.hash_token(a) != tokens.hash_token(b)
    assert a not in tokens.hash_token(a)


def test_token_pair_has_the_login_response_shape() -> None:
    pair = tokens.TokenPair("acc", 900, "sfr_x", None, ALICE)
    body = pair.as_dict()
    assert body["access_token"] == "acc" and body["refresh_token"] == "sfr_x" and body["expires_in"] == 900
    assert body["user"] == {"id": "u-1", "email": "alice@example.com", "name": None, "role": "operator"}


def test_totp_accepts_a_window_and_never_the_same_step_twice() -> None:
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    now = 1_700_000_000.0
    step = totp.timecode(totp_dt(now))
    assert mfa.matching_step(secret, totp.at(now), last_step=None, now=now) == step
    assert mfa.matching_step(secret, totp.at(now - 30), last_step=None, now=now) == step - 1
    assert mfa.matching_step(secret, totp.at(now), last_step=step, now=now) is None  # replay
    assert mfa.matching_step(secret, totp.at(now + 30), last_step=step, now=now) == step + 1
    assert mfa.matching_step(secret, totp.at(now - 90), last_step=None, now=now) is None  # too old
    assert mfa.matching_step(secret, "12345", last_step=None, now=now) is None
    assert mfa.matching_step(secret, "abcdef", last_step=None, now=now) is None


def totp_dt(now: float):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(now, tz=timezone.utc)


def test_mfa_secret_is_encrypted_and_bound_to_its_user() -> None:
    blob = mfa.encrypt_secret(SETTINGS, "t-1", "u-1", "JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in blob and blob.startswith("v1:")
    assert mfa.decrypt_secret(SETTINGS, "t-1", "u-1", blob) == "JBSWY3DPEHPK3PXP"
    for tenant, user, settings in [("t-1", "u-2", SETTINGS), ("t-2", "u-1", SETTINGS),
                                   ("t-1", "u-1", {"security": {"secret_key": "other" * 8}})]:
        with pytest.raises(ServerFlowError) as err:
            mfa.decrypt_secret(settings, tenant, user, blob)
        assert err.value.code == "SYS003"


def test_recovery_codes_are_readable_hashed_and_normalised() -> None:
    codes = mfa.new_recovery_codes(10)
    assert len(set(codes)) == 10 and all(mfa.looks_like_recovery_code(c) for c in codes)
    code = codes[0]
    digest = mfa.hash_recovery_code(SETTINGS, "u-1", code)
    assert mfa.hash_recovery_code(SETTINGS, "u-1", code.upper().replace("-", " ")) == digest
    assert mfa.hash_recovery_code(SETTINGS, "u-2", code) != digest
    assert code not in digest


def test_split_mfa_takes_the_code_after_the_last_colon() -> None:
    assert split_mfa("s3cret:pass:123456") == ("s3cret:pass", "123456")
    assert split_mfa("pw:abcd-efgh-jkmn") == ("pw", "abcd-efgh-jkmn")
    assert split_mfa("no-code-here") == ("no-code-here", None)
    assert split_mfa("ends:with:12345") == ("ends:with:12345", None)
    assert split_mfa(":123456") == (":123456", None)


def test_argon2id_hashes_verify_and_report_rehash() -> None:
    stored = passwords.hash_password("correct horse battery", SETTINGS)
    assert stored.startswith("$argon2id$")
    assert passwords.verify_password(stored, "correct horse battery", SETTINGS)
    assert not passwords.verify_password(stored, "wrong", SETTINGS)
    assert not passwords.verify_password(None, "anything", SETTINGS)
    assert not passwords.verify_password("not-a-hash", "x", SETTINGS)
    assert passwords.needs_rehash(stored, {"security": {"argon2": {"time_cost": 2, "memory_cost": 8, "parallelism": 1}}})
    generated = passwords.generate_password()
    assert len(generated) == 20 and passwords.check_password_policy(generated) is None
    for weak in ("short", "aaaaaaaaaaaaaaaa"):
        with pytest.raises(ServerFlowError):
            passwords.check_password_policy(weak)


def test_secret_key_file_is_created_once_with_mode_0600(tmp_path) -> None:
    opts = {"pki_dir": str(tmp_path)}
    first = with_secret_key({"tenant_id": "t"}, opts)["security"]["secret_key"]
    path = tmp_path / "serverflow.secret"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert with_secret_key({"tenant_id": "t"}, opts)["security"]["secret_key"] == first
    explicit = {"security": {"secret_key": "mine"}}
    assert with_secret_key(explicit, opts) is explicit
    assert derived_key(SETTINGS, "a") != derived_key(SETTINGS, "b") and len(derived_key(SETTINGS, "a")) == 32
    with pytest.raises(ServerFlowError) as err:
        derived_key({"security": {}}, "a")
    assert err.value.code == "SYS003"
    assert security_settings({})["tokens"]["access_ttl"] == 900
    assert os.path.exists(path)
