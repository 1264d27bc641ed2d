"""Mask secrets before text or data reaches an LLM prompt, a log line or an audit record.

``mask(value)`` walks strings, mappings and sequences and returns a masked copy:

- values under secret-looking keys (``password``, ``db_pass``, ``api_key``,
  ``client_secret``, ``X-Api-Key``, ``authToken`` ...), whatever their shape;
- inside any string: private key blocks (PEM, OpenSSH, PGP), passwords in
  URLs and DSNs (``postgresql://u:***@h``), ``Authorization``/``Bearer``
  credentials, ``key=value``/``key: value``/JSON pairs with a secret-looking
  key, ``--password x`` flags, ``mysql -pX``, SQL ``IDENTIFIED BY``/``PASSWORD '...'``,
  and tokens recognisable by shape: OpenAI/Anthropic ``sk-...``, Stripe
  ``sk_live_...``, AWS access key ids, GitHub, GitLab, Slack, Google, npm,
  Hugging Face tokens, JWTs, and ServerFlow's own API keys and refresh tokens.

``mask_pillar(data)`` masks every leaf of pillar data (pillar is where Salt keeps
secrets, so all of it is treated as secret); ``mask_return(function, data)``
applies it to the returns of ``pillar.*`` functions and ``mask`` to the rest.

Numbers and booleans outside secret keys, minion ids, jids, paths and
ordinary prose are left alone, so masked data stays useful to the model.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

# Words that make a key secret when one of its segments contains them.
_SECRET_SUBSTRINGS = ("password", "passwd", "passphrase", "secret", "token", "apikey", "accesskey",
                      "privatekey", "secretkey", "credential", "cookie", "authorization", "sessionkey",
                      "signingkey", "encryptionkey", "masterkey", "clientkey", "authkey", "licensekey")
# Segments that are secret only next to another segment ("db_pass", "mysql_pwd", not "PWD").
_SECRET_COMPANION = {"pass", "pwd", "pw"}
# Two-segment phrases ("api key", "private-key", "x-api-key").
_SECRET_PAIRS = {("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key"),
                 ("signing", "key"), ("encryption", "key"), ("master", "key"), ("client", "key"),
                 ("auth", "key"), ("session", "key"), ("license", "key"), ("account", "key"),
                 ("storage", "key"), ("shared", "key"), ("sas", "token"), ("ssh", "pass")}
# A segment like these means the value describes a secret rather than being one.
_BENIGN = {"expire", "expires", "expiry", "expiration", "expired", "ttl", "count", "counts", "used",
           "max", "min", "limit", "limits", "length", "len", "type", "types", "id", "ids", "file",
           "files", "path", "paths", "url", "uri", "endpoint", "policy", "name", "names", "at",
           "time", "timeout", "age", "enabled", "required", "tokens", "present", "set", "changed",
           "strength", "format", "algorithm", "algo", "prefix", "hint", "label", "mode",
           "requirement", "requirements", "rotation", "lifetime", "reset"}

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^A-Za-z0-9]+")


def _segments(key: str) -> list[str]:
    return [s.lower() for s in _SPLIT.split(_CAMEL.sub("_", key)) if s]


_HINT = re.compile(r"pass|pwd|pw|secret|token|key|credential|cookie|auth", re.IGNORECASE)


def is_secret_key(key: Any) -> bool:
    """Whether a mapping key or ``key=`` name looks like it holds a secret."""
    if not isinstance(key, str) or not key or not _HINT.search(key):
        return False
    return _is_secret_name(key)


@functools.lru_cache(maxsize=4096)
def _is_secret_name(key: str) -> bool:
    segs = _segments(key)
    if not segs or any(s in _BENIGN for s in segs):
        return False
    joined = "".join(segs)
    if any(word in joined for word in _SECRET_SUBSTRINGS):
        return True
    if len(segs) > 1 and any(s in _SECRET_COMPANION for s in segs):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(segs, segs[1:]))


# -- patterns inside strings (order matters: whole blocks first, then shapes, then pairs) --------
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?P<kind>(?:[A-Z0-9]+ )*)PRIVATE KEY(?P<block> BLOCK)?-----"
    r".*?(?:-----END (?P=kind)PRIVATE KEY(?P=block)?-----|\Z)", re.DOTALL)
_URL_PASSWORD = re.compile(r"(?P<pre>(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]{0,30}://[^:/?#@\s\"']{0,200}:)(?P<secret>[^@\s\"'/]+)(?=@)")
_TOKEN_SHAPES = [re.compile(p) for p in (
    r"\bsk-(?:proj-|ant-(?:api\d\d-)?|live-|svcacct-)?[A-Za-z0-9_-]{16,}",  # OpenAI, Anthropic ...
    r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}",  # Stripe secret / restricted keys
    r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}\b",  # AWS access key ids
    r"\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}",  # GitHub
    r"\bglpat-[A-Za-z0-9_-]{20,}",  # GitLab
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
    r"\bAIza[0-9A-Za-z_-]{35}",  # Google API keys
    r"\bnpm_[A-Za-z0-9]{36}\b",  # npm
    r"\bhf_[A-Za-z0-9]{30,}\b",  # Hugging Face
    r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}",  # JWT
    r"\bsfk_[A-Za-z0-9]{6,}_[A-Za-z0-9_-]{16,}",  # ServerFlow API keys
    r"\bsfr_[A-Za-z0-9_-]{20,}",  # ServerFlow refresh tokens
)]
_TOKENS = re.compile("|".join(f"(?:{p.pattern})" for p in _TOKEN_SHAPES))
_AUTH_HEADER = re.compile(
    r"(?P<pre>(?i:\b(?:proxy-)?authorization)[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"(?:(?i:bearer|basic|digest|token|apikey|negotiate|ntlm|aws4-hmac-sha256)[ \t]+)?)"
    r"(?P<secret>[^\s\"',;]+)")
_BEARER = re.compile(r"(?P<pre>(?i:\bbearer)[ \t]+)(?P<secret>[A-Za-z0-9._~+/=-]{8,})")
# name<sep>value: the name contains a hint and is_secret_key() decides; quotes are kept.
# After "=" a bare value ends at whitespace; after ":" (YAML, headers) at the end of the line.
_PAIR_NAME = r"(?<![\w.-])(?P<name>[A-Za-z0-9_.-]{1,100})(?P<q>[\"']?)"
_QUOTED = r"\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'"
_PAIR_EQ = re.compile(_PAIR_NAME + r"(?P<sep>[ \t]*=[ \t]*)(?P<value>" + _QUOTED + r"|[^\s\"',;&}\]<>)]+)")
_PAIR_COLON = re.compile(_PAIR_NAME + r"(?P<sep>[ \t]*:[ \t]*)(?P<value>" + _QUOTED + r"|[^\s\"'][^\n,;}\]\"']*)")
_FLAG = re.compile(
    r"(?P<pre>(?<![\w-])--?(?P<fname>[A-Za-z][A-Za-z0-9-]{0,63})(?:[ \t]+|=))(?P<secret>\"[^\"\n]*\"|'[^'\n]*'|[^\s\"']+)")
_MYSQL_P = re.compile(r"(?P<pre>\bmysql(?:dump|admin|import|check|show)?\b[^\n|;]{0,200}?[ \t]-p)(?P<secret>[^\s\"']+)")
_SQL_PASSWORD = re.compile(
    r"(?P<pre>(?i:\bidentified[ \t]+(?:with[ \t]+\S+[ \t]+)?by(?:[ \t]+password)?|\bpassword)[ \t]+)"
    r"(?P<secret>'(?:[^'\n]|'')*'|\"[^\"\n]*\")")


_ALREADY_MASKED = re.compile(r"([\"']?)\*\*\*\1|(?i:bearer|basic|digest|token|apikey|negotiate|ntlm)[ \t]+\*\*\*")


def _keep_pre(match: re.Match[str]) -> str:
    return match.group("pre") + MASK


def _mask_quoted(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[0] + MASK + value[0]
    return MASK


def _pair(match: re.Match[str]) -> str:
    name = match.group("name")
    if not is_secret_key(name):
        return match.group(0)
    value = match.group("value")
    core = value.rstrip(" \t")
    trail = value[len(core):]
    if not core or _ALREADY_MASKED.fullmatch(core):
        return match.group(0)
    return f"{name}{match.group('q')}{match.group('sep')}{_mask_quoted(core)}{trail}"


def _flag(match: re.Match[str]) -> str:
    if not is_secret_key(match.group("fname")):
        return match.group(0)
    return match.group("pre") + _mask_quoted(match.group("secret"))


def mask_text(text: str) -> str:
    """``text`` with every recognisable secret replaced by ``***``."""
    if not text or not isinstance(text, str):
        return text
    out = _PRIVATE_KEY.sub(lambda m: f"-----BEGIN {m.group('kind')}PRIVATE KEY{m.group('block') or ''}-----"
                           f"{MASK}-----END {m.group('kind')}PRIVATE KEY{m.group('block') or ''}-----", text)
    out = _URL_PASSWORD.sub(_keep_pre, out)
    out = _TOKENS.sub(MASK, out)
    out = _AUTH_HEADER.sub(_keep_pre, out)
    out = _BEARER.sub(_keep_pre, out)
    out = _SQL_PASSWORD.sub(lambda m: m.group("pre") + _mask_quoted(m.group("secret")), out)
    out = _FLAG.sub(_flag, out)
    out = _MYSQL_P.sub(_keep_pre, out)
    out = _PAIR_EQ.sub(_pair, out)
    out = _PAIR_COLON.sub(_pair, out)
    return out


def _mask_all(value: Any) -> Any:
    """Every leaf masked (structure kept); None, booleans and empty strings stay as they are."""
    if isinstance(value, Mapping):
        return {k: _mask_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_mask_all(v) for v in value]
    if value is None or isinstance(value, bool) or value == "":
        return value
    return MASK


def mask(value: Any, key: Any = None) -> Any:
    """A masked copy of ``value`` (str, bytes, mapping, sequence or scalar)."""
    if key is not None and is_secret_key(key):
        return _mask_all(value)
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, (bytes, bytearray)):
        return mask_text(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {k: mask(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [mask(v) for v in value]
    return value


def mask_pillar(data: Any) -> Any:
    """Pillar data with every value masked (keys kept, so the model still sees the shape)."""
    return _mask_all(data)


def mask_return(function: str, data: Any) -> Any:
    """A Salt function's return, masked: pillar functions entirely, others by ``mask``."""
    if (function or "").startswith(("pillar.", "config.get", "config.option")):
        return mask_pillar(data)
    return mask(data)


