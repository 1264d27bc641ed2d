"""How a proposed write is previewed, and how any call is published (one place: the registry)."""

from __future__ import annotations

import pytest

from salt_ext.approvals.preview import preview_step, would_change
from salt_ext.registry import RegistryError, load_registry, parse_registry, salt_call


def test_state_functions_run_through_state_single():
    call = salt_call("file.managed", {"name": "/etc/motd", "contents": "hi"})
    assert (call.fun, call.arg, call.kwarg) == ("state.single", ["file.managed"], {"name": "/etc/motd",
                                                                                  "contents": "hi"})


def test_dry_run_uses_the_functions_own_switch():
    assert salt_call("state.apply", {"mods": "nginx"}, dry_run=True).kwarg == {"mods": "nginx", "test": True}
    assert salt_call("file.managed", {"name": "/x"}, dry_run=True).kwarg["test"] is True
    # file.replace's dry run is its dry_run argument, not test=
    call = salt_call("file.replace", {"path": "/x", "pattern": "a", "repl": "b"}, dry_run=True)
    assert call.kwarg["dry_run"] is True and "test" not in call.kwarg


def test_no_dry_run_is_invented():
    with pytest.raises(ValueError):
        salt_call("service.restart", {"name": "nginx"}, dry_run=True)
    with pytest.raises(ValueError):
        salt_call("no.such_function", {}, dry_run=True)


def test_varargs_stay_positional():
    call = salt_call("pkg.version", {"names": ["nginx", "curl"]})
    assert call.arg == ["nginx", "curl"] and call.kwarg == {}


def test_every_write_has_a_dry_run_or_a_current_state_read():
    registry = load_registry()
    without = sorted(f.name for f in registry
                     if f.safety == "write" and not f.supports_test and f.preview is None)
    # the only writes an approver sees without evidence from the minion: they say so in the preview
    assert without == ["cmd.run", "cmd.script", "firewall.delete_rule"]
    for f in registry:
        if f.preview is not None:
            assert registry.get(f.preview.function).safety == "read"


def test_preview_steps_by_kind():
    mode, step = preview_step("service.restart", ["web-1"], {"name": "nginx"})
    assert mode == "current_state" and (step.function, step.args) == ("service.status", {"name": "nginx"})
    mode, step = preview_step("pkg.remove", ["web-1"], {"pkgs": ["a", "b"]})
    assert (step.function, step.args) == ("pkg.version", {"names": ["a", "b"]})
    mode, step = preview_step("state.apply", ["web-1"], {"mods": "nginx"})
    assert mode == "dry_run" and step.function == "state.apply" and step.args == {"mods": "nginx"}
    assert preview_step("cmd.run", ["web-1"], {"cmd": "uptime"}) == ("none", None)


def test_would_change_lists_only_pending_changes():
    ret = {
        "file_|-motd_|-/etc/motd_|-managed": {"result": None, "comment": "The file /etc/motd is set to be changed",
                                               "changes": {"diff": "+hello"}, "__run_num__": 1},
        "pkg_|-curl_|-curl_|-installed": {"result": True, "comment": "already installed", "changes": {},
                                          "__run_num__": 0},
    }
    assert would_change(ret) == [{"state": "motd", "result": None, "comment": "The file /etc/motd is set to be changed",
                                  "changes": {"diff": "+hello"}}]
    assert would_change({"pid": 1}) is None


def test_registry_refuses_a_preview_that_is_not_a_read():
    doc = {"functions": {
        "service.restart": {"description": "x", "safety": "write", "args": {"name": {"type": "str"}},
                            "preview": {"function": "service.stop", "args": {"name": "name"}}},
        "service.stop": {"description": "x", "safety": "write", "args": {"name": {"type": "str"}}},
    }}
    with pytest.raises(RegistryError):
        parse_registry(doc)
