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

    HAS_CORE = True
except ImportError as _exc:  # pragma: no cover - depends on the master's Python
    HAS_CORE = False
    _IMPORT_ERROR = str(_exc)

import sys

__virtualname__ = "serverflow"


def __virtual__():
    if not HAS_CORE:
        return False, f"serverflow runner: the salt_ext package is not importable ({_IMPORT_ERROR})"
    return __virtualname__


def _settings():
    return load_settings(__opts__)


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



def ask(question, conversation=None, timeout=None):
    """
    Ask ServerFlow a question; progress streams to the terminal, the answer is
    returned (``--out=json`` for the structured response).

    conversation
        continue an earlier conversation (its id); a new one is started otherwise

    CLI Example:

    .. code-block:: bash

        salt-run serverflow.ask "why is demo-db-01 slow?"
        salt-run serverflow.ask "and on the web servers?" conversation=<id>
    """
    settings = _settings()
    user = __opts__.get("user")
    quiet = __opts__.get("output") in ("json", "yaml", "raw", "quiet")

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
    return done["text"] + f"\n\n(conversation {done['conversation_id']})"


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
