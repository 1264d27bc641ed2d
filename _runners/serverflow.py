"""ServerFlow administration from the master: ``salt-run serverflow.<function>``.

.. code-block:: bash

    salt-run serverflow.servers status=online tag=web --out=json
    salt-run serverflow.server demo-web-01
    salt-run serverflow.health
    salt-run serverflow.migrate
"""

try:
    from salt_ext import health as _health
    from salt_ext.config import load_settings
    from salt_ext.db import migrate as _migrate
    from salt_ext.engine.salt_io import accepted_minions
    from salt_ext.inventory import queries
    from salt_ext.loader import report

    HAS_CORE = True
except ImportError as _exc:  # pragma: no cover - depends on the master's Python
    HAS_CORE = False
    _IMPORT_ERROR = str(_exc)

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

