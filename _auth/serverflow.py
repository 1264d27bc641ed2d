"""
ServerFlow external authentication: users, MFA and API keys from PostgreSQL.

Signs Salt users in against ServerFlow's ``users`` table (argon2id passwords,
lockout, TOTP) and ``api_keys``; ``groups`` returns the ServerFlow role, so
the master's ``external_auth`` ACL is written per role.

.. code-block:: yaml

    external_auth:
      serverflow:
        owner%:    ['.*', '@runner', '@wheel', '@jobs']
        admin%:    [{'@runner': ['serverflow\\..*']}, '@jobs']
        operator%: [{'@runner': ['serverflow\\.(ask|plan|servers|server|conversations|conversation|health)$']}]
        viewer%:   [{'@runner': ['serverflow\\.(ask|plan|servers|server|conversations|conversation|health)$']}]

(``salt_ext.security.roles.SALT_ACL`` is the reference copy.)

What goes in the credentials:

- a person: ``username`` = e-mail, ``password`` = the password, or for an account
  with MFA ``password:123456`` (the current TOTP code) or ``password:abcd-efgh-jkmn``
  (a one-time recovery code);
- automation: ``username`` = ``sfk_<key_id>``, ``password`` = the whole API key.

.. code-block:: bash

    curl -si http://127.0.0.1:8000/login -d eauth=serverflow \\
         -d username=admin@serverflow.local -d password='...'
    salt-run -a serverflow serverflow.servers

Salt hands eauth modules only the username and password, so the audit trail
of a Salt sign-in has no client address. Failures are answered with Salt's
usual "Authentication failure" (Salt also evens out their timing); the reason
(AUTH001 wrong/locked/disabled, AUTH004 code missing) is in the audit trail
and the master log at info level.
"""

import hashlib
import logging
import os
import secrets
import time

try:
    from salt_ext.config import load_settings
    from salt_ext.db import Database
    from salt_ext.errors import ServerFlowError
    from salt_ext.security import identity
    from salt_ext.security.roles import canonical_role
    from salt_ext.security.settings import with_secret_key
    from salt_ext.security.masking import install_log_masking

    HAS_CORE = True
except ImportError as _exc:  # pragma: no cover - depends on the master's Python
    HAS_CORE = False
    _IMPORT_ERROR = str(_exc)

log = logging.getLogger(__name__)

__virtualname__ = "serverflow"

# Per process: one small pool (master workers fork, so keyed by pid) and the roles of
# recent successful sign-ins, so groups() right after auth() needs no second check.
_STATE = {"pid": None, "db": None, "dsn": None}
_RECENT = {}
_RECENT_TTL = 60
_PEPPER = secrets.token_bytes(32)


def __virtual__():
    if not HAS_CORE:
        return False, f"serverflow eauth: the salt_ext package is not importable ({_IMPORT_ERROR})"
    install_log_masking()  # secrets never reach a log line written in this process
    return __virtualname__


def _settings():
    return with_secret_key(load_settings(__opts__), __opts__)


def _db(settings):
    dsn = settings["database"]["url"]
    if _STATE["pid"] != os.getpid() or _STATE["dsn"] != dsn or _STATE["db"] is None:
        _STATE.update(pid=os.getpid(), dsn=dsn,
                      db=Database(dsn, min_size=0, max_size=2, name="serverflow-eauth",
                                  connect_timeout=settings["database"]["connect_timeout"]))
    return _STATE["db"]


def _fingerprint(username, password):
    return hashlib.blake2b(f"{username}\0{password}".encode(), key=_PEPPER).hexdigest()


def _remember(username, password, principal):
    now = time.monotonic()
    for key in [k for k, (_, at) in _RECENT.items() if now - at > _RECENT_TTL]:
        _RECENT.pop(key, None)
    _RECENT[_fingerprint(username, password)] = (principal.role, now)


def auth(username, password, **kwargs):
    """
    True when ``username``/``password`` is a valid ServerFlow sign-in (see the module docs).
    """
    if not username or not password:
        return False
    settings = _settings()
    try:
        principal = identity.authenticate_secret(_db(settings), settings, str(username), str(password))
    except ServerFlowError as exc:
        log.info("serverflow eauth: sign-in of %s refused: %s", username, exc.code)
        return False
    except Exception as exc:  # the database is down: refuse, say why once
        log.warning("serverflow eauth: cannot check %s: %s", username, exc)
        return False
    _remember(str(username), str(password), principal)
    return True


def groups(username, password=None, **kwargs):
    """
    The ServerFlow role of a user who just signed in, as a one-element list
    (``external_auth`` matches it as ``<role>%``). Salt calls this only after
    ``auth`` succeeded.
    """
    if not username:
        return []
    hit = _RECENT.get(_fingerprint(str(username), str(password or "")))
    if hit is not None:
        return [hit[0]]
    settings = _settings()
    try:
        principal = identity.principal_for_salt_user(_db(settings), settings, str(username))
    except ServerFlowError:
        return []
    except Exception as exc:
        log.warning("serverflow eauth: cannot read the role of %s: %s", username, exc)
        return []
    if principal.method == "local":  # a local account name is not a ServerFlow sign-in
        return []
    role = canonical_role(principal.role)
    return [role] if role else []
