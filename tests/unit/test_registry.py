"""The module registry: loading, lookups, argument validation, and agreement
with the real Salt 3008 function signatures."""

from __future__ import annotations

import importlib
import inspect
import warnings
from pathlib import Path

import pytest
import yaml

from salt_ext.registry import (
    INTENTS,
    Registry,
    RegistryError,
    load_registry,
    parse_registry,
)


@pytest.fixture(scope="module")
def reg() -> Registry:
    return load_registry()


def test_default_registry_is_cached(reg: Registry) -> None:
    assert load_registry() is reg
    assert len(reg) > 50


def test_load_from_explicit_path(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(
        yaml.safe_dump(
            {
                "topics": {"cpu": {"intent": "QUERY_METRICS", "keywords": ["cpu"]}},
                "functions": {"status.loadavg": {"description": "load", "safety": "read", "topics": ["cpu"]}},
            }
        )
    )
    r = load_registry(p)
    assert r.names() == ["status.loadavg"]
    assert r.safety("status.loadavg") == "read"


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"functions": {"ps.top": {"description": "x", "safety": "maybe"}}}, "safety"),
        ({"functions": {"ps.top": {"description": "x", "safety": "read", "intents": ["CHAT"]}}}, "intent"),
        ({"functions": {"pstop": {"description": "x", "safety": "read"}}}, "module.function"),
        ({"functions": {"ps.top": {"description": "x", "safety": "read", "topics": ["nope"]}}}, "topic"),
        ({"functions": {"ps.top": {"description": "x", "safety": "read", "args": {"n": {"type": "number"}}}}}, "type"),
        ({"functions": {"ps.top": {"safety": "read"}}}, "description"),
    ],
)
def test_malformed_registry_is_rejected(doc: dict, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        parse_registry(doc)


def test_safety_classes_from_spec(reg: Registry) -> None:
    # spec §6.3
    for name in ("status.loadavg", "grains.items", "disk.usage", "network.interfaces", "ps.top", "service.status", "pkg.list_pkgs"):
        assert reg.safety(name) == "read", name
    for name in ("service.restart", "service.stop", "pkg.install", "pkg.remove", "file.managed", "cmd.run", "user.present", "user.absent"):
        assert reg.safety(name) == "write", name
    for name in ("cmd.run_all", "salt.execute", "state.highstate"):
        assert reg.safety(name) == "blocked", name


def test_unknown_functions_are_blocked(reg: Registry) -> None:
    assert reg.get("mysql.slow_queries") is None
    assert reg.safety("mysql.slow_queries") == "blocked"
    assert reg.safety("") == "blocked"
    assert reg.safety("status") == "blocked"


def test_spec_module_reference_is_covered(reg: Registry) -> None:
    # spec §10.1 and §3.2.3
    for name in (
        "grains.items status.cpuinfo status.meminfo status.loadavg status.uptime disk.usage disk.inodeusage "
        "file.stats file.find network.interfaces network.netstat network.ping network.traceroute ps.top ps.pgrep "
        "ps.kill_pid service.get_all service.status service.start service.stop service.restart pkg.list_pkgs "
        "pkg.list_upgrades pkg.install pkg.remove pkg.upgrade user.list_users user.info user.present user.absent "
        "file.managed file.replace file.remove cmd.run cmd.script status.all_status network.routes shadow.info "
        "iptables.append firewalld.add_port cron.present state.apply state.sls system.reboot"
    ).split():
        assert name in reg, name


def test_write_functions_that_honour_test_mode(reg: Registry) -> None:
    assert reg.get("state.apply").supports_test
    assert reg.get("state.sls").supports_test
    # pkg.install ignores test=True in salt 3008 (only hold/unhold look at it)
    assert not reg.get("pkg.install").supports_test
    assert not reg.get("service.restart").supports_test


def test_shell_bearing_arguments_are_marked(reg: Registry) -> None:
    assert reg.get("cmd.run").shell_args == ("cmd",)
    assert set(reg.get("cmd.script").shell_args) == {"source", "args"}
    assert "rule" in reg.get("iptables.append").shell_args
    assert reg.get("ps.top").shell_args == ()


def test_for_intent_excludes_blocked(reg: Registry) -> None:
    deploy = [f.name for f in reg.for_intent("DEPLOY")]
    assert "state.apply" in deploy
    assert "state.highstate" not in deploy
    for intent in INTENTS:
        assert all(f.safety != "blocked" for f in reg.for_intent(intent))


def test_iteration_and_names_agree(reg: Registry) -> None:
    assert [f.name for f in reg] == reg.names()
    assert all("." in n for n in reg.names())


def test_validate_args(reg: Registry) -> None:
    assert reg.validate_args("ps.top", {"num_processes": 10}) == []
    assert reg.validate_args("ps.top", {}) == []
    assert reg.validate_args("ps.top", {"num_processes": "ten"}) == ["ps.top: argument 'num_processes' must be int, got str"]
    assert reg.validate_args("ps.top", {"n": 10}) == ["ps.top has no argument 'n'"]
    assert reg.validate_args("service.restart", {}) == ["service.restart requires argument 'name'"]
    assert reg.validate_args("ps.kill_pid", {"pid": True}) != []  # a bool is not a pid
    assert reg.validate_args("pkg.install", {}) == ["pkg.install requires one of name, pkgs"]
    assert reg.validate_args("pkg.install", {"pkgs": ["htop", "jq"]}) == []
    assert reg.validate_args("state.apply", {"test": True}) == ["state.apply requires argument 'mods'"]
    assert reg.validate_args("network.ping", {"host": "10.0.0.1", "timeout": 2}) == []
    assert reg.validate_args("nope.nope", {}) == ["nope.nope is not in the module registry"]


def test_split_args_for_localclient(reg: Registry) -> None:
    assert reg.get("pkg.version").split_args({"names": ["nginx", "htop"]}) == (["nginx", "htop"], {})
    assert reg.get("grains.item").split_args({"keys": ["os"]}) == (["os"], {})
    assert reg.get("ps.top").split_args({"num_processes": 10}) == ([], {"num_processes": 10})


def test_platforms(reg: Registry) -> None:
    assert reg.get("firewalld.add_port").runs_on("RedHat")
    assert not reg.get("firewalld.add_port").runs_on("Debian")
    assert reg.get("iptables.insert").runs_on("Debian")
    assert not reg.get("iptables.insert").runs_on("Windows")
    assert reg.get("firewall.add_rule").runs_on("Windows")
    assert reg.get("disk.usage").runs_on("Windows")


def test_as_dict_is_json_safe(reg: Registry) -> None:
    import json

    json.dumps(reg.as_dict())


# --- agreement with the real Salt signatures ------------------------------------------------


def _import_quietly(dotted: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return importlib.import_module(dotted)
        except Exception:  # noqa: BLE001 - a platform module that does not import here
            return None


def _real_function(module, fname: str):
    # Salt renames functions that clash with builtins (apply_ -> apply, list_ -> list).
    aliases = {v: k for k, v in getattr(module, "__func_alias__", {}).items()}
    return getattr(module, aliases.get(fname, fname), None)


def _signature_cases():
    cases = []
    for spec in load_registry():
        fname = spec.name.split(".", 1)[1]
        for impl in spec.implementations:
            cases.append(pytest.param(spec.name, impl, fname, id=f"{spec.name}@{impl.rsplit('.', 1)[1]}"))
    return cases


@pytest.mark.parametrize("name, impl, fname", _signature_cases())
def test_registry_args_match_real_salt_signature(reg: Registry, name: str, impl: str, fname: str) -> None:
    module = _import_quietly(impl)
    if module is None:
        pytest.skip(f"{impl} does not import on this platform")
    func = _real_function(module, fname)
    assert func is not None, f"{impl} has no function {fname}"
    params = inspect.signature(func).parameters
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    has_var_pos = any(p.kind is p.VAR_POSITIONAL for p in params.values())
    for arg in reg.get(name).args.values():
        if arg.varargs:
            assert has_var_pos, f"{name}: {arg.name} is varargs but {impl}.{fname} takes no *args"
            continue
        if arg.name in params:
            real = params[arg.name]
            if arg.has_default:
                assert real.default is not inspect.Parameter.empty, f"{name}: {arg.name} has no default in {impl}"
                assert real.default == arg.default, f"{name}: {arg.name} default {arg.default!r} != {real.default!r} in {impl}"
            if real.default is inspect.Parameter.empty:
                assert arg.required, f"{name}: {arg.name} is required by {impl} but not in the registry"
        else:
            assert has_var_kw, f"{name}: {arg.name} is not a parameter of {impl}.{fname}"
            # Through **kwargs: fine when declared so, or when a sibling
            # implementation (another platform) names it properly.
            named_elsewhere = any(
                arg.name in inspect.signature(_real_function(m, fname)).parameters
                for m in map(_import_quietly, reg.get(name).implementations)
                if m is not None and _real_function(m, fname) is not None
            )
            assert arg.passthrough or named_elsewhere, f"{name}: {arg.name} reaches {impl} only through **kwargs"


@pytest.mark.parametrize("name, impl, fname", _signature_cases())
def test_required_salt_params_are_in_registry(reg: Registry, name: str, impl: str, fname: str) -> None:
    """Every positional parameter without default must be describable by the registry."""
    module = _import_quietly(impl)
    if module is None:
        pytest.skip(f"{impl} does not import on this platform")
    func = _real_function(module, fname)
    spec = reg.get(name)
    for p in inspect.signature(func).parameters.values():
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.default is inspect.Parameter.empty:
            assert p.name in spec.args, f"{name}: {impl} requires {p.name!r}, the registry does not know it"


def test_ps_module_arguments_exist(reg: Registry) -> None:
    """The brief's example, spelled out: every ps.* argument is a real parameter."""
    import salt.modules.ps as ps

    for spec in reg:
        if spec.module != "ps":
            continue
        params = inspect.signature(getattr(ps, spec.name.split(".")[1])).parameters
        for arg in spec.args:
            assert arg in params, f"{spec.name}: {arg}"
    top = inspect.signature(ps.top).parameters
    assert reg.get("ps.top").args["num_processes"].default == top["num_processes"].default == 5
    assert reg.get("ps.top").args["interval"].default == top["interval"].default
