"""ServerFlow engine: the assistant's home inside the Salt master.

Enable it in the master config::

    engines:
      - serverflow: {}
    presence_events: True
    minion_data_cache_events: True
    serverflow:
      tenant_id: 00000000-0000-4000-8000-000000000001
      database:
        url: postgresql://serverflow_app:...@127.0.0.1:5432/serverflow
        admin_url: postgresql://serverflow:...@127.0.0.1:5432/serverflow
      redis:
        url: redis://127.0.0.1:6379/0

It keeps the ``servers`` inventory live from the event bus (minion starts,
returns, presence and its own ping sweeps) and fires
``serverflow/server/<id>/connected|disconnected`` on transitions.
"""

try:
    from salt_ext.engine.runtime import start_engine
    from salt_ext.security.masking import install_log_masking

    HAS_CORE = True
except ImportError as _exc:  # pragma: no cover - depends on the master's Python
    HAS_CORE = False
    _IMPORT_ERROR = str(_exc)

__virtualname__ = "serverflow"


def __virtual__():
    if not HAS_CORE:
        return False, f"serverflow engine: the salt_ext package is not importable ({_IMPORT_ERROR})"
    install_log_masking()  # secrets never reach a log line written in this process
    return __virtualname__


def start(**kwargs):
    """Run the engine until the master stops it."""
    start_engine(__opts__)
