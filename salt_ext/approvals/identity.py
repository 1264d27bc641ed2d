"""Who is acting, from the identity Salt authenticated (``__user__`` in a runner).

A user authenticated by eauth is looked up in ``users`` (by email, in this tenant)
for their role; the local account that runs ``salt-run`` on the master itself is
mapped through ``serverflow:cli_identities`` (default: root acts as the owner,
since root on the master controls every minion anyway). Anyone else has no role.
"""

from __future__ import annotations

from typing import Any

from salt_ext.approvals.model import Actor
from salt_ext.errors import ServerFlowError


def actor_for(settings: dict[str, Any], salt_user: str | None, db: Any) -> Actor:
    """The Actor behind a Salt-authenticated user name; AUTH003 when it has no ServerFlow role."""
    name = (salt_user or "").strip()
    # Salt prefixes sudo users ("sudo_alice") and reports eauth names as typed.
    local = settings["cli_identities"].get(name)
    if local:
        return Actor(name=str(local.get("name", name)), role=str(local["role"]),
                     tags=tuple(local.get("tags") or ()))
    if name:
        with db.tenant(settings["tenant_id"]) as conn:
            row = conn.execute("SELECT email, role, settings FROM users WHERE lower(email) = lower(%s)",
                               (name,)).fetchone()
        if row is not None and not (row["settings"] or {}).get("disabled"):
            tags = tuple((row["settings"] or {}).get("tags") or ())
            return Actor(name=row["email"], role=row["role"], tags=tags)
    raise ServerFlowError("AUTH003", f"{name or 'an unknown user'} has no ServerFlow role; "
                          "an admin can add one with `salt-run serverflow.user_add`")