def _masked_log_message(msg: Any, args: Any) -> tuple[Any, Any]:
    """``(msg, args)`` of a log call, formatted and masked when that changes anything."""
    if not isinstance(msg, str):
        return msg, args
    try:
        values = args[0] if len(args) == 1 and isinstance(args[0], Mapping) and args[0] else args
        text = msg % values if args else msg
    except Exception:  # noqa: BLE001 - a broken format is logging's to report, unmasked
        return msg, args
    masked = mask_text(text)
    if masked == text:
        return msg, args
    return masked, ()  # no args: logging will not %-format the masked text again


def install_log_masking() -> None:
    """Mask secrets in every log record this process creates from now on, Salt's own included.

    Wraps the log record factory (which Salt sets once, at start-up) instead of
    filtering handlers: Salt re-creates handlers in its child processes, the
    factory is inherited. Calling it again is harmless.
    """
    import logging

    current = logging.getLogRecordFactory()
    if getattr(current, "serverflow_masking", False):
        return

    def factory(name, level, fn, lno, msg, args, exc_info, func=None, sinfo=None, **kwargs):
        msg, args = _masked_log_message(msg, args)
        record = current(name, level, fn, lno, msg, args, exc_info, func, sinfo, **kwargs)
        if exc_info and not getattr(record, "exc_text", None):
            record.exc_text = mask_text(logging.Formatter().formatException(exc_info)) if exc_info[0] else None
        return record

    factory.serverflow_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class SecretMaskingFilter:
    """A ``logging`` filter that masks the formatted message (and exception text) of each record.

    ``logging.getLogger("salt_ext").addFilter(SecretMaskingFilter())`` (or on a handler,
    to cover every logger writing through it).
    """

    def filter(self, record: Any) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging to report
            return True
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            import logging

            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        return True
