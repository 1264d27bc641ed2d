"""ServerFlow agent functions on the minion: ``salt <minion> serverflow.<function>``.

.. code-block:: bash

    salt demo-web-01 serverflow.facts
"""

try:
    from salt_ext import __version__ as _VERSION
    from salt_ext.inventory.grains import server_from_grains

    HAS_CORE = True
except ImportError as _exc:  # pragma: no cover - depends on the minion's Python
    HAS_CORE = False
    _IMPORT_ERROR = str(_exc)

__virtualname__ = "serverflow"


def __virtual__():
    if not HAS_CORE:
        return False, f"serverflow module: the salt_ext package is not importable ({_IMPORT_ERROR})"
    return __virtualname__


def version():
    """
    The ServerFlow agent version on this minion.

    CLI Example:

    .. code-block:: bash

        salt '*' serverflow.version
    """
    return _VERSION


def facts():
    """
    The inventory record this minion's grains and pillar produce (what the
    master's inventory will store for it).

    CLI Example:

    .. code-block:: bash

        salt '*' serverflow.facts
    """
    sf = __opts__.get("serverflow") or {}
    inv = sf.get("inventory") or {}
    record = server_from_grains(
        __opts__["id"], __grains__, __pillar__,
        tags_key=inv.get("tags_key", "serverflow:tags"),
        services_key=inv.get("services_key", "serverflow:services"),
    )
    return record.as_dict()
