"""Nothing lost: PostgreSQL stopped under load, a master restarted with a full spool, kill -9.

The load comes from a "feeder": a separate process that loads ``serverflow`` through Salt's
own loader with the test master's configuration (exactly what a master worker does) and
calls ``returner()`` with synthetic returns. Its spool lives under the master's cachedir, so
if it dies the master's own processes replay what it left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import psycopg
import pytest

from salt_ext.devstack import postgres, processes, salt_daemons
from salt_ext.jobcache.spool import pending_bytes, writer_dirs
from tests.functional.saltcli import run_cli, wait_for
from tests.functional.returner_stack import serverflow_master

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def jobcache_stack(salt_stack):
    """The test stack's master with the serverflow job cache (restored afterwards)."""
    with serverflow_master(salt_stack) as layout:
        yield layout

# argv: master config, tag, count, calls per second, print an ack every N calls,
# JSON overrides of serverflow:returner.
_FEEDER = r"""
import json, sys, time
import salt.config, salt.loader
config, tag = sys.argv[1], sys.argv[2]
count, rate, every = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
overrides = json.loads(sys.argv[6])
opts = salt.config.master_config(config)
opts["serverflow"].setdefault("returner", {}).update(overrides)
returners = salt.loader.returners(opts, {})
returner = returners["serverflow.returner"]
jids = [returners["serverflow.prep_jid"]() for _ in range(count // 1000 + 1)]
print("jids " + json.dumps(jids), flush=True)
started, slowest = time.monotonic(), 0.0
for i in range(count):
    ahead = started + i / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
    t = time.perf_counter()
    returner({"jid": jids[i // 1000], "id": f"{tag}-{i % 1000:04d}", "fun": "test.arg",
              "fun_args": [i], "return": {"i": i, "pad": "x" * 100}, "retcode": 0,
              "success": True})
    slowest = max(slowest, time.perf_counter() - t)
    if (i + 1) % every == 0:
        print(f"acked {i + 1} {time.time():.3f}", flush=True)
print(f"done slowest {slowest:.6f}", flush=True)
"""


