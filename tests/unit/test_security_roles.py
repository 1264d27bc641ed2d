"""Roles and authorize(): who may ask, propose, approve and administer, and on which minions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings, strategies as st

from salt_ext.inventory.model import Server
from salt_ext.pipeline import PlanResult, PlanStep
from salt_ext.security.identity import Principal
from salt_ext.security.roles import (PERMISSIONS, ROLES, SALT_ACL, authorize, authorize_plan, authorizer,
                                     canonical_role, may_grant, minion_tags, permissions_for,
                                     required_permission, scoped_inventory)



@dataclass(frozen=True)
class Actor:  # the shape the approval flow passes (name, role, tags)
    name: str
    role: str
    tags: tuple[str, ...] = ()


INVENTORY = {"web-1": ["prod", "web"], "web-2": ["web"], "db-1": ["prod", "db"], "cache-1": []}


def who(role: str, tags=()) -> Principal:
    return Principal(tenant_id="t", email=f"{role}@example.com", role=role, tags=tuple(tags))


@pytest.mark.parametrize("role, allowed", [
    ("owner", {"ask", "propose", "approve", "administer"}),
    ("admin", {"ask", "propose", "approve", "administer"}),
    ("operator", {"ask", "propose"}),
    ("viewer", {"ask"}),
    ("member", {"ask"}),
    ("root", set()), ("", set()), (None, set()),
])
def test_role_permission_matrix(role, allowed) -> None:
    assert permissions_for(role) == allowed
    for permission in PERMISSIONS:
        error = authorize(who(role or ""), permission, ["web-1"], INVENTORY)
        if permission in allowed:
            assert error is None
        else:
            assert error is not None and error.code == "AUTH003", (role, permission)


def test_targets_outside_inventory_or_scope_are_exec005() -> None:
    error = authorize(who("admin"), "propose", ["web-1", "ghost-9"], INVENTORY)
    assert error.code == "EXEC005" and error.details["unknown"] == ["ghost-9"]
    web_op = who("operator", ["web"])
    assert authorize(web_op, "propose", ["web-1", "web-2"], INVENTORY) is None
    error = authorize(web_op, "propose", ["web-1", "db-1"], INVENTORY)
    assert error.code == "EXEC005" and error.details["outside"] == ["db-1"]
    # a scoped user with no inventory to check against gets nothing
    assert authorize(web_op, "ask", ["web-1"], None).code == "EXEC005"
    # administer takes no targets; missing permission wins over targets
    assert authorize(who("admin"), "administer") is None
    assert authorize(who("viewer"), "approve", ["ghost"], INVENTORY).code == "AUTH003"
    assert authorize(who("admin"), "fly").code == "AUTH003"


def test_inventory_shapes_and_scoped_listing() -> None:
    servers = [Server(minion_id="web-1", tags=["web"]), Server(minion_id="db-1", tags=["db"])]
    assert minion_tags(servers) == {"web-1": {"web"}, "db-1": {"db"}}
    assert minion_tags([{"minion_id": "a", "tags": ["x"]}]) == {"a": {"x"}}
    assert minion_tags({"a": {"tags": ["x"]}, "b": Server(minion_id="b", tags=["y"])}) == {"a": {"x"}, "b": {"y"}}
    assert scoped_inventory(who("operator", ["db"]), INVENTORY) == ["db-1"]
    assert scoped_inventory(who("operator"), INVENTORY) == sorted(INVENTORY)


def test_works_with_the_approval_flows_actor_and_authorizer() -> None:
    check = authorizer(lambda: INVENTORY)
    assert check(Actor(name="a@x", role="admin"), "approve", ["db-1"]) is None
    assert check(Actor(name="o@x", role="operator"), "approve", ["web-1"]).code == "AUTH003"
    assert check(Actor(name="w@x", role="admin", tags=("web",)), "approve", ["db-1"]).code == "EXEC005"


def test_plans_need_ask_or_propose_and_every_step_is_checked() -> None:
    read = PlanStep(function="disk.usage", targets=["web-1"], safety="read", requires_approval=False)
    write = PlanStep(function="service.restart", targets=["db-1"], args={"name": "postgresql"},
                     safety="write", requires_approval=True)
    assert required_permission(PlanResult(question="q", steps=[read])) == "ask"
    plan = PlanResult(question="q", steps=[read, write], requires_approval=True)
    assert required_permission(plan) == "propose"
    assert authorize_plan(who("viewer"), PlanResult(question="q", steps=[read]), INVENTORY) is None
    assert authorize_plan(who("viewer"), plan, INVENTORY).code == "AUTH003"
    assert authorize_plan(who("operator"), plan, INVENTORY) is None
    assert authorize_plan(who("operator", ["web"]), plan, INVENTORY).code == "EXEC005"


def test_role_grants_never_exceed_the_actor() -> None:
    assert may_grant("owner", "owner") and may_grant("admin", "admin") and may_grant("admin", "viewer")
    assert not may_grant("admin", "owner") and not may_grant("operator", "viewer")
    assert not may_grant("viewer", "viewer") and not may_grant("admin", "wizard")
    assert canonical_role("Member") == "viewer" and canonical_role("superuser") is None


def test_salt_acl_gives_raw_salt_only_to_owners() -> None:
    assert set(SALT_ACL) == {f"{r}%" for r in ROLES}
    for role in ("admin", "operator", "viewer"):
        assert ".*" not in SALT_ACL[f"{role}%"] and "@runner" not in SALT_ACL[f"{role}%"]
    assert ".*" in SALT_ACL["owner%"]


# -- properties -----------------------------------------------------------------------------------
roles_without_approve = st.one_of(st.sampled_from(["operator", "viewer", "member", "Operator", "VIEWER"]),
                                  st.text(max_size=12).filter(lambda r: canonical_role(r) not in ("owner", "admin")))
target_lists = st.lists(st.sampled_from(sorted(INVENTORY) + ["ghost-1", "db-2"]), max_size=5)
tag_scopes = st.lists(st.sampled_from(["prod", "web", "db", "edge"]), max_size=3)


@settings(max_examples=300, deadline=None, database=None)
@given(role=roles_without_approve, targets=target_lists, scope=tag_scopes,
       permission=st.sampled_from(["approve", "administer"]))
def test_property_only_owners_and_admins_ever_approve_or_administer(role, targets, scope, permission) -> None:
    error = authorize(who(role, scope), permission, targets, INVENTORY)
    assert error is not None and error.code == "AUTH003"


@settings(max_examples=300, deadline=None, database=None)
@given(role=st.sampled_from(["owner", "admin", "operator", "viewer"]), targets=target_lists, scope=tag_scopes,
       permission=st.sampled_from(["ask", "propose", "approve"]))
def test_property_a_granted_target_is_always_known_and_in_scope(role, targets, scope, permission) -> None:
    error = authorize(who(role, scope), permission, targets, INVENTORY)
    if error is None:
        for target in targets:
            assert target in INVENTORY
            assert not scope or set(scope) & set(INVENTORY[target])
    else:
        assert error.code in {"AUTH003", "EXEC005"}
