"""The template responder on real Salt return shapes (tests/unit/data/salt_returns)."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from salt_ext.execution.model import MinionReturn, StepResult
from salt_ext.responder import Response, check_evidence, fmt_num, respond, unsupported_numbers

DATA = Path(__file__).parent / "data" / "salt_returns"
_JIDS = itertools.count(1)


def fixture(name: str) -> Any:
    return json.loads((DATA / f"{name}.json").read_text())


def step(
    function: str,
    ret: Any,
    minion: str = "demo-db-01",
    *,
    args: dict | None = None,
    success: bool = True,
    retcode: int = 0,
) -> StepResult:
    return multi(function, {minion: ret}, args=args, success=success, retcode=retcode)


def multi(
    function: str,
    rets: dict[str, Any],
    *,
    args: dict | None = None,
    missing: list[str] | None = None,
    success: bool = True,
    retcode: int = 0,
) -> StepResult:
    jid = f"20261127173012{next(_JIDS):06d}"
    return StepResult(
        function,
        args or {},
        list(rets) + list(missing or []),
        jid=jid,
        returns={m: MinionReturn(m, r, success=success, retcode=retcode) for m, r in rets.items()},
        missing=list(missing or []),
    )


def assert_grounded(
    response: Response, results: list[StepResult], inventory: dict | None = None, question: str = ""
) -> None:
    """Every number in the rendered answer comes from the data; every citation re-reads."""
    assert check_evidence(response, results, inventory) == []
    for text in (response.answer_text(), response.as_text()):
        assert unsupported_numbers(text, response, results, inventory, question) == []
    json.dumps(response.as_dict())  # JSON-safe


def by_topic(response: Response, topic: str, minion: str | None = None) -> list:
    return [f for f in response.findings if f.topic == topic and (minion is None or f.minion_id == minion)]


def hog_results(ps_top: Any | None = None) -> list[StepResult]:
    return [
        step("status.loadavg", fixture("hog/status.loadavg")),
        step("status.cpuinfo", fixture("status.cpuinfo")),
        step("status.cpustats", fixture("hog/status.cpustats.a")),
        step("ps.top", ps_top if ps_top is not None else fixture("hog/ps.top"), args={"num_processes": 10}),
        step("status.cpustats", fixture("hog/status.cpustats.b")),
        step("status.uptime", fixture("hog/status.uptime")),
        step("status.meminfo", fixture("hog/status.meminfo")),
        step("disk.usage", fixture("disk.usage")),
    ]


# -- the fixtures are the shapes the rules assume ---------------------------------


def test_fixtures_have_the_real_salt_3008_shapes() -> None:
    assert set(fixture("status.loadavg")) == {"1-min", "5-min", "15-min"}
    assert fixture("status.meminfo")["MemTotal"]["unit"] == "kB"  # not "123 kB" strings
    top = fixture("ps.top")
    assert isinstance(top, list) and {"cmd", "pid", "user", "cpu", "mem", "create_time"} <= set(top[0])
    assert "percent" not in json.dumps(top[0])  # ps.top gives CPU seconds, not a percentage
    assert fixture("disk.usage")["/"]["capacity"].endswith("%")
    assert fixture("service.status") is False
    assert "packet loss" in fixture("network.ping")


# -- "why is demo-db-01 slow?" ------------------------------------------------------


def test_why_slow_names_the_real_top_consumer() -> None:
    results = hog_results()
    question = "Why is demo-db-01 slow?"
    response = respond(question, "DIAGNOSE", results)

    top = fixture("hog/ps.top")[0]
    uptime = fixture("hog/status.uptime")
    cpu_pct = (
        (top["cpu"]["user"] + top["cpu"]["system"])
        / (uptime["since_t"] + uptime["seconds"] - top["create_time"])
        * 100
    )
    assert cpu_pct > 90  # the hog had one core to itself

    finding = by_topic(response, "process")[0]
    assert finding.severity == "critical"
    assert "python3" in finding.title and "pid 6056" in finding.title and "user root" in finding.title
    assert f"{fmt_num(cpu_pct)}%" in finding.title
    assert "while True: pass" in finding.detail  # the command line
    assert response.findings[0] is finding  # worst first
    assert "python3 (pid 6056" in response.summary and fmt_num(cpu_pct) in response.summary

    pid_ev = next(e for e in finding.evidence if e.path == (0, "pid"))
    assert (pid_ev.minion_id, pid_ev.function, pid_ev.value) == ("demo-db-01", "ps.top", 6056)
    assert pid_ev.jid == results[3].jid

    kill = [a for a in response.suggested_actions if a.function == "ps.kill_pid"]
    assert len(kill) == 1 and kill[0].args == {"pid": 6056} and kill[0].targets == ["demo-db-01"]
    assert kill[0].requires_approval and kill[0].as_dict()["requires_approval"] is True
    assert any("6056" in r for r in response.recommendations)
    assert_grounded(response, results, question=question)


def test_cpu_busy_comes_from_the_delta_of_two_cpustats_samples() -> None:
    results = hog_results()
    response = respond("why is it slow", "DIAGNOSE", results)
    a, b = fixture("hog/status.cpustats.a")["cpu"], fixture("hog/status.cpustats.b")["cpu"]
    total = sum(b.values()) - sum(a.values())
    idle = (b["idle"] + b["iowait"]) - (a["idle"] + a["iowait"])
    busy = (total - idle) / total * 100
    cpu = by_topic(response, "cpu")
    assert len(cpu) == 1 and cpu[0].title == f"CPU {fmt_num(busy)}% busy"
    assert_grounded(response, results)


def test_single_cpustats_sample_is_reported_as_since_boot() -> None:
    results = [step("status.cpustats", fixture("status.cpustats"))]
    response = respond("cpu usage on demo-db-01", "QUERY_METRICS", results)
    assert "since boot" in by_topic(response, "cpu")[0].title
    assert_grounded(response, results)


def test_runaway_process_of_a_known_service_proposes_restart_then_kill() -> None:
    top = copy.deepcopy(fixture("hog/ps.top"))
    uptime = fixture("hog/status.uptime")
    now = uptime["since_t"] + uptime["seconds"]
    top[0].update(
        cmd=["/usr/sbin/mysqld", "--defaults-file=/etc/mysql/my.cnf"],
        user="mysql",
        pid=4242,
        create_time=now - 1000,
    )
    top[0]["cpu"].update(user=900.0, system=50.0)  # 950 s of CPU in 1000 s: 95% of a core
    results = hog_results(top)
    inventory = {"demo-db-01": {"services": ["mysql"], "tags": ["prod", "db"]}}
    response = respond("Why is demo-db-01 slow?", "DIAGNOSE", results, inventory=inventory)

    finding = by_topic(response, "process")[0]
    assert finding.severity == "critical"
    assert finding.title == "Top CPU consumer: mysqld (pid 4242, user mysql) at 95% of a core"
    assert "/usr/sbin/mysqld --defaults-file=/etc/mysql/my.cnf" in finding.detail
    actions = [(a.function, a.args) for a in response.suggested_actions]
    assert actions[:2] == [("service.restart", {"name": "mysql"}), ("ps.kill_pid", {"pid": 4242})]
    assert response.summary.startswith("demo-db-01: Top CPU consumer: mysqld (pid 4242")
    assert_grounded(response, results, inventory)


def test_busy_process_without_clock_is_named_without_a_percentage() -> None:
    results = [step("ps.top", fixture("hog/ps.top"))]
    response = respond("what is using the cpu", "QUERY_METRICS", results)
    finding = by_topic(response, "process")[0]
    assert finding.title == "Top CPU consumer: python3 (pid 6056, user root)"
    assert "status.uptime" in finding.detail and "%" not in finding.title
    assert response.suggested_actions == []  # no measured share, no kill proposal
    assert_grounded(response, results)


def test_the_ps_top_job_itself_is_not_the_top_consumer() -> None:
    results = [step("ps.top", fixture("ps.top"))]  # entry 1 is salt-call running ps.top
    response = respond("top processes", "QUERY_METRICS", results)
    assert "salt-call" not in by_topic(response, "process")[0].title
    assert_grounded(response, results)


def test_process_memory_share_uses_meminfo_total() -> None:
    top = copy.deepcopy(fixture("hog/ps.top"))
    total_kib = int(fixture("hog/status.meminfo")["MemTotal"]["value"])
    top[1]["mem"]["rss"] = total_kib * 1024 * 7 // 10  # the second process holds 70% of RAM
    results = [step("ps.top", top), step("status.meminfo", fixture("hog/status.meminfo"))]
    response = respond("memory", "DIAGNOSE", results)
    hog = [f for f in by_topic(response, "process") if "of RAM" in f.title]
    assert (
        len(hog) == 1
        and hog[0].severity == "critical"
        and "pid 2936" in hog[0].title
        and "70% of RAM" in hog[0].title
    )
    assert_grounded(response, results)


# -- load, memory, disk ---------------------------------------------------------------


@pytest.mark.parametrize(
    "one_min, severity, text",
    [
        (0.6, "info", "Load 0.3 per CPU core"),
        (3.2, "warning", "High load: 1.6 per CPU core"),
        (4.4, "critical", "Very high load: 2.2 per CPU core"),
    ],
)
def test_load_average_is_judged_per_core(one_min: float, severity: str, text: str) -> None:
    load = dict(fixture("status.loadavg"), **{"1-min": one_min})
    results = [step("status.loadavg", load), step("grains.items", fixture("grains.items"))]  # num_cpus: 2
    response = respond("is demo-db-01 busy", "DIAGNOSE", results)
    finding = by_topic(response, "load")[0]
    assert (finding.severity, finding.title) == (severity, text)
    assert any(e.path == ("num_cpus",) and e.value == 2 for e in finding.evidence)
    assert_grounded(response, results)


def test_cpu_count_falls_back_to_inventory_then_to_unknown() -> None:
    load = dict(fixture("status.loadavg"), **{"1-min": 6.0})
    results = [step("status.loadavg", load)]
    inventory = {"demo-db-01": {"cpu_count": 4}}
    with_inventory = respond("load", "DIAGNOSE", results, inventory=inventory)
    finding = by_topic(with_inventory, "load")[0]
    assert finding.title == "High load: 1.5 per CPU core"
    assert any(e.function == "inventory" and e.path == ("cpu_count",) for e in finding.evidence)
    assert_grounded(with_inventory, results, inventory)

    unknown = respond("load", "DIAGNOSE", results)
    finding = by_topic(unknown, "load")[0]
    assert finding.severity == "info" and "CPU count is unknown" in finding.detail
    assert_grounded(unknown, results)


def test_cpu_count_from_cpuinfo_is_last_processor_index_plus_one() -> None:
    results = [
        step("status.loadavg", dict(fixture("status.loadavg"), **{"1-min": 2.0})),
        step("status.cpuinfo", fixture("status.cpuinfo")),
    ]
    response = respond("load", "DIAGNOSE", results)
    assert by_topic(response, "load")[0].title == "High load: 1 per CPU core"
    assert_grounded(response, results)


def test_memory_low_and_swap_in_use() -> None:
    meminfo = copy.deepcopy(fixture("status.meminfo"))
    total = int(meminfo["MemTotal"]["value"])
    meminfo["MemAvailable"]["value"] = str(total * 8 // 100)
    meminfo["SwapTotal"]["value"] = "4194304"  # 4 GiB of swap, half used
    meminfo["SwapFree"]["value"] = "2097152"
    results = [step("status.meminfo", meminfo)]
    response = respond("why is demo-db-01 slow", "DIAGNOSE", results)
    memory = by_topic(response, "memory")
    assert [(f.severity, f.title) for f in memory] == [
        ("warning", "Low memory: 8% available"),
        ("warning", "Swap in use: 2 GiB (50% of swap)"),
    ]
    assert any("memory" in r.lower() for r in response.recommendations)
    assert_grounded(response, results)


def test_memory_of_the_real_box_is_fine_and_has_no_swap_finding() -> None:
    results = [step("status.meminfo", fixture("status.meminfo"))]
    response = respond("memory", "QUERY_METRICS", results)
    memory = by_topic(response, "memory")
    assert len(memory) == 1 and memory[0].severity == "info" and memory[0].title.startswith("Memory ")
    assert_grounded(response, results)


def test_meminfo_in_the_older_string_shape() -> None:
    meminfo = {"MemTotal": "1000000 kB", "MemAvailable": "40000 kB", "SwapTotal": "0 kB", "SwapFree": "0 kB"}
    results = [step("status.meminfo", meminfo)]
    response = respond("memory", "DIAGNOSE", results)
    assert by_topic(response, "memory")[0].title == "Memory nearly exhausted: 4% available"
    assert_grounded(response, results)


def test_disk_thresholds_per_mount_and_pseudo_filesystems_ignored() -> None:
    usage = copy.deepcopy(fixture("disk.usage"))
    usage["/"]["capacity"] = "93%"
    usage["/var/lib/mysql"] = dict(usage["/"], capacity="96%", filesystem="/dev/vdb1")
    usage["/snap/core/1"] = dict(usage["/"], capacity="100%", filesystem="/dev/loop3")
    results = [step("disk.usage", usage)]
    response = respond("how much disk is left on demo-db-01", "QUERY_METRICS", results)
    disk = by_topic(response, "disk")
    assert [(f.severity, f.title) for f in disk] == [
        ("critical", "Disk /var/lib/mysql is almost full: 96%"),
        ("warning", "Disk / is 93% full"),
        ("info", "Disk usage"),
    ]
    assert "/dev/shm" not in json.dumps(response.as_dict()) and "/snap" not in response.as_text()
    free_gib = int(usage["/"]["available"]) / 1024**2
    assert f"{fmt_num(free_gib)} GiB free" in disk[1].detail
    assert response.summary.startswith("demo-db-01: /var/lib/mysql 96%; / 93%")
    assert any("/var/lib/mysql" in r for r in response.recommendations)
    assert_grounded(response, results)


def test_real_disk_usage_is_summarised_per_server_for_a_query() -> None:
    usage = fixture("disk.usage")
    other = copy.deepcopy(usage)
    other["/"]["capacity"] = "41%"
    results = [multi("disk.usage", {"web-01": usage, "web-02": other})]
    response = respond("disk space on the web tier", "QUERY_METRICS", results)
    assert response.summary.splitlines() == [
        "web-01: disk / 13%.",
        "web-02: disk / 41%.",
    ]
    assert all(f.severity == "info" for f in response.findings)
    assert_grounded(response, results)


def test_inode_usage() -> None:
    inodes = copy.deepcopy(fixture("disk.inodeusage"))
    inodes["/"]["use"] = "97%"
    results = [step("disk.inodeusage", inodes)]
    response = respond("inodes", "DIAGNOSE", results)
    assert by_topic(response, "inodes")[0].title == "Inodes on / 97% used"
    assert by_topic(response, "inodes")[0].severity == "critical"
    assert_grounded(response, results)


def test_all_status_feeds_the_same_rules_with_prefixed_paths() -> None:
    results = [step("status.all_status", fixture("status.all_status"))]
    response = respond("how is demo-db-01", "DIAGNOSE", results)
    load = by_topic(response, "load")[0]
    assert any(e.path_str == "loadavg.1-min" for e in load.evidence)
    assert by_topic(response, "memory") and by_topic(response, "disk") and by_topic(response, "system")
    assert_grounded(response, results)


# -- services, packages, network, system ----------------------------------------------


def test_service_down_is_critical_and_start_is_proposed() -> None:
    results = [step("service.status", fixture("service.status"), minion="web-02", args={"name": "cron"})]
    response = respond("is cron running on web-02?", "DIAGNOSE", results)
    finding = response.findings[0]
    assert (finding.severity, finding.title, finding.minion_id) == (
        "critical",
        "cron is not running",
        "web-02",
    )
    assert finding.evidence[0].value is False and finding.evidence[0].function == "service.status"
    action = response.suggested_actions[0]
    assert (action.function, action.targets, action.args) == ("service.start", ["web-02"], {"name": "cron"})
    assert "web-02: cron is not running." in response.summary
    assert any("journalctl -u cron" in r for r in response.recommendations)
    assert_grounded(response, results)


def test_service_running_and_pattern_shape() -> None:
    results = [
        step("service.status", True, args={"name": "nginx"}),
        step("service.status", {"redis-server": True, "postgresql": False}, args={"name": "*"}),
    ]
    response = respond("services", "QUERY_INVENTORY", results)
    titles = {f.title: f.severity for f in response.findings}
    assert titles == {
        "nginx is running": "info",
        "redis-server is running": "info",
        "postgresql is not running": "critical",
    }
    assert_grounded(response, results)


def test_service_list_and_inventory_expectation() -> None:
    results = [step("service.get_all", fixture("service.get_all"))]
    inventory = {"demo-db-01": {"services": ["postgresql", "mysql"]}}
    response = respond("services", "QUERY_INVENTORY", results, inventory=inventory)
    assert "7 services known" in [f.title for f in response.findings]
    missing = [f for f in response.findings if f.severity == "warning"]
    assert [f.title for f in missing] == ["mysql is not among its services"]
    assert_grounded(response, results, inventory)


def test_pending_upgrades_counted_and_upgrade_proposed() -> None:
    results = [step("pkg.list_upgrades", fixture("pkg.list_upgrades"))]
    response = respond("any updates pending?", "DIAGNOSE", results)
    count = len(fixture("pkg.list_upgrades"))
    finding = by_topic(response, "packages")[0]
    assert finding.title == f"{count} package upgrades pending" and finding.severity == "warning"
    assert "bash → 5.2.15-2+b13" in finding.detail
    assert [a.function for a in response.suggested_actions] == ["pkg.upgrade"]
    empty = [step("pkg.list_upgrades", {})]
    assert respond("updates", "DIAGNOSE", empty).findings[0].title == "No pending upgrades"
    assert_grounded(response, results)


def test_installed_packages_answer_the_package_asked_for() -> None:
    results = [step("pkg.list_pkgs", fixture("pkg.list_pkgs"), minion="build-01")]
    question = "is apt installed on build-01?"
    response = respond(question, "QUERY_INVENTORY", results)
    finding = by_topic(response, "packages")[0]
    assert finding.title == "40 packages installed"
    assert "Asked for: apt 2.6.1." in finding.detail
    assert response.summary == "build-01: 40 packages (incl. apt)."
    assert_grounded(response, results, question=question)


def test_ping_success_loss_and_partial_loss() -> None:
    ok = [step("network.ping", fixture("network.ping"), args={"host": "127.0.0.1"})]
    finding = respond("ping", "DIAGNOSE", ok).findings[0]
    assert (finding.severity, finding.title) == ("info", "127.0.0.1 is reachable")
    assert "average round trip 0.035 ms" in finding.detail
    assert_grounded(respond("ping", "DIAGNOSE", ok), ok)

    lost = [step("network.ping", fixture("network.ping.loss"), args={"host": "198.51.100.7"})]
    response = respond("can demo-db-01 reach 198.51.100.7", "DIAGNOSE", lost)
    assert (response.findings[0].severity, response.findings[0].title) == (
        "critical",
        "198.51.100.7 is unreachable",
    )
    assert "100% packet loss" in response.findings[0].detail
    assert_grounded(response, lost, question="can demo-db-01 reach 198.51.100.7")

    partial_text = fixture("network.ping").replace(
        "4 received, 0% packet loss", "3 received, 25% packet loss"
    )
    partial = [step("network.ping", partial_text, args={"host": "127.0.0.1"})]
    response = respond("ping", "DIAGNOSE", partial)
    assert (response.findings[0].severity, response.findings[0].title) == (
        "warning",
        "25% packet loss to 127.0.0.1",
    )
    assert_grounded(response, partial)

    boolean = [step("network.ping", False, args={"host": "10.0.0.9"})]
    assert respond("ping", "DIAGNOSE", boolean).findings[0].title == "10.0.0.9 is unreachable"


def test_uptime_recent_reboot_and_long_uptime() -> None:
    recent = [step("status.uptime", fixture("status.uptime"))]
    finding = respond("uptime", "DIAGNOSE", recent).findings[0]
    assert (finding.severity, finding.title) == ("warning", "Rebooted recently: up 0 h 5 min")
    long_up = dict(fixture("status.uptime"), seconds=360000, days=4, time="4:0")
    results = [step("status.uptime", long_up)]
    response = respond("uptime", "QUERY_METRICS", results)
    assert (response.findings[0].severity, response.findings[0].title) == ("info", "Up 4 days 4 h 0 min")
    assert_grounded(response, results)


def test_inventory_queries_summarise_os_packages_users_network() -> None:
    results = [
        step("grains.items", fixture("grains.items"), minion="build-01"),
        step("user.list_users", fixture("user.list_users"), minion="build-01"),
        step("network.interfaces", fixture("network.interfaces"), minion="build-01"),
        step("network.netstat", fixture("network.netstat"), minion="build-01"),
    ]
    response = respond("what is build-01?", "QUERY_INVENTORY", results)
    line = response.summary
    assert line.startswith("build-01: Debian 12 (bookworm); ")
    assert f"{len(fixture('user.list_users'))} users" in line
    assert "1 listening, 0 established" in line
    assert any(f.title == "1 listening socket, 0 established connections" for f in response.findings)
    grains = by_topic(response, "system")[0]
    assert "2 CPUs" in grains.detail and "23.5 GiB RAM" in grains.detail
    assert_grounded(response, results)


def test_inventory_only_query_without_results() -> None:
    inventory = {
        "win-app-01": {
            "os": "Windows",
            "os_family": "Windows",
            "tags": ["prod", "app"],
            "services": ["w3svc"],
        },
    }
    response = respond("list all servers running windows", "QUERY_INVENTORY", [], inventory=inventory)
    assert response.summary == "win-app-01: Windows, tags prod, app, services w3svc."
    assert response.findings[0].evidence[0].function == "inventory"
    assert_grounded(response, [], inventory)


def test_write_results_are_reported() -> None:
    results = [
        step("service.restart", True, minion="web-02", args={"name": "nginx"}),
        step(
            "pkg.install", {"htop": {"old": "", "new": "3.2.2-2"}}, minion="build-01", args={"name": "htop"}
        ),
        step(
            "state.apply",
            {
                "file_|-motd_|-/etc/motd_|-managed": {
                    "result": False,
                    "comment": "Source file not found",
                    "changes": {},
                }
            },
        ),
        step("ps.kill_pid", False, minion="web-03", args={"pid": 4242}),
    ]
    response = respond("restart nginx", "REMEDIATE", results)
    titles = {(f.minion_id, f.title): f.severity for f in response.findings}
    assert titles[("web-02", "service.restart succeeded")] == "info"
    assert titles[("build-01", "pkg.install: 1 package changed")] == "info"
    assert titles[("demo-db-01", "state.apply: 1 of 1 states failed")] == "critical"
    assert titles[("web-03", "ps.kill_pid returned False")] == "warning"
    assert_grounded(response, results)


# -- bad shapes, errors, silence --------------------------------------------------------


def test_function_not_available_is_an_exec001_finding() -> None:
    results = [
        step("ps.top", "'ps.top' is not available.", minion="web-01", success=False, retcode=1),
        step("status.loadavg", fixture("status.loadavg"), minion="web-01"),
    ]
    response = respond("why is web-01 slow", "DIAGNOSE", results)
    failed = [f for f in response.findings if f.code == "EXEC001"]
    assert len(failed) == 1 and failed[0].title == "ps.top failed"
    assert "'ps.top' is not available" in failed[0].detail and "not loaded on this minion" in failed[0].detail
    assert by_topic(response, "load")  # the other step still counts
    assert "web-01: ps.top failed." in response.summary
    assert_grounded(response, results)


@pytest.mark.parametrize(
    "ret, success, retcode",
    [
        ("ERROR: Unable to run command '['ping', '-c', '4', '10.0.0.1']'", False, 1),
        ("The minion function caused an exception: Traceback (most recent call last):\n  File ...", False, 1),
        ("something went wrong", False, 1),  # any string with a failure flag
        ({"ps.topx": "'ps.topx' is not available."}, False, 1),  # missing function with look-alike docs
        ("'ps.top' is not available.", True, 0),  # even when not flagged
    ],
)
def test_error_returns_never_reach_the_rules(ret: Any, success: bool, retcode: int) -> None:
    results = [step("ps.top", ret, success=success, retcode=retcode)]
    response = respond("top", "DIAGNOSE", results)
    assert [f.code for f in response.findings] == ["EXEC001"]
    assert response.suggested_actions == []
    assert_grounded(response, results)


def test_unexpected_shape_is_reported_not_raised() -> None:
    results = [step("disk.usage", ["not", "a", "dict"]), step("status.loadavg", 0.5)]
    response = respond("disk", "QUERY_METRICS", results)
    assert [f.title for f in response.findings] == [
        "disk.usage returned data in an unexpected shape",
        "status.loadavg returned data in an unexpected shape",
    ]
    assert_grounded(response, results)


def test_nonzero_retcode_with_data_is_flagged_but_used() -> None:
    results = [step("service.get_all", fixture("service.get_all"), retcode=1)]  # what salt-call gave here
    response = respond("services", "QUERY_INVENTORY", results)
    assert any(f.code == "EXEC001" and "retcode 1" in f.detail for f in response.findings)
    assert any(f.title == "7 services known" for f in response.findings)
    assert_grounded(response, results)


def test_minions_that_did_not_answer_are_srv003_and_unanswered() -> None:
    results = [
        multi("status.loadavg", {"web-01": fixture("status.loadavg")}, missing=["web-02"]),
        StepResult(
            "disk.usage",
            {},
            ["web-01", "web-03"],
            jid="20261127173012999999",
            returns={"web-01": MinionReturn("web-01", fixture("disk.usage"))},
        ),  # web-03 silent, not listed as missing
    ]
    response = respond("load and disk on web", "QUERY_METRICS", results)
    assert response.unanswered == ["web-02", "web-03"]
    silent = [f for f in response.findings if f.code == "SRV003"]
    assert {f.minion_id for f in silent} == {"web-02", "web-03"} and all(
        f.severity == "critical" for f in silent
    )
    assert "No answer from web-02 and web-03 (SRV003)" in response.summary
    assert "### No answer" in response.as_text()
    assert response.as_dict()["unanswered"] == ["web-02", "web-03"]
    assert_grounded(response, results)


def test_minion_silent_on_one_step_only_is_warned_but_not_unanswered() -> None:
    results = [
        step("status.loadavg", fixture("status.loadavg"), minion="web-01"),
        multi("ps.top", {}, missing=["web-01"]),
    ]
    response = respond("load", "DIAGNOSE", results)
    assert response.unanswered == []
    assert [(f.severity, f.code) for f in response.findings if f.code] == [("warning", "SRV003")]


def test_step_error_and_empty_results() -> None:
    failed = [
        StepResult(
            "ps.top", {}, ["web-01"], error={"code": "EXEC002", "message": "Job timed out after the limit"}
        )
    ]
    response = respond("top", "DIAGNOSE", failed)
    assert response.findings[0].code == "EXEC002" and "ps.top could not run" in response.summary
    assert response.unanswered == []  # the step failed as a whole; no minion is blamed

    for empty in ([], None):
        response = respond("why is it slow", "DIAGNOSE", empty)  # type: ignore[arg-type]
        assert response.summary.startswith("No data was collected")
        assert response.findings[0].title == "No data collected"
        json.dumps(response.as_dict())


GARBAGE: list[Any] = [
    None,
    0,
    1.5,
    True,
    "",
    "text",
    [],
    {},
    [None, 1, "x"],
    {"a": None},
    {"1-min": "high"},
    [{"cmd": None, "pid": "x", "cpu": None, "mem": "m"}],
    {"/": None, "/data": {"capacity": None}},
    {"MemTotal": {"value": "0", "unit": "kB"}, "MemAvailable": {"value": "x"}},
    {"cpu": {"idle": "a"}},
    {"seconds": "soon", "time": "a:b"},
    {"eth0": {"up": False, "inet": [None, {"address": "10.0.0.1"}]}},
]
FUNCTIONS = [
    "status.loadavg",
    "status.cpustats",
    "status.cpuinfo",
    "status.meminfo",
    "status.uptime",
    "status.all_status",
    "status.diskusage",
    "disk.usage",
    "disk.inodeusage",
    "ps.top",
    "service.status",
    "service.get_all",
    "pkg.list_pkgs",
    "pkg.list_upgrades",
    "network.ping",
    "grains.items",
    "network.interfaces",
    "network.netstat",
    "user.list_users",
    "state.apply",
    "pkg.install",
    "some.unknown",
]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_garbage_never_raises(function: str) -> None:
    for ret in GARBAGE:
        for intent in ("DIAGNOSE", "QUERY_METRICS"):
            results = [step(function, ret), step("status.cpustats", {"cpu": {"idle": 1, "user": "2"}})]
            response = respond(
                "anything", intent, results, inventory={"demo-db-01": {"cpu_count": 0, "services": None}}
            )
            json.dumps(response.as_dict())
            assert response.summary and response.as_text()
            # the rules cope with the shape themselves; the safety net in respond() is not needed
            assert "Part of the data could not be interpreted" not in [f.title for f in response.findings]
            assert check_evidence(response, results, {"demo-db-01": {"cpu_count": 0, "services": None}}) == []


# -- rendering and grounding ------------------------------------------------------------


def test_as_dict_is_json_with_the_spec_sections() -> None:
    results = hog_results()
    response = respond("Why is demo-db-01 slow?", "DIAGNOSE", results)
    data = json.loads(json.dumps(response.as_dict()))
    assert set(data) == {
        "summary",
        "findings",
        "recommendations",
        "suggested_actions",
        "follow_ups",
        "unanswered",
    }
    finding = data["findings"][0]
    assert {"severity", "title", "detail", "evidence", "minion_id", "topic"} <= set(finding)
    ev = next(e for e in finding["evidence"] if e["path"] == "0.pid")
    assert ev == {
        "minion_id": "demo-db-01",
        "function": "ps.top",
        "jid": results[3].jid,
        "path": "0.pid",
        "value": 6056,
    }
    computed = next(e for e in finding["evidence"] if "derived" in e)
    assert computed["derived"]["op"] and computed["derived"]["inputs"]
    assert data["suggested_actions"][0]["requires_approval"] is True
    assert 1 <= len(data["follow_ups"]) <= 4


def test_as_text_has_sections_and_citations() -> None:
    results = hog_results() + [step("service.status", False, args={"name": "nginx"})]
    text = respond("Why is demo-db-01 slow?", "DIAGNOSE", results).as_text()
    for heading in (
        "### Findings",
        "### Checked",
        "### Recommendations",
        "### Suggested actions (need approval, not run)",
        "### You could ask next",
    ):
        assert heading in text
    assert "**CRITICAL** demo-db-01: nginx is not running" in text
    assert "`ps.kill_pid pid=6056` on demo-db-01" in text
    assert f"jid {results[3].jid}" in text


def test_grounding_check_catches_an_invented_number_and_a_false_citation() -> None:
    results = hog_results()
    response = respond("Why is demo-db-01 slow?", "DIAGNOSE", results)
    assert_grounded(response, results)
    response.summary += " Load was 7.7 per core and 12 queries are slow."
    assert unsupported_numbers(response.answer_text(), response, results) == ["7.7", "12"]

    pid_ev = next(e for f in response.findings for e in f.evidence if e.path == (0, "pid"))
    pid_ev.value = 6057
    assert check_evidence(response, results) == [
        "demo-db-01 ps.top 0.pid: evidence says 6057, the return has 6056"
    ]

    computed = next(
        e for f in response.findings for e in f.evidence if e.derived is not None and e.derived.op == "pct"
    )
    computed.value = 99.9
    assert any("pct gives" in p for p in check_evidence(response, results))


def test_query_summary_many_servers_is_capped() -> None:
    usage = fixture("disk.usage")
    rets = {f"web-{i:02d}": usage for i in range(1, 21)}
    results = [multi("disk.usage", rets)]
    response = respond("disk on all web servers", "QUERY_METRICS", results)
    lines = response.summary.splitlines()
    assert len(lines) == 16 and lines[-1].startswith("Also answered: web-16, web-17")
    assert_grounded(response, results)


def test_high_cpu_query_lists_the_busy_servers_first() -> None:
    loads = {"web-01": 0.4, "web-02": 5.0, "web-03": 0.2, "web-04": 2.6}
    results = [
        multi(
            "status.loadavg", {m: dict(fixture("status.loadavg"), **{"1-min": v}) for m, v in loads.items()}
        ),
        multi("grains.items", {m: fixture("grains.items") for m in loads}),
    ]
    question = "Show me servers with high CPU in the web tier"
    response = respond(question, "QUERY_METRICS", results)
    lines = response.summary.splitlines()
    assert [line.split(":")[0] for line in lines] == ["web-02", "web-04", "web-01", "web-03"]
    assert "load 2.5/core" in lines[0] and "load 1.3/core" in lines[1]
    assert [f.minion_id for f in response.problems()] == ["web-02", "web-04"]
    assert_grounded(response, results, question=question)


def test_thresholds_can_be_overridden() -> None:
    from salt_ext.responder import Thresholds

    usage = copy.deepcopy(fixture("disk.usage"))
    usage["/"]["capacity"] = "75%"
    results = [step("disk.usage", usage)]
    assert respond("disk", "DIAGNOSE", results).problems() == []
    strict = respond("disk", "DIAGNOSE", results, thresholds=Thresholds(disk_warning=70.0))
    assert [f.title for f in strict.problems()] == ["Disk / is 75% full"]


def test_status_diskusage_has_no_df_capacity_so_says_used_or_reserved() -> None:
    gib = 1024**3
    results = [
        step(
            "status.diskusage",
            {"/": {"available": 4 * gib, "total": 100 * gib}, "/sys/fs/cgroup": {"available": 0, "total": 0}},
        )
    ]
    response = respond("disk", "DIAGNOSE", results)
    assert [(f.severity, f.title) for f in response.findings] == [
        ("critical", "Disk / is almost full: 96%"),
        ("info", "Disk usage"),
    ]
    assert response.findings[1].detail == "Disk usage: / 96% used or reserved (4 GiB free)."
    assert_grounded(response, results)


def test_a_result_that_is_not_a_step_result_is_skipped() -> None:
    results: list[Any] = [{"function": "status.loadavg"}, step("status.loadavg", fixture("status.loadavg"))]
    response = respond("load", "DIAGNOSE", results)
    assert response.findings[0].title == "A result could not be read"
    assert by_topic(response, "load")


def test_a_rule_that_crashes_costs_only_its_own_part(monkeypatch: pytest.MonkeyPatch) -> None:
    import salt_ext.responder.compose as respond_module

    def broken_rule(ctx: Any, minion_id: str) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(respond_module, "RULES", (broken_rule, *respond_module.RULES))
    results = [step("status.loadavg", fixture("status.loadavg"))]
    response = respond_module.respond("load", "DIAGNOSE", results)
    assert [f.title for f in response.findings if f.severity == "warning"] == [
        "Part of the data could not be interpreted"
    ]
    assert by_topic(response, "load")
