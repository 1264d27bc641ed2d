"""ServerFlow administration from the master: ``salt-run serverflow.<function>``.

.. code-block:: bash

    salt-run serverflow.servers status=online tag=web --out=json
    salt-run serverflow.server demo-web-01
    salt-run serverflow.health
    salt-run serverflow.migrate
    salt-run serverflow.ask "why is demo-db-01 slow?"
    salt-run serverflow.plan "restart nginx on demo-web-01"
    salt-run serverflow.conversations
"""

try:
    from salt_ext import health as _health
    from salt_ext.chat import client as chat_client
    from salt_ext.chat import queries as chat_queries
    from salt_ext.config import load_settings
    from salt_ext.db import migrate as _migrate
    from salt_ext.engine.salt_io import accepted_minions
    from salt_ext.inventory import queries
    from salt_ext.loader import report
    from salt_ext.security.masking import install_log_masking

    HAS_CORE = True
except ImportError as _exc:  # pragma: no cover - depends on the master's Python
    HAS_CORE = False
    _IMPORT_ERROR = str(_exc)

import sys

__virtualname__ = "serverflow"


def __virtual__():
    if not HAS_CORE:
        return False, f"serverflow runner: the salt_ext package is not importable ({_IMPORT_ERROR})"
    install_log_masking()  # secrets never reach a log line written in this process
    return __virtualname__


def _settings():
    from salt_ext.security.settings import with_secret_key

    return with_secret_key(load_settings(__opts__), __opts__)


def servers(status=None, tag=None, search=None):
    """
    List inventory servers, optionally filtered.

    status
        online, offline or unknown
    tag
        a tag, or several separated by commas (all must match)
    search
        substring of minion id, hostname, IP address or OS

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.servers status=online tag=web --out=json
    """
    return report(__context__, queries.servers, _settings(), status=status, tag=tag, search=search)


def server(minion_id):
    """
    Show one server by minion id (or inventory UUID).

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.server demo-db-01
    """
    return report(__context__, queries.server, _settings(), str(minion_id))


def migrate():
    """
    Apply pending database migrations (idempotent).

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.migrate
    """
    return report(__context__, _migrate.migrate, _settings()["database"]["admin_url"])


def health():
    """
    Report database, migrations, Redis, engine and minion connectivity;
    exits non-zero when any component is down.

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.health
    """
    import salt.client

    settings = _settings()
    client = salt.client.get_local_client(mopts=__opts__)
    accepted = accepted_minions(__opts__)

    def connected():
        if not accepted:
            return []
        answered = client.cmd(accepted, "test.ping", tgt_type="list", timeout=5) or {}
        return [m for m, ret in answered.items() if ret is True]

    result = _health.report(__opts__, settings, connected, accepted)
    if not result["ok"]:
        __context__["retcode"] = result["retcode"] = 1
    return result



def ask(question, conversation=None, timeout=None, full=False):
    """
    Ask ServerFlow a question; progress streams to the terminal, the answer is
    returned (``--out=json`` for the structured response).

    conversation
        continue an earlier conversation (its id); a new one is started otherwise
    full
        return the structured response whatever the outputter: with ``-a <eauth>``
        the runner runs on the master, which is not told about ``--out``

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.ask "why is demo-db-01 slow?"
        salt-run serverflow.ask "and on the web servers?" conversation=<id>
    """
    settings = _settings()
    user = __user__  # the identity Salt authenticated (eauth user, or the local account)
    quiet = full or __opts__.get("output") in ("json", "yaml", "raw", "quiet")

    def progress(kind, data):
        # progress goes to stderr so that stdout stays the answer (and valid JSON with --out=json)
        line = chat_client.describe_delta(data) if kind == "delta" else None
        if line:
            sys.stderr.write(f"... {line}\n")
            sys.stderr.flush()

    done = report(__context__, chat_client.ask, __opts__, str(question),
                  conversation_id=conversation, user=user, on_event=progress,
                  timeout=float(timeout or settings["chat"]["ask_timeout"]))
    if "error" in done and "retcode" in done:
        return done
    if quiet:
        return done
    actions = chat_client.describe_actions(done.get("actions") or [])
    return done["text"] + (f"\n\n{actions}" if actions else "") + f"\n\n(conversation {done['conversation_id']})"


