"""The REST API (spec §5) and the web app's server side, running inside salt-api.

=============  ==================================================================
http           Request/Response values, JSON errors ``{"error": {"code", "message"}}``
               with the HTTP status of each spec code, security headers (CSP)
auth           who is calling: Bearer JWT access tokens or API keys; CSRF rule
events         the event hub: one master-bus listener, a ring buffer with ids
               (Last-Event-ID resume), per-user visibility, SSE formatting
handlers       the ``/v1`` endpoints (auth, servers, chat, actions, approvals,
               executions, audit) as plain functions of (context, request)
routes         the route table the dispatcher and the OpenAPI document share
openapi        the OpenAPI 3 document served at ``/v1/openapi.json``
cherry         the CherryPy glue (``_netapi/serverflow_api.py`` mounts it)
=============  ==================================================================

Everything but ``cherry`` is plain Python, unit-testable without daemons.
"""
