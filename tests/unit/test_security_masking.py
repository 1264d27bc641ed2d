"""Masking: secrets never reach a prompt, a log line or an audit record; ordinary text survives."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings, strategies as st

from salt_ext.security.masking import MASK, is_secret_key, mask, mask_pillar, mask_return, mask_text

# -- examples -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, secret", [
    ("password=hunter2 and more", "hunter2"),
    ('{"password": "hunter two", "user": "bob"}', "hunter two"),
    ("db:\n  password: correct horse battery staple\n  host: x", "correct horse battery staple"),
    ("postgresql://app:s3cr3t@127.0.0.1:5432/x", "s3cr3t"),
    ("redis://:pw12345@localhost:6379/0", "pw12345"),
    ("Authorization: Bearer abc.def-ghi123", "abc.def-ghi123"),
    ("curl -H 'Authorization: Basic dXNlcjpwYXNz' http://x", "dXNlcjpwYXNz"),
    ("key sk-proj-abcdefghijklmnopqrstuvwxyz123456", "abcdefghijklmnopqrstuvwxyz123456"),
    ("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWx", "AbCdEfGhIjKlMnOpQrStUvWx"),
    ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA (truncated", "b3BlbnNzaC1rZXktdjEAAAAA"),
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF0\n-----END PGP PRIVATE KEY BLOCK-----", "lQOYBF0"),
    ("mysql -u root -pS3cretPw db", "S3cretPw"),
    ("ALTER ROLE app PASSWORD 'x y z1'", "x y z1"),
    ("CREATE USER 'a'@'%' IDENTIFIED BY 'pw-42';", "pw-42"),
    ("run --db-password hunter2x --verbose", "hunter2x"),
    ("export PGPASSWORD=abc123; psql", "abc123"),
    ("X-Api-Key: abcd1234efgh", "abcd1234efgh"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrstuvwxyz0123456789"),
    ("xoxb-1234567890-abcdefghij", "1234567890-abcdefghij"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_abcdef", "eyJzdWIiOiIxIn0"),
    ("sfk_ab12cd34ef56_abcdefghijklmnopqrstuvwxyz0123", "abcdefghijklmnopqrstuvwxyz0123"),
    ("refresh sfr_abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz"),
    ("stripe sk_live_abcdefghijklmn", "abcdefghijklmn"),
    ("clientSecret=Zx9-abc", "Zx9-abc"),
])
def test_secrets_in_text_are_masked(text: str, secret: str) -> None:
    out = mask_text(text)
    assert secret not in out, out
    assert MASK in out


@pytest.mark.parametrize("text", [
    "disk usage at 85% on web-01, jid 20240101123456789012",
    "max_tokens=512 tokens_used: 12 token_expire=60",
    "tags_key: serverflow:tags and services_key: serverflow:services",
    "PWD=/home/bob",
    "nginx is running (pid 1234); uptime 3 days, load 0.42",
    "the password was rejected",
    "ssh_key: /root/.ssh/id_rsa.pub",
    "https://example.com:8443/path?q=1",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert mask_text(text) == text


def test_nested_data_masks_secret_keys_and_strings_but_keeps_shape() -> None:
    data = {"db": {"password": {"a": 1, "b": [2, "x"]}, "url": "mysql://u:pw@h/d", "port": 5432},
            "api_key": "k", "tokens_used": 12, "tags_key": "serverflow:tags", "ok": True,
            "list": ["Bearer abcdefghijk", ("token=abc",)], "empty_password": "", "none_token": None}
    out = mask(data)
    assert out["db"]["password"] == {"a": MASK, "b": [MASK, MASK]}
    assert out["db"]["url"] == "mysql://u:***@h/d" and out["db"]["port"] == 5432
    assert out["api_key"] == MASK and out["tokens_used"] == 12 and out["ok"] is True
    assert out["tags_key"] == "serverflow:tags"
    assert out["list"] == ["Bearer ***", ["token=***"]]
    assert out["empty_password"] == "" and out["none_token"] is None
    assert data["api_key"] == "k"  # the input is not changed


def test_pillar_values_are_all_masked() -> None:
    pillar = {"mysql": {"root_pw": "abc", "port": 3306, "users": ["x", "y"]}, "enabled": True}
    assert mask_pillar(pillar) == {"mysql": {"root_pw": MASK, "port": MASK, "users": [MASK, MASK]},
                                   "enabled": True}
    assert mask_return("pillar.get", "abc") == MASK
    assert mask_return("disk.usage", {"/": {"capacity": "85%"}}) == {"/": {"capacity": "85%"}}


@pytest.mark.parametrize("key, secret", [
    ("password", True), ("db_password", True), ("DB_PASS", True), ("mysqlPwd", True), ("PWD", False),
    ("api_key", True), ("apiKey", True), ("x-api-key", True), ("client_secret", True),
    ("AWS_SECRET_ACCESS_KEY", True), ("authToken", True), ("private_key", True), ("cookie", True),
    ("max_tokens", False), ("tokens_used", False), ("token_expire", False), ("tags_key", False),
    ("key", False), ("password_file", False), ("secret_name", False), ("api_key_id", False),
    ("ssh_key", False), ("hostname", False),
])
def test_secret_key_names(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


# -- properties -----------------------------------------------------------------------------------
_SAFE = string.ascii_letters + string.digits + "-_.~+/=%^*!"
secrets_ = st.text(alphabet=_SAFE, min_size=8, max_size=40).filter(
    lambda s: any(c.isdigit() for c in s) and any(c.isalpha() for c in s) and MASK not in s)
spaced_secrets = st.text(alphabet=_SAFE + " #:@", min_size=8, max_size=40).filter(
    lambda s: s.strip() == s and any(c.isdigit() for c in s) and MASK not in s)  # filler has no digits
filler = st.text(alphabet=string.ascii_lowercase + " \n", max_size=60)
keys = st.sampled_from(["password", "db_password", "PGPASSWORD", "api_key", "client_secret",
                        "auth_token", "SECRET_KEY", "private_key", "X-Api-Key", "accessToken"])
token_body = st.text(alphabet=string.ascii_letters + string.digits, min_size=20, max_size=48).filter(
    lambda s: any(c.isdigit() for c in s))  # filler has no digits

TEMPLATES = ["{k}={s}", "{k}: {s}", '"{k}": "{s}"', "{k} = '{s}'", "--{k} {s}"]


@settings(max_examples=150, deadline=None, database=None)
@given(key=keys, secret=secrets_, before=filler, after=filler, template=st.sampled_from(TEMPLATES))
def test_property_a_secret_after_a_secret_key_never_survives(key, secret, before, after, template) -> None:
    flag_key = key.lower().replace("_", "-")
    line = template.format(k=flag_key if template.startswith("--") else key, s=secret)
    text = f"{before} {line}\n{after}"
    assert secret not in mask_text(text)


@settings(max_examples=100, deadline=None, database=None)
@given(key=keys, secret=spaced_secrets, before=filler)
def test_property_quoted_or_yaml_secrets_with_spaces_never_survive(key, secret, before) -> None:
    for text in (f'{before} {{"{key}": "{secret}"}}', f"{before}\n{key}: {secret}\nnext: line"):
        assert secret not in mask_text(text), text


@settings(max_examples=100, deadline=None, database=None)
@given(secret=secrets_.filter(lambda s: "/" not in s and "@" not in s),
       user=st.from_regex(r"[a-z]{1,10}", fullmatch=True),
       scheme=st.sampled_from(["postgresql", "mysql", "redis", "https", "amqp", "mongodb+srv"]), before=filler)
def test_property_url_passwords_never_survive(secret, user, scheme, before) -> None:
    text = f"{before} {scheme}://{user}:{secret}@db.example:5432/app"
    out = mask_text(text)
    assert secret not in out and f"{scheme}://{user}:***@db.example" in out


@settings(max_examples=100, deadline=None, database=None)
@given(body=token_body, shape=st.sampled_from(["sk-{b}", "sk-proj-{b}", "ghp_{b}{b}", "Bearer {b}",
                                                "Authorization: token {b}", "sfr_{b}", "glpat-{b}"]),
       before=filler, after=filler)
def test_property_token_shapes_never_survive(body, shape, before, after) -> None:
    assert body not in mask_text(f"{before} {shape.format(b=body)} {after}")


@settings(max_examples=100, deadline=None, database=None)
@given(body=st.text(alphabet=string.ascii_uppercase + string.digits, min_size=16, max_size=16), before=filler)
def test_property_aws_access_key_ids_never_survive(body, before) -> None:
    assert "AKIA" + body not in mask_text(f"{before} AKIA{body} ")


@settings(max_examples=100, deadline=None, database=None)
@given(lines=st.lists(st.text(alphabet=string.ascii_letters + string.digits + "+/=", min_size=8, max_size=64)
                      .filter(lambda s: any(c.isdigit() for c in s)), min_size=1, max_size=6),  # filler has no digits
       kind=st.sampled_from(["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "]), before=filler)
def test_property_private_key_blocks_never_survive(lines, kind, before) -> None:
    body = "\n".join(lines)
    text = f"{before}\n-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----\n"
    out = mask_text(text)
    assert all(line not in out for line in lines)


@settings(max_examples=100, deadline=None, database=None)
@given(key=keys, secret=st.one_of(secrets_, st.integers(min_value=1000)),
       path=st.lists(st.sampled_from(["db", "app", "cfg", "items"]), max_size=3))
def test_property_nested_data_never_leaks_values_under_secret_keys(key, secret, path) -> None:
    data: object = {key: secret}
    for part in reversed(path):
        data = {part: [data]}
    assert str(secret) not in repr(mask(data))


@settings(max_examples=100, deadline=None, database=None)
@given(text=st.text(max_size=200))
def test_property_masking_is_idempotent(text) -> None:
    once = mask_text(text)
    assert mask_text(once) == once


@settings(max_examples=100, deadline=None, database=None)
@given(words=st.lists(st.from_regex(r"[a-z]{1,10}", fullmatch=True), max_size=30))
def test_property_plain_prose_is_unchanged(words) -> None:
    text = " ".join(words)
    assert mask_text(text) == text


@pytest.mark.parametrize("text", ["A" * 100_000, "passA" * 20_000, "x=1 " * 25_000, "a." * 50_000,
                                  "password: " * 10_000, "eyJ" * 30_000, ":" * 100_000])
def test_masking_stays_linear_on_large_outputs(text: str) -> None:
    import time

    started = time.monotonic()
    mask_text(text)
    assert time.monotonic() - started < 2.0


def test_logging_filter_masks_messages_args_and_tracebacks(caplog) -> None:
    import logging

    from salt_ext.security.masking import SecretMaskingFilter

    logger = logging.getLogger("test.masking")
    handler_filter = SecretMaskingFilter()
    logger.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="test.masking"):
            logger.info("connecting to %s with token=%s", "postgresql://u:pw123@h/db", "abc123")
            try:
                raise RuntimeError("password=hunter2")
            except RuntimeError:
                logger.exception("failed")
    finally:
        logger.removeFilter(handler_filter)
    text = caplog.text
    assert "pw123" not in text and "abc123" not in text and "hunter2" not in text
    assert "postgresql://u:***@h/db" in text and "token=***" in text