def plan(question, conversation=None):
    """
    Show the plan ServerFlow would run for a question, executing nothing.

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.plan "restart nginx on demo-web-01" --out=json
    """
    return report(__context__, chat_queries.plan, _settings(), str(question), conversation)


def conversations(limit=50):
    """
    List recent conversations.

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.conversations
    """
    return report(__context__, chat_queries.conversations, _settings(), limit)


def conversation(conversation_id):
    """
    Show one conversation: messages (with plan, intent, timings), executions and proposed actions.

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.conversation 6f1c...
    """
    return report(__context__, chat_queries.conversation, _settings(), str(conversation_id))


def _principal(settings, db):
    """The ServerFlow identity of whoever Salt authenticated for this runner call."""
    from salt_ext.security.identity import principal_for_salt_user

    return principal_for_salt_user(db, settings, __user__, master_user=__opts__.get("user"))


def _approvals():
    import salt.client
    import salt.utils.event

    from salt_ext.approvals.service import ApprovalService
    from salt_ext.db import Database

    settings = _settings()
    bus = salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=False)
    service = ApprovalService(settings, Database.from_settings(settings),
                              lambda: salt.client.get_local_client(mopts=__opts__),
                              fire=lambda tag, data: bus.fire_event(data, tag))
    return settings, service


def actions():
    """
    List proposed actions waiting for approval.

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.actions
    """
    _, service = _approvals()
    return report(__context__, service.pending)


def approve(action_id):
    """
    Approve a proposed action and run it, exactly as proposed, once. The
    approver is the identity Salt authenticated (``salt-run -a serverflow ...``
    or the local account); it must hold an approving role.

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.approve 3f0c...
    """
    settings, service = _approvals()

    def run():
        return service.approve(str(action_id), _principal(settings, service.db))

    return report(__context__, run)


def reject(action_id, reason=""):
    """
    Reject a proposed action.

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.reject 3f0c... reason="not during business hours"
    """
    settings, service = _approvals()

    def run():
        return service.reject(str(action_id), _principal(settings, service.db), str(reason))

    return report(__context__, run)


# -- security administration (identity, API keys, MFA, audit) --------------------------------------
# Thin wrappers over salt_ext.security.admin. The acting identity is the one Salt
# authenticated (``__user__``: an eauth e-mail, an API key ``sfk_<id>``, or the local
# account running salt-run); every change is audited in the same transaction.


def _security_call(fn, *args, **kwargs):
    from salt_ext.db import Database
    from salt_ext.security import identity
    from salt_ext.security.settings import with_secret_key

    settings = with_secret_key(_settings(), __opts__)
    db = Database.from_settings(settings)

    def run():
        actor = identity.principal_for_salt_user(db, settings, globals().get("__user__"),
                                                 master_user=__opts__.get("user"))
        return fn(settings, db, actor, *args, **kwargs)

    try:
        return report(__context__, run)
    finally:
        db.close()


def _admin():
    from salt_ext.security import admin

    return admin


def user_add(email, role="viewer", name=None, password=None, tags=None):
    """
    Add a ServerFlow user (roles: owner, admin, operator, viewer). Without
    ``password`` a random one is generated and shown once.

    tags
        limit the user to minions carrying one of these tags (comma separated)

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.user_add alice@example.com role=operator tags=web
    """
    return _security_call(_admin().user_add, str(email), str(role), name=name,
                          password=None if password is None else str(password), tags=tags)


