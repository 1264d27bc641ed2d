"""The job-cache contract: the same jobs give the same answers with ``serverflow`` as with
Salt's own ``local_cache``, through the ``jobs`` runner, ``salt-run`` and salt-api ``/jobs``.

One module-scoped run: the jobs below are published through the test stack's master with
``master_job_cache: serverflow`` (and ``event_return: serverflow``), every answer is
collected, then the master is restarted with ``local_cache``, the same jobs are run and
answered again, and the master is put back as the stack had it. Jids and start times differ between the two runs;
everything else must be identical.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from typing import Any

import psycopg
import pytest

from salt_ext.devstack import processes, salt_daemons
from tests.functional.saltcli import run_json, wait_for
from tests.functional.returner_stack import restart_master, switch_to, uses_serverflow

pytestmark = pytest.mark.functional

# (label, salt CLI arguments); each is published once per job cache.
JOBS = [
    ("ping", ["*", "test.ping"]),
    ("echo", ["*", "test.echo", "hello world"]),
    ("kwargs", ["sf-web-1", "test.arg", "a", "2", "k=v", "--metadata", '{"team": "ops"}']),
    ("retcode", ["sf-db-1", "test.retcode", "3"]),
    ("missing", ["-L", "sf-web-1,sf-ghost-9", "test.ping", "-t", "3"]),
    ("unknown", ["sf-db-1", "no_such.function"]),
]
REQ_PROBE = "req-probe-from-salt-call"
_JID_LINE = re.compile(r"^jid: (\S+)$", re.M)
_START = re.compile(r"^\d{4}, [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}\.\d{6}$")

# Runs in a fresh process (like salt-run): every jobs-runner call, answered by one job cache.
_RUNNER_BATCH = """
import json, sys
import salt.config, salt.runner
opts = salt.config.master_config(sys.argv[1])
client = salt.runner.RunnerClient(opts)
calls = json.load(sys.stdin)
out = [client.cmd(fun, arg=args, kwarg=kwargs, print_event=False) for fun, args, kwargs in calls]
print(json.dumps(out, default=repr))
"""


def publish_all(layout) -> dict[str, str]:
    """Run every job at once (one ``salt`` CLI each, plus a ``salt-call``); label -> jid."""
    def cli(tool: str, *args: str, config_dir=None) -> subprocess.Popen:
        return subprocess.Popen([str(layout.venv_bin / tool), "-c",
                                 str(config_dir or layout.etc), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    running = {label: cli("salt", "--show-jid", "--out=json", *args) for label, args in JOBS}
    # A minion-initiated job (jid "req"): salt-call returns to the master, which gives it a jid.
    call = cli("salt-call", "test.echo", REQ_PROBE, "--out=json",
               config_dir=layout.minion_dir("sf-web-1"))
    jids = {}
    for label, proc in running.items():
        out, err = proc.communicate(timeout=180)
        found = _JID_LINE.search(out)
        assert found, out + err
        jids[label] = found.group(1)
    assert call.wait(180) == 0, call.stderr.read()
    jids["req"] = req_jid(layout)
    return jids


def req_jid(layout) -> str:
    def find() -> str | None:
        jobs = run_batch(layout, [["jobs.list_jobs", [], {"search_function": "test.echo"}]])[0]
        mine = [jid for jid, job in jobs.items() if job["Arguments"] == [REQ_PROBE]]
        return max(mine) if mine else None

    return wait_for(find, 30)


def run_batch(layout, calls: list[list[Any]]) -> list[Any]:
    proc = subprocess.run([sys.executable, "-c", _RUNNER_BATCH, str(layout.etc / "master")],
                          input=json.dumps(calls), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


class Api:
    """salt-api (rest_cherrypy) of the test stack, logged in with the shared secret."""

    def __init__(self, layout) -> None:
        self.base = f"http://127.0.0.1:{layout.ports.api}"
        form = urllib.parse.urlencode({"username": "admin", "password": layout.secrets()[
            "api_secret"], "eauth": "sharedsecret"}).encode()
        request = urllib.request.Request(self.base + "/login", data=form,
                                         headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            self.token = json.load(resp)["return"][0]["token"]

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.base + path, headers={
            "Accept": "application/json", "X-Auth-Token": self.token})
        with urllib.request.urlopen(request, timeout=60) as resp:
            return json.load(resp)


def collect(layout) -> dict[str, Any]:
    """Publish every job, then ask the job cache about them every way Salt users do."""
    jids = publish_all(layout)
    ours = set(jids.values())
    calls: list[list[Any]] = [["jobs.list_jobs", [], {}],
                              ["jobs.list_jobs", [], {"search_function": "test.arg"}],
                              ["jobs.list_jobs", [], {"search_target": "sf-db-1"}],
                              ["jobs.list_jobs", [], {"search_metadata": {"team": "ops"}}],
                              ["jobs.list_jobs_filter", [500], {}],
                              ["jobs.last_run", [], {"function": "test.arg"}]]
    for jid in jids.values():
        calls += [["jobs.lookup_jid", [jid], {}],
                  ["jobs.lookup_jid", [jid], {"missing": True}],
                  ["jobs.list_job", [jid], {}],
                  ["jobs.print_job", [jid], {}],
                  ["jobs.exit_success", [jid], {}]]
    answers = run_batch(layout, calls)
    keep = lambda jobs: {j: v for j, v in jobs.items() if j in ours}  # noqa: E731
    answers[0], answers[1], answers[2], answers[3] = map(keep, answers[:4])
    # jobs were published concurrently: compare the filtered listing in label order
    label_of = {jid: label for label, jid in jids.items()}
    answers[4] = sorted((job for job in answers[4] if job["JID"] in ours),
                        key=lambda job: label_of[job["JID"]])
    cli_jobs = keep(run_json(layout, "salt-run", "jobs.list_jobs"))
    salt_daemons.start_api(layout)
    try:
        api = Api(layout)
        api_jobs = api.get("/jobs")
        api_jobs["return"][0] = keep(api_jobs["return"][0])
        api_each = {jid: api.get(f"/jobs/{jid}") for jid in jids.values()}
    finally:
        processes.stop(layout.run, "salt-api")
    return {"jids": jids, "runner": answers, "cli": cli_jobs, "api": [api_jobs, api_each]}


def normalize(value: Any, names: dict[str, str]) -> Any:
    """Jids become their job's label and start times a placeholder (checked for format)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("StartTime", "Start Time", "_stamp"):
                assert key == "_stamp" or _START.match(item), item
                item = "<time>"
            out[normalize(key, names)] = normalize(item, names)
        return out
    if isinstance(value, list):
        return [normalize(item, names) for item in value]
    if isinstance(value, str):
        for jid, label in names.items():
            value = value.replace(jid, f"<{label}>")
        return value
    return value


