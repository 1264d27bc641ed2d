"""The development/test stack: private PostgreSQL, Redis, salt-master, demo minions and salt-api,
all on loopback with state under one directory (``.serverflow/`` for ``make up``).

The same code starts the stack for ``make up`` and for the functional tests, so
what the tests prove is what a developer runs.
"""