def user_list(include_disabled=True):
    """
    List users (no secrets): role, tag scope, MFA, lockout, last sign-in.

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.user_list --out=json
    """
    return _security_call(_admin().user_list, include_disabled=bool(include_disabled))


def user_disable(email):
    """
    Disable a user: sign-in, their API keys and refresh tokens stop working,
    and their Salt tokens are removed.

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.user_disable alice@example.com
    """
    result = _security_call(_admin().user_disable, str(email))
    if isinstance(result, dict) and "error" not in result:
        result["salt_tokens_removed"] = _drop_salt_tokens(result["email"])
    return result


def user_enable(email):
    """
    Re-enable a user and clear a lockout.

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.user_enable alice@example.com
    """
    return _security_call(_admin().user_enable, str(email))


def _drop_salt_tokens(email):
    """Remove the user's live Salt eauth tokens (salt-api sessions) so a disable is immediate."""
    import salt.auth

    removed = 0
    try:
        loadauth = salt.auth.LoadAuth(__opts__)
        for tok in loadauth.list_tokens():
            data = loadauth.get_tok(tok) or {}
            if data.get("eauth") == "serverflow" and str(data.get("name", "")).lower() == email.lower():
                loadauth.rm_token(tok)
                removed += 1
    except Exception:  # the token store is best effort; the account itself is disabled already
        pass
    return removed


def apikey_create(email, role=None, name=None, tags=None, expires_days=None):
    """
    Create an API key for a user, with a role no higher than theirs and an
    optional tag scope. The key is shown once; sign in with eauth
    ``serverflow``, username ``sfk_<key_id>`` and the key as password.

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.apikey_create ci@example.com role=viewer name=ci expires_days=90
    """
    return _security_call(_admin().apikey_create, str(email), role=role, name=name, tags=tags,
                          expires_days=None if expires_days is None else float(expires_days))


def apikey_revoke(key_id):
    """
    Revoke an API key (by ``sfk_<key_id>``, the key id, or the whole key).

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.apikey_revoke sfk_0a1b2c3d4e5f
    """
    return _security_call(_admin().apikey_revoke, str(key_id))


def apikey_list(email=None, include_revoked=False):
    """
    List API keys (never their secrets), with last use.

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.apikey_list
    """
    return _security_call(_admin().apikey_list, email, include_revoked=bool(include_revoked))


def mfa_enroll(email, code=None, disable=False):
    """
    Set up TOTP for a user: without ``code`` returns a new secret, its otpauth
    URI and one-time recovery codes (shown once); with ``code`` (the current
    6-digit code) activates it; ``disable=True`` switches MFA off.

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.mfa_enroll alice@example.com
        salt-run serverflow.mfa_enroll alice@example.com code=123456
    """
    return _security_call(_admin().mfa_enroll, str(email), None if code is None else str(code),
                          disable=bool(disable))


def audit(user=None, since=None, action=None, limit=100):
    """
    Search the audit trail, newest first.

    user
        e-mail, API key (sfk_...) or user id
    since
        ISO time or an age: 15m, 2h, 7d
    action
        exact (auth.login) or a glob (auth.*)

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.audit user=alice@example.com since=1d action='auth.*'
    """
    return _security_call(_admin().audit_search, user=user, since=since, action=action, limit=int(limit))


def audit_verify():
    """
    Recompute this tenant's audit hash chain; names the first row that was
    changed, removed or inserted out of band. Exits non-zero when broken.

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.audit_verify
    """
    result = _security_call(_admin().audit_verify)
    if isinstance(result, dict) and result.get("ok") is False:
        __context__["retcode"] = result["retcode"] = 1
    return result


def audit_export(path=None, user=None, since=None, action=None):
    """
    Export the audit trail as JSON lines (oldest first, with the hash chain),
    to ``path`` (mode 0600) or in the return value.

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.audit_export path=/var/backups/audit.jsonl since=30d
    """
    return _security_call(_admin().audit_export, path, user=user, since=since, action=action)