@pytest.fixture(scope="module")
def both(salt_stack):
    """Answers with each job cache, in whichever order costs the fewest master restarts."""
    layout = salt_stack
    runs: dict[bool, dict[str, Any]] = {}
    first = uses_serverflow(layout)
    switched = False
    try:
        for serverflow in (first, not first):
            switched = switch_to(layout, serverflow) or switched
            runs[serverflow] = collect(layout)
    finally:
        if switched:
            restart_master(layout, None)
    return layout, runs[True], runs[False]


def _normalized(run: dict[str, Any]) -> dict[str, Any]:
    names = {jid: label for label, jid in run["jids"].items()}
    return normalize({k: v for k, v in run.items() if k != "jids"}, names)


def test_jobs_runner_answers_like_local_cache(both):
    _, ours, theirs = both
    mine, salts = _normalized(ours)["runner"], _normalized(theirs)["runner"]
    labels = ["list_jobs", "list_jobs fun", "list_jobs target", "list_jobs metadata",
              "list_jobs_filter", "last_run"] + [
        f"{what} {label}" for label in ours["jids"]
        for what in ("lookup_jid", "lookup_jid missing", "list_job", "print_job", "exit_success")]
    assert len(mine) == len(salts) == len(labels)
    for label, a, b in zip(labels, mine, salts):
        assert a == b, f"{label} differs:\n serverflow:  {a}\n local_cache: {b}"
    # and the answers are about the jobs, not empty on both sides
    by_label = dict(zip(labels, mine))
    assert len(by_label["list_jobs"]) == len(JOBS) + 1
    assert by_label["lookup_jid echo"] == {"sf-db-1": "hello world", "sf-web-1": "hello world"}
    assert by_label["lookup_jid missing missing"]["sf-web-1"] is True
    assert by_label["list_job req"]["Result"]["sf-web-1"]["return"] == REQ_PROBE
    assert by_label["last_run"]["<kwargs>"]["Metadata"] == {"team": "ops"}
    assert by_label["exit_success retcode"] == {"sf-db-1": True}


def test_salt_run_and_salt_api_answer_like_local_cache(both):
    _, ours, theirs = both
    mine, salts = _normalized(ours), _normalized(theirs)
    assert mine["cli"] == salts["cli"]
    assert mine["api"] == salts["api"]
    api_jobs, api_each = mine["api"]
    assert set(api_jobs["return"][0]) == {f"<{label}>" for label in ours["jids"]}
    echo = api_each["<echo>"]
    assert echo["return"] == [{"sf-db-1": "hello world", "sf-web-1": "hello world"}]
    assert echo["info"][0]["Function"] == "test.echo"


def test_jobs_returns_and_events_are_in_postgresql(both):
    layout, ours, _ = both
    jids = ours["jids"]
    with psycopg.connect(layout.dsn("owner")) as conn:
        rows = conn.execute("SELECT jid, minion_id, full_ret, success FROM salt_job_returns "
                            "WHERE jid = ANY(%s)", (list(jids.values()),)).fetchall()
        returns = {(jid, minion): (full, ok) for jid, minion, full, ok in rows}
        assert returns[(jids["echo"], "sf-web-1")] == (
            {"return": "hello world", "retcode": 0, "success": True}, True)
        assert returns[(jids["retcode"], "sf-db-1")][0]["retcode"] == 3
        assert (jids["missing"], "sf-ghost-9") not in returns
        job = conn.execute("SELECT fun, load_source, minions FROM salt_jobs WHERE jid = %s",
                           (jids["req"],)).fetchone()
        assert job == ("test.echo", "return", ["sf-web-1"])

        def events() -> dict[str, int]:
            found = conn.execute(
                "SELECT tag, count(*) FROM salt_bus_events WHERE tag LIKE %s GROUP BY tag",
                (f"salt/job/{jids['echo']}/%",)).fetchall()
            conn.commit()
            return dict(found)

        # EventReturn flushes its queue when later events arrive (the engine pings every 4 s).
        seen = wait_for(lambda: (e := events()) and f"salt/job/{jids['echo']}/new" in e and e, 60)
        assert seen, "the job's events never reached salt_bus_events"
        assert not any("/ret/" in tag for tag in seen)  # denied by default: returns are stored
        assert conn.execute("SELECT count(*) FROM salt_bus_events WHERE tag = 'salt/auth'"
                            ).fetchone()[0] == 0
