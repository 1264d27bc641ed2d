"""States for ServerFlow-managed minions.

.. code-block:: yaml

    web tags:
      serverflow.tagged:
        - tags: [web, prod]
        - services: [nginx]
"""

__virtualname__ = "serverflow"


def __virtual__():
    return __virtualname__


def tagged(name, tags=None, services=None):
    """
    Ensure the minion carries these ServerFlow tags and services (grains
    ``serverflow:tags`` / ``serverflow:services``), which the inventory and the
    assistant's targeting ("the web tier") read.
    """
    ret = {"name": name, "changes": {}, "result": True, "comment": ""}
    wanted = {"tags": list(tags or []), "services": list(services or [])}
    current = __salt__["grains.get"]("serverflow", {}) or {}
    merged = dict(current)
    missing = {}
    for key, values in wanted.items():
        have = list(current.get(key) or [])
        add = [v for v in values if v not in have]
        if add:
            missing[key] = add
            merged[key] = have + add
    if not missing:
        ret["comment"] = "ServerFlow tags and services already present"
        return ret
    ret["changes"] = {"added": missing}
    if __opts__.get("test"):
        ret["result"] = None
        ret["comment"] = "ServerFlow tags and services would be added"
        return ret
    __salt__["grains.setval"]("serverflow", merged)
    ret["comment"] = "ServerFlow tags and services added"
    return ret
