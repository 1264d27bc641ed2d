"""Roles, what each may do, and the check every path runs before acting.

Roles (spec §4.1 ``users.role``), from most to least powerful:

========  =====================================================================
owner     everything, including other owners and Salt itself (break glass)
admin     ask, propose, approve, administer (users, API keys, MFA, audit)
operator  ask (read intents, run at once) and propose write actions
viewer    ask only (read intents); ``member`` (the spec's default) means viewer
========  =====================================================================

Permissions: ``ask`` (read intents), ``propose`` (a plan with write steps),
``approve`` (approve or reject someone's proposal), ``administer``.

A user may be scoped to minion tags (``users.settings.tags``, an API key's
``scope_tags``): a scoped identity may only touch minions carrying at least
one of its tags (an operator of the web tier cannot touch db servers).
Targets outside the tenant's inventory or outside the scope are refused with
EXEC005; a missing permission is AUTH003. Prompt text never reaches this
module: it decides from the authenticated identity and the plan alone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, Protocol

from salt_ext.errors import ErrorInfo

ROLES = ("owner", "admin", "operator", "viewer")
ROLE_ALIASES = {"member": "viewer"}
PERMISSIONS = ("ask", "propose", "approve", "administer")

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "owner": frozenset(PERMISSIONS),
    "admin": frozenset(PERMISSIONS),
    "operator": frozenset({"ask", "propose"}),
    "viewer": frozenset({"ask"}),
}
# Higher rank = more power; a role may only grant roles of its rank or below.
ROLE_RANK = {"viewer": 1, "operator": 2, "admin": 3, "owner": 4}

# What each role may call through Salt itself (salt-api, `salt -a serverflow`, `salt-run -a`).
# Salt matches these against the role that the eauth module's groups() returns ("<role>%").
# Only owners may publish arbitrary execution functions: everyone else acts through
# ServerFlow's runners, so the policy, approvals and audit trail apply to them.
_READ_RUNNERS = r"serverflow\.(ask|plan|servers|server|conversations|conversation|health|actions|action)$"
SALT_ACL: dict[str, list[Any]] = {
    "owner%": [".*", "@runner", "@wheel", "@jobs"],
    "admin%": [{"@runner": [r"serverflow\..*", r"jobs\.(list_jobs|lookup_jid|print_job|active)$"]}, "@jobs"],
    "operator%": [{"@runner": [_READ_RUNNERS]}],
    "viewer%": [{"@runner": [_READ_RUNNERS]}],
}


def salt_external_auth() -> dict[str, list[Any]]:
    """The ``external_auth: serverflow:`` block of the master config (a fresh copy)."""
    import copy

    return copy.deepcopy(SALT_ACL)


def canonical_role(role: str | None) -> str | None:
    """``member`` -> ``viewer``; unknown roles -> None (no permission at all)."""
    value = (role or "").strip().lower()
    value = ROLE_ALIASES.get(value, value)
    return value if value in ROLE_PERMISSIONS else None


def permissions_for(role: str | None) -> frozenset[str]:
    return ROLE_PERMISSIONS.get(canonical_role(role) or "", frozenset())


def may_grant(actor_role: str | None, role: str | None) -> bool:
    """Whether ``actor_role`` may give (or take away) ``role``: never above its own rank."""
    actor, target = canonical_role(actor_role), canonical_role(role)
    if actor is None or target is None or "administer" not in ROLE_PERMISSIONS[actor]:
        return False
    return ROLE_RANK[target] <= ROLE_RANK[actor]


class Identity(Protocol):
    """Anything with a role (Principal, the approval flow's Actor ...)."""

    role: str


def _tags_of(user: Any) -> tuple[str, ...]:
    for attr in ("scope_tags", "tags"):
        value = getattr(user, attr, None)
        if value is None and isinstance(user, Mapping):
            value = user.get(attr)
        if value:
            return tuple(str(t) for t in value)
    return ()


def _role_of(user: Any) -> str | None:
    value = getattr(user, "role", None)
    if value is None and isinstance(user, Mapping):
        value = user.get("role")
    return value


def _name_of(user: Any) -> str:
    for attr in ("email", "name"):
        value = getattr(user, attr, None)
        if value is None and isinstance(user, Mapping):
            value = user.get(attr)
        if value:
            return str(value)
    return "this user"


def minion_tags(inventory: Any) -> dict[str, set[str]]:
    """``{minion_id: tags}`` from a mapping (id -> tags | Server | dict) or a list of servers."""
    out: dict[str, set[str]] = {}
    if inventory is None:
        return out
    items: Iterable[tuple[str, Any]]
    if isinstance(inventory, Mapping):
        items = inventory.items()
    else:
        items = ((getattr(s, "minion_id", None) or (s.get("minion_id") if isinstance(s, Mapping) else str(s)), s)
                 for s in inventory)
    for minion, value in items:
        if value is None or isinstance(value, str):
            tags: Any = [value] if value else []
        elif isinstance(value, Mapping):
            tags = value.get("tags") or []
        elif hasattr(value, "tags"):
            tags = value.tags or []
        else:
            tags = value
        out[str(minion)] = {str(t) for t in tags}
    return out


def in_scope(scope: Collection[str], tags: Collection[str]) -> bool:
    """A minion is in an (empty = unrestricted) tag scope when it has one of the scope's tags."""
    return not scope or bool(set(scope) & set(tags))


def authorize(user: Any, permission: str, targets: Iterable[str] | None = None,
              inventory: Any = None) -> ErrorInfo | None:
    """None when ``user`` may use ``permission`` on every target, else why not.

    AUTH003: the role lacks the permission (or is unknown). EXEC005: a target is
    not in this tenant's ``inventory`` (checked when an inventory is given) or
    is outside the user's tag scope. ``administer`` takes no targets.
    """
    if permission not in PERMISSIONS:
        return ErrorInfo("AUTH003", f"unknown permission {permission!r}")
    role = canonical_role(_role_of(user))
    name = _name_of(user)
    if role is None:
        return ErrorInfo("AUTH003", f"{name} has no ServerFlow role, so may not {permission}",
                         {"permission": permission})
    if permission not in ROLE_PERMISSIONS[role]:
        return ErrorInfo("AUTH003", f"{name} is {role} and may not {permission}; "
                         f"roles that may: {', '.join(r for r in ROLES if permission in ROLE_PERMISSIONS[r])}",
                         {"permission": permission, "role": role})
    wanted = sorted({str(t) for t in (targets or [])})
    if not wanted:
        return None
    scope = _tags_of(user)
    known = minion_tags(inventory) if inventory is not None else None
    if known is not None:
        unknown = [t for t in wanted if t not in known]
        if unknown:
            return ErrorInfo("EXEC005", f"not in this tenant's inventory: {', '.join(unknown)}",
                             {"unknown": unknown})
    if scope:
        if known is None:
            return ErrorInfo("EXEC005", f"{name} is limited to minions tagged {', '.join(scope)}; "
                             "their tags are unknown here, so no target can be allowed",
                             {"scope": list(scope)})
        outside = [t for t in wanted if not in_scope(scope, known[t])]
        if outside:
            return ErrorInfo("EXEC005", f"{name} may only act on minions tagged "
                             f"{' or '.join(scope)}; outside that scope: {', '.join(outside)}",
                             {"outside": outside, "scope": list(scope)})
    return None


def required_permission(plan: Any) -> str:
    """``propose`` when a plan has a write step, else ``ask``."""
    steps = getattr(plan, "steps", None) or []
    if getattr(plan, "requires_approval", False) or any(getattr(s, "safety", "read") != "read" for s in steps):
        return "propose"
    return "ask"


def authorize_plan(user: Any, plan: Any, inventory: Any) -> ErrorInfo | None:
    """The check for a policy-checked plan: its permission, and every step's targets."""
    permission = required_permission(plan)
    denied = authorize(user, permission, None, inventory)
    if denied:
        return denied
    for step in getattr(plan, "steps", None) or []:
        needed = "ask" if getattr(step, "safety", "read") == "read" else "propose"
        denied = authorize(user, needed, getattr(step, "targets", []), inventory)
        if denied:
            return denied
    return None


def scoped_inventory(user: Any, inventory: Any) -> list[str]:
    """The minion ids of ``inventory`` this user may see (for planning and target resolution)."""
    scope = _tags_of(user)
    return sorted(m for m, tags in minion_tags(inventory).items() if in_scope(scope, tags))


def authorizer(inventory_fn: Any):
    """An ``(actor, permission, targets) -> ErrorInfo | None`` callable bound to an inventory source.

    ``inventory_fn()`` returns the tenant's inventory (anything ``minion_tags`` accepts);
    this is the shape the approval service takes as ``authorize=``.
    """
    def check(actor: Any, permission: str, targets: list[str]) -> ErrorInfo | None:
        return authorize(actor, permission, targets, inventory_fn())

    return check