def start_feeder(layout, tag: str, count: int, rate: float, every: int,
                 **overrides) -> tuple[subprocess.Popen, list[str]]:
    """The feeder process and the jids it uses (1000 minions per jid)."""
    feeder = subprocess.Popen(
        [sys.executable, "-u", "-c", _FEEDER, str(layout.etc / "master"), tag, str(count),
         str(rate), str(every), json.dumps(overrides)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = feeder.stdout.readline()
    assert first.startswith("jids "), first + feeder.stderr.read()[-2000:]
    return feeder, json.loads(first.split(" ", 1)[1])


def read_acks(feeder: subprocess.Popen, until: int) -> int:
    """Read the feeder's acknowledgements until ``until`` calls have returned."""
    acked = 0
    while acked < until:
        line = feeder.stdout.readline()
        assert line, feeder.stderr.read()[-2000:]
        if line.startswith("acked "):
            acked = int(line.split()[1])
    return acked


def stored(layout, jids: list[str]) -> tuple[int, int]:
    """(rows, distinct (jid, minion)) stored for these jids."""
    with psycopg.connect(layout.dsn("owner")) as conn:
        return conn.execute("SELECT count(*), count(DISTINCT (jid, minion_id)) "
                            "FROM salt_job_returns WHERE jid = ANY(%s)", (jids,)).fetchone()


def spool_root(layout):
    return layout.home / "cache" / "master" / "serverflow" / "spool"


def test_postgres_down_30s_while_10000_returns_flow(jobcache_stack):
    layout = jobcache_stack
    feeder, jids = start_feeder(layout, f"pgdown-{uuid.uuid4().hex[:6]}", 10_000, 300, 100)
    read_acks(feeder, 1000)  # returns are flowing (and being stored) ...
    postgres.stop(layout)    # ... when the database goes away for 30 s
    stopped_at, stopped_wall = time.monotonic(), time.time()
    try:
        time.sleep(30)
    finally:
        restarted_wall = time.time()
        postgres.start(layout)
    down_for = time.monotonic() - stopped_at
    out, err = feeder.communicate(timeout=180)
    assert feeder.returncode == 0, err[-2000:]
    assert down_for >= 30
    # returner() never waited for the database: the feeder's calls kept being acknowledged
    # all through the outage (a returner blocked on PostgreSQL would acknowledge none).
    acks = [(float(stamp), int(n)) for _, n, stamp in
            (line.split() for line in out.splitlines() if line.startswith("acked "))]
    during = [n for stamp, n in acks if stopped_wall + 2 < stamp < restarted_wall - 2]
    assert during and max(during) - min(during) >= 1000, acks[:3]
    print(f"slowest returner() call: {out.strip().splitlines()[-1].split()[-1]} s; "
          f"{max(during) - min(during)} returns acknowledged while PostgreSQL was down")
    # The feeder exited (its exit flush may have run while PostgreSQL was still starting);
    # whatever it left in its spool is replayed by the master's processes.
    assert wait_for(lambda: stored(layout, jids)[0] >= 10_000, 120), stored(layout, jids)
    rows, distinct = stored(layout, jids)
    assert rows == distinct == 10_000  # every return, exactly once


def test_master_restart_replays_a_non_empty_spool(jobcache_stack):
    layout = jobcache_stack
    probe = f"spooled-{uuid.uuid4().hex[:8]}"
    postgres.stop(layout)
    try:
        jids = []
        for n in range(2):
            proc = run_cli(layout, "salt", "--show-jid", "--out=json", "*", "test.echo",
                           f"{probe}-{n}")
            assert proc.returncode == 0, proc.stdout + proc.stderr  # the master works without PG
            jids.append(proc.stdout.split("jid: ", 1)[1].split()[0])
            assert proc.stdout.count(f"{probe}-{n}") == len(layout.minions)
        processes.stop(layout.run, "salt-master")
        pending = b"".join(b"".join(pending_bytes(d)) for d in writer_dirs(spool_root(layout)))
        assert all(jid.encode() in pending for jid in jids), "the spool should hold the jobs"
    finally:
        postgres.start(layout)
    salt_daemons.start_master(layout)
    try:
        assert wait_for(lambda: stored(layout, jids)[0] == 2 * len(jids), 90), \
            stored(layout, jids)
        with psycopg.connect(layout.dsn("owner")) as conn:
            loads = conn.execute("SELECT jid, load->>'fun', minions FROM salt_jobs "
                                 "WHERE jid = ANY(%s)", (jids,)).fetchall()
        assert sorted(loads) == sorted((j, "test.echo", sorted(layout.minions)) for j in jids)
        assert stored(layout, jids) == (4, 4)
        # once replayed, the dead master's spool directories are gone
        leftover = b"".join(b"".join(pending_bytes(d)) for d in writer_dirs(spool_root(layout)))
        assert not any(jid.encode() in leftover for jid in jids)
    finally:
        assert salt_daemons.wait_minions(layout, list(layout.minions), 180) == set(layout.minions)


def test_kill_9_mid_batch_loses_at_most_the_call_in_flight(jobcache_stack):
    """Bound: every return whose returner() call completed is stored (it was in the spool
    file before the call returned); only a call interrupted by the kill may be missing.
    The feeder is single-threaded, so at most 1 return is in flight."""
    layout = jobcache_stack
    tag = f"kill9-{uuid.uuid4().hex[:6]}"
    feeder, jids = start_feeder(layout, tag, 50_000, 5_000, 1, batch_size=2000,
                                flush_interval=0.05)
    acked = read_acks(feeder, 4000)
    while stored(layout, jids)[0] == 0:  # wait for the first batches to be in
        acked = read_acks(feeder, acked + 500)
    acked = read_acks(feeder, acked + 1000)
    os.kill(feeder.pid, signal.SIGKILL)  # batches are being written all the time
    in_db_before = stored(layout, jids)[0]
    feeder.wait(10)
    for line in feeder.stdout.read().splitlines():  # acknowledgements still in the pipe
        if line.startswith("acked "):
            acked = int(line.split()[1])
    assert 0 < in_db_before < acked, "the kill should land while batches are being written"
    # The dead process's spool is replayed by a live master process (Maintenance wakes up
    # every loop_interval; any worker's flusher also scans for orphaned spools).
    assert wait_for(lambda: stored(layout, jids)[0] >= acked, 90), (stored(layout, jids), acked)
    rows, distinct = stored(layout, jids)
    assert rows == distinct and acked <= rows <= acked + 1


def master_workers(layout) -> list[int]:
    """Pids of the test master's worker processes (Salt names them MWorker-...)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(layout.etc) in cmdline and "MWorker-" in cmdline and "salt-master" in cmdline:
            found.append(int(entry))
    return sorted(found)


def test_kill_9_of_a_real_master_worker_loses_no_return(jobcache_stack):
    """A real MWorker killed while jobs return: what it had acknowledged was in its spool (and
    is replayed); what it had not, its minion sends again. Every return ends up stored once."""
    layout = jobcache_stack
    client = salt_daemons.local_client(layout)
    workers = master_workers(layout)
    assert len(workers) >= 2, workers
    jids: list[str] = []
    try:
        for n in range(24):
            if n == 12:
                os.kill(workers[0], signal.SIGKILL)
            jid = client.cmd_async("*", "test.echo", [f"mworker-kill-{n}"])
            assert jid, f"job {n} was not published"
            jids.append(str(jid))
            time.sleep(0.1)
    finally:
        client.destroy()
    expected = len(jids) * len(layout.minions)
    assert wait_for(lambda: stored(layout, jids)[0] >= expected, 120), stored(layout, jids)
    assert stored(layout, jids) == (expected, expected)
    assert workers[0] not in master_workers(layout)  # Salt replaced the dead worker
