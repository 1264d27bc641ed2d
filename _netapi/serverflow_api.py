"""
ServerFlow in salt-api: Salt's rest_cherrypy endpoints, the ``/v1`` REST API and the web app.

One CherryPy server serves

- ``/``   Salt's own rest_cherrypy application, unchanged (SaltGUI, scripts), except that
          ``/events`` is refused to ServerFlow users below admin (it shows the whole bus);
- ``/v1`` ServerFlow's REST API (spec §5; OpenAPI at ``/v1/openapi.json``);
- ``/ui/`` the web app.

It takes the place of ``rest_cherrypy`` (same options), so configure one or the other:

.. code-block:: yaml

    serverflow_api:
      host: 127.0.0.1
      port: 8000
      disable_ssl: true        # or ssl_crt / ssl_key
    netapi_enable_clients: [local, local_async, runner, runner_async, wheel]

salt-api must run as the master's user: the API signs chat requests with the
engine's bus key (``<cachedir>/serverflow/bus.key``, mode 0600).
"""

import logging

log = logging.getLogger(__name__)

__virtualname__ = "serverflow_api"

try:
    import cherrypy  # noqa: F401

    from salt_ext.api import cherry

    HAS_DEPS = True
except ImportError as _exc:  # pragma: no cover - depends on the API's Python
    HAS_DEPS = False
    _IMPORT_ERROR = str(_exc)


def __virtual__():
    conf = __opts__.get(__virtualname__)
    if not conf:
        return False, "serverflow_api: no `serverflow_api:` section in the master config"
    if not HAS_DEPS:
        return False, f"serverflow_api: cannot import cherrypy or salt_ext ({_IMPORT_ERROR})"
    if "port" not in conf:
        return False, "serverflow_api: set `serverflow_api: {port: 8000}`"
    if __opts__.get("rest_cherrypy", {}).get("port") == conf["port"]:
        return False, "serverflow_api: rest_cherrypy uses the same port; drop `rest_cherrypy:` (this serves it)"
    return __virtualname__


def start():
    """Serve until salt-api stops."""
    cherry.serve(__opts__)
