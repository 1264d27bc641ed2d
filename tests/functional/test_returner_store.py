"""The returner's write path against the real PostgreSQL of the test stack (no Salt daemons).

Synthetic return dicts go through ``JobCache`` exactly as Salt's master hands
them to ``returner()``; everything below it (spool files, flusher thread, COPY,
upserts, triggers, retention) is the real thing.
"""

from __future__ import annotations

import datetime
import json
import logging
import multiprocessing
import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from salt_ext.jobcache import records
from salt_ext.jobcache.encoding import TRUNCATED_KEY
from salt_ext.jobcache.service import JobCache, ReturnerSettings
from salt_ext.jobcache.sink import APPLICATION_NAME, PgSink
from salt_ext.jobcache.spool import pending_bytes, writer_dirs

pytestmark = pytest.mark.functional


def opts_for(dsn: str, tenant: str, cachedir: Path, **returner) -> dict:
    return {"cachedir": str(cachedir), "id": "test-master", "keep_jobs_seconds": 86400,
            "serverflow": {"tenant_id": tenant, "database": {"url": dsn, "connect_timeout": 2},
                           "returner": {"flush_interval": 0.05, **returner}}}


@pytest.fixture
def caches(services, tmp_path):
    """``make(tenant, **returner_settings)`` -> a JobCache on the test database; closed after."""
    made: list[JobCache] = []

    def make(tenant: str, dsn: str | None = None, cachedir: Path | None = None,
             **returner) -> JobCache:
        cache = JobCache(ReturnerSettings.from_opts(opts_for(
            dsn or services.dsn("app"), tenant, cachedir or tmp_path / f"cache-{len(made)}",
            **returner)))
        made.append(cache)
        return cache

    yield make
    for cache in made:
        cache.close(2)


@pytest.fixture
def owner(services):
    with psycopg.connect(services.dsn("owner"), autocommit=True) as conn:
        yield conn


def count(conn, table: str, tenant: str) -> int:
    return conn.execute(f"SELECT count(*) FROM {table} WHERE tenant_id = %s",
                        (tenant,)).fetchone()[0]


def ret(jid: str, minion: str, value=True, **extra) -> dict:
    load = {"jid": jid, "id": minion, "fun": "test.arg", "fun_args": [], "return": value,
            "retcode": 0, "success": True, "cmd": "_return"}
    load.update(extra)
    return load


def new_jid(offset_days: float = 0) -> str:
    when = datetime.datetime.now(tz=datetime.timezone.utc) - datetime.timedelta(days=offset_days)
    return when.strftime("%Y%m%d%H%M%S%f")


def test_awkward_returns_are_stored_and_read_back(caches, tenant_id, owner):
    cache = caches(tenant_id, max_return_bytes=100_000)
    jid = cache.prep_jid()
    cache.save_load(jid, {"jid": jid, "fun": "test.arg", "arg": [], "tgt": "*",
                          "tgt_type": "glob", "user": "root"}, ["m-bytes", "m-big"])
    awkward = {
        "m-bytes": {b"key": b"\xff\x00raw", "ok": b"text"},
        "m-set": {"s": {3, 1, 2}},
        "m-exc": RuntimeError("disk on fire"),
        "m-nan": [float("nan"), float("inf")],
        "m-nul": "before\x00after",
        "m-keys": {(1, 2): "tuple", 7: "int"},
        "m-surrogate": "bad \udcff byte",
        "m-big": "z" * 500_000,
    }
    for minion, value in awkward.items():
        cache.returner(ret(jid, minion, value))
    assert cache.flush(30)
    got = cache.get_jid(jid)
    assert set(got) == set(awkward)
    assert got["m-bytes"]["return"] == {"key": {"__bytes_base64__": "/wByYXc="}, "ok": "text"}
    assert got["m-set"]["return"] == {"s": [1, 2, 3]}
    assert got["m-exc"]["return"] == {"__exception__": "RuntimeError", "message": "disk on fire"}
    assert got["m-nan"]["return"] == ["nan", "inf"]
    assert got["m-nul"]["return"] == "before\ufffdafter"
    assert got["m-keys"]["return"] == {"(1, 2)": "tuple", "7": "int"}
    assert got["m-surrogate"]["return"] == "bad ? byte"
    big = got["m-big"]["return"]
    assert big[TRUNCATED_KEY] is True and big["bytes"] == 500_002 and big["limit"] == 100_000
    assert got["m-big"]["success"] is True and got["m-big"]["retcode"] == 0
    flags = dict(owner.execute("SELECT minion_id, truncated FROM salt_job_returns "
                               "WHERE tenant_id = %s AND jid = %s", (tenant_id, jid)).fetchall())
    assert flags["m-big"] is True and flags["m-set"] is False
    assert cache.bad_records == 0 and cache.writer.stats["rejected"] == 0


def test_malformed_jids_are_refused_loudly_and_the_rest_is_stored(caches, tenant_id, owner,
                                                                    caplog):
    cache = caches(tenant_id)
    jid = new_jid()
    with caplog.at_level(logging.ERROR):
        cache.returner(ret(jid, "good-1"))
        for bad in (None, "", "x" * 300, "two\nlines", ["a", "list"]):
            cache.returner(ret(bad, "bad"))  # never raises into the master
        cache.returner(ret(jid, None))       # malformed minion id
        cache.returner(ret(jid, "good-2"))
    assert cache.flush(30)
    assert set(cache.get_jid(jid)) == {"good-1", "good-2"}
    assert cache.bad_records == 6
    assert count(owner, "salt_job_returns", tenant_id) == 2
    refused = [r for r in caplog.records if "not stored" in r.getMessage()]
    assert len(refused) == 6 and "jid" in refused[0].getMessage()


def test_a_row_postgres_refuses_is_set_aside_and_its_batch_stored(caches, tenant_id, owner,
                                                                   tmp_path):
    cache = caches(tenant_id, batch_size=100, cachedir=tmp_path / "c")
    jid = new_jid()
    writer = cache.writer
    for i in range(50):
        cache.returner(ret(jid, f"m-{i:02d}"))
    # A row whose JSON PostgreSQL cannot parse (as if the spool file had been damaged).
    writer.submit(b"r\t" + jid.encode() + b"\tm-bad\t\\N\t\\N\t\\N\tf\t1.0\t1.0\t{not json\t\\N\n")
    for i in range(50, 100):
        cache.returner(ret(jid, f"m-{i:02d}"))
    assert cache.flush(60)
    assert count(owner, "salt_job_returns", tenant_id) == 100
    assert writer.stats["rejected"] == 1
    (kept,) = (tmp_path / "c" / "serverflow" / "spool" / "rejected").iterdir()
    assert b"m-bad" in kept.read_bytes() and b"json" in kept.read_bytes().splitlines()[0]


def test_database_disappearing_mid_batch_loses_and_duplicates_nothing(caches, tenant_id, owner,
                                                                        services):
    cache = caches(tenant_id, batch_size=100_000, flush_interval=600)  # held until flush()
    jids = [new_jid() + f"_{k}" for k in range(20)]
    for k, jid in enumerate(jids):
        for i in range(1000):
            cache.returner(ret(jid, f"minion-{i:04d}", {"k": k, "i": i, "pad": "p" * 200}))
    killed: list[int] = []

    admin = psycopg.connect(services.dsn("super", "serverflow"), autocommit=True)

    def kill_while_active() -> None:  # the superuser sees and may end other roles' sessions
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not killed:
            rows = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND state = 'active' "
                "AND query NOT LIKE 'SELECT set%%'",
                (APPLICATION_NAME,)).fetchall()
            killed.extend(1 for r in rows if r[0])
            time.sleep(0.002)

    killer = threading.Thread(target=kill_while_active)
    killer.start()
    assert cache.flush(120)
    killer.join()
    admin.close()
    assert killed, "the writer's connection was never caught mid-batch"
    assert "unreachable" in cache.writer.stats["last_error"] or \
        "terminat" in cache.writer.stats["last_error"]
    assert count(owner, "salt_job_returns", tenant_id) == 20_000
    per_job = owner.execute("SELECT jid, count(*), count(DISTINCT minion_id) FROM salt_job_returns"
                            " WHERE tenant_id = %s GROUP BY jid", (tenant_id,)).fetchall()
    assert sorted(per_job) == sorted((jid, 1000, 1000) for jid in jids)


def test_replaying_the_same_rows_changes_nothing(services, tenant_id, owner):
    sink = PgSink(services.dsn("app"))
    jid = new_jid()
    load_a = {"fun": "test.ping", "tgt": "*", "tgt_type": "glob", "arg": [], "user": "a"}
    load_b = dict(load_a, user="b")
    block = b"".join([
        records.load_row(jid, {"fun": "derived", "id": "m1", "return": True}, ["m1"], 0,
                         derived=True),
        records.load_row(jid, load_a, ["m1", "m2"], 0),
        records.minions_row(jid, ["m3"], "syndic-1"),
        records.return_row(ret(jid, "m1", "first"), 0),
        records.return_row(ret(jid, "m1", "second"), 0),
        records.return_row(ret(jid, "m2"), 0),
        records.load_row(jid, load_b, None, 0),
        records.endtime_row(jid, "2024, Jan 01 00:00:00.000000"),
        records.event_row("salt/job/x/new", {"a": 1}, "m", 0),
    ])
    try:
        for _ in range(3):
            sink.write(tenant_id, block)
    finally:
        sink.close()
    job = owner.execute("SELECT load, load_source, minions, endtime FROM salt_jobs "
                        "WHERE tenant_id = %s AND jid = %s", (tenant_id, jid)).fetchone()
    assert job[0]["user"] == "b" and job[1] == "publish"  # authoritative, last one wins
    assert job[2] == ["m1", "m2", "m3"] and job[3] == "2024, Jan 01 00:00:00.000000"
    returns = dict(owner.execute("SELECT minion_id, full_ret FROM salt_job_returns "
                                 "WHERE tenant_id = %s", (tenant_id,)).fetchall())
    assert returns["m1"]["return"] == "first" and len(returns) == 2  # first return wins
    assert count(owner, "salt_bus_events", tenant_id) == 1
    assert count(owner, "salt_jobs", tenant_id) == 1


def test_executions_are_linked_to_their_jobs_by_jid(caches, tenant_id, services, owner):
    cache = caches(tenant_id)
    app = psycopg.connect(services.dsn("app"), autocommit=True)
    app.execute("SELECT set_config('app.tenant_id', %s, false)", (tenant_id,))
    app.execute("INSERT INTO tenants (id, name, slug) VALUES (%s, 't', %s)",
                (tenant_id, "t-" + tenant_id[:8]))

    def execution(jid: str, targets: list[str], status: str = "pending") -> str:
        return str(app.execute(
            "INSERT INTO executions (tenant_id, job_id, targets, module, status) "
            "VALUES (%s, %s, %s, 'test.arg', %s) RETURNING id",
            (tenant_id, jid, json.dumps(targets), status)).fetchone()[0])

    def state(exec_id: str):
        return app.execute("SELECT status, results, started_at, completed_at FROM executions "
                           "WHERE id = %s", (exec_id,)).fetchone()

    ok_jid, bad_jid, late_jid, done_jid = (cache.prep_jid() for _ in range(4))
    for jid in (ok_jid, bad_jid, late_jid, done_jid):
        cache.save_load(jid, {"jid": jid, "fun": "test.arg", "tgt": ["a", "b"], "tgt_type": "list",
                              "arg": [], "user": "ops"}, ["a", "b"])
    ok, bad = execution(ok_jid, ["a", "b"]), execution(bad_jid, ["a", "b"])
    done = execution(done_jid, ["a", "b"], status="cancelled")
    cache.returner(ret(ok_jid, "a", 1))
    assert cache.flush(30)
    status, results, started, completed = state(ok)
    assert status == "running" and results == {"a": {"return": 1, "retcode": 0, "success": True}}
    assert started is not None and completed is None
    cache.returner(ret(ok_jid, "b", 2))
    cache.returner(ret(bad_jid, "a", 1))
    cache.returner(ret(bad_jid, "b", "boom", retcode=1, success=False))
    cache.returner(ret(late_jid, "a", 1))
    cache.returner(ret(late_jid, "b", 1))
    cache.returner(ret(done_jid, "a", 1))
    cache.returner(ret(done_jid, "b", 1))
    assert cache.flush(30)
    status, results, _, completed = state(ok)
    assert status == "completed" and set(results) == {"a", "b"} and completed is not None
    assert state(bad)[0] == "failed"
    assert state(done)[0] == "cancelled"  # a state set by someone else is kept
    late = execution(late_jid, ["a", "b"])  # the row arrives after its returns
    status, results, _, completed = state(late)
    assert status == "completed" and set(results) == {"a", "b"} and completed is not None
    app.close()


def test_clean_old_jobs_expires_in_batches_and_can_archive(caches, tenant_id, owner):
    cache = caches(tenant_id, clean_batch=300, archive=False)
    old = [new_jid(offset_days=3) + f"_{k}" for k in range(5)]
    recent = cache.prep_jid()
    for jid in [*old, recent]:
        cache.save_load(jid, {"jid": jid, "fun": "test.ping", "tgt": "*", "tgt_type": "glob",
                              "arg": [], "user": "root"}, [])
        for i in range(400):
            cache.returner(ret(jid, f"m-{i:03d}"))
    cache.event_return([{"tag": "salt/job/x/new", "data": {"i": i}} for i in range(10)])
    assert cache.flush(60)
    owner.execute("UPDATE salt_bus_events SET created_at = now() - interval '3 days' "
                  "WHERE tenant_id = %s AND data->>'i' IN ('0', '1', '2')", (tenant_id,))
    result = cache.clean_old_jobs()
    assert result.finished and (result.jobs, result.returns, result.events) == (5, 2000, 3)
    assert count(owner, "salt_jobs", tenant_id) == 1
    assert count(owner, "salt_job_returns", tenant_id) == 400
    assert count(owner, "salt_bus_events", tenant_id) == 7
    assert cache.get_load(recent)["fun"] == "test.ping" and cache.get_load(old[0]) == {}

    archiving = caches(tenant_id, clean_batch=100, archive=True)
    owner.execute("UPDATE salt_jobs SET started_at = now() - interval '2 days' "
                  "WHERE tenant_id = %s", (tenant_id,))
    archiving.clean_old_jobs()
    assert count(owner, "salt_jobs", tenant_id) == 0
    assert count(owner, "salt_jobs_archive", tenant_id) == 1
    assert count(owner, "salt_job_returns_archive", tenant_id) == 400
    budget = caches(tenant_id, clean_batch=1, clean_budget=0.1)
    many = [new_jid(offset_days=3) + f"_b{k}" for k in range(60)]
    for jid in many:
        for i in range(3):
            budget.returner(ret(jid, f"m-{i}"))
    assert budget.flush(30)
    rounds = [budget.clean_old_jobs()]
    assert not rounds[0].finished  # one call stops at its time budget ...
    while not rounds[-1].finished and len(rounds) < 100:
        rounds.append(budget.clean_old_jobs())
    assert rounds[-1].finished  # ... and the next ones carry on
    assert sum(r.jobs for r in rounds) == 60 and sum(r.returns for r in rounds) == 180
    assert count(owner, "salt_job_returns", tenant_id) == 0


def test_tenants_never_see_each_others_jobs(caches, owner):
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    cache_a, cache_b = caches(a), caches(b)
    jid = new_jid()
    cache_a.save_load(jid, {"jid": jid, "fun": "test.ping", "tgt": "*", "tgt_type": "glob",
                            "arg": [], "user": "a"}, ["m"])
    cache_a.returner(ret(jid, "m"))
    cache_a.update_endtime(jid, "2026, Jan 01 00:00:01.000000")
    assert cache_a.flush(30)
    assert cache_a.get_jid(jid) and cache_a.get_load(jid)["user"] == "a"
    assert cache_a.get_fun("test.arg") == {"m": {"return": True, "retcode": 0, "success": True,
                                                 "jid": jid, "fun": "test.arg"}}
    assert cache_a.get_endtime(jid) == "2026, Jan 01 00:00:01.000000"
    assert cache_a.get_endtime(new_jid()) is False
    assert cache_b.get_fun("test.arg") == {} and cache_b.get_endtime(jid) is False
    assert cache_b.get_jid(jid) == {} and cache_b.get_load(jid) == {}
    assert jid not in [j for j, _, _ in cache_b.jobs()]
    assert cache_b.get_minions() == [] and cache_a.get_minions() == ["m"]


def test_reads_see_unflushed_rows_and_survive_a_missing_database(caches, tenant_id, tmp_path):
    down = caches(tenant_id, dsn="postgresql://serverflow_app:x@127.0.0.1:1/serverflow",
                  cachedir=tmp_path / "down")
    jid = down.prep_jid()
    down.save_load(jid, {"jid": jid, "fun": "test.echo", "arg": ["hi"], "tgt": "*",
                         "tgt_type": "glob", "user": "root"}, ["m1", "m2"])
    down.returner(ret(jid, "m1", "hi"))
    load = down.get_load(jid)
    assert load["fun"] == "test.echo" and load["Minions"] == ["m1", "m2"]
    assert down.get_jid(jid) == {"m1": {"return": "hi", "retcode": 0, "success": True}}
    assert [j for j, _, _ in down.jobs()] == [jid]
    assert down.get_minions() == ["m1"]
    assert not down.flush(1)  # nothing can be written, and nothing was dropped
    assert down.writer.stats["dropped"] == 0 and "unreachable" in down.writer.stats["last_error"]


def test_a_reader_outlives_a_dropped_connection_and_never_calls_a_job_missing(caches, tenant_id,
                                                                            services, tmp_path):
    """LocalClient asks ``get_load`` right after publishing and stops waiting for returns when
    it gets ``{}``: a reader whose connection PostgreSQL dropped while idle must reconnect and
    answer, and one that cannot reach PostgreSQL must not call a job that may exist unknown."""
    from salt_ext.errors import ServerFlowError

    cache = caches(tenant_id)
    jid = cache.prep_jid()
    cache.save_load(jid, {"jid": jid, "fun": "test.ping", "arg": [], "tgt": "*",
                          "tgt_type": "glob", "user": "root"}, ["m1"])
    assert cache.flush(30)  # in PostgreSQL only: the spool no longer holds it
    assert cache.get_load(jid)["fun"] == "test.ping"
    backend = cache.reader._conn.info.backend_pid
    with psycopg.connect(services.dsn("super", "serverflow"), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (backend,)).fetchone()[0]
    time.sleep(0.2)
    assert cache.get_load(jid)["fun"] == "test.ping"  # reconnected at once, same answer
    assert cache.get_load(new_jid()) == {}  # a jid nobody published: unknown, truly

    down = caches(tenant_id, dsn="postgresql://serverflow_app:x@127.0.0.1:1/serverflow",
                  cachedir=tmp_path / "down")
    with pytest.raises(ServerFlowError) as raised:
        down.get_load(jid)  # neither the spool nor the database can say
    assert raised.value.code == "SYS001"
    spooled = down.prep_jid()
    down.save_load(spooled, {"jid": spooled, "fun": "test.echo", "arg": ["x"], "tgt": "*",
                             "tgt_type": "glob", "user": "root"}, ["m1"])
    assert down.get_load(spooled)["fun"] == "test.echo"  # the spool answers alone


# -- a full spool disk ------------------------------------------------------------------------
SPOOL_FS_BYTES = 128 * 1024


@pytest.fixture
def tiny_disk(tmp_path):
    """A 128 KiB filesystem for the spool (tmpfs when we may mount, else a file-size limit)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SPOOL_FS_BYTES}", "tmpfs", str(mount)],
        capture_output=True).returncode == 0
    yield mount, mounted
    if mounted:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill_spool(opts: dict, mounted: bool, count: int, wait: float, queue) -> None:
    """In a child process: feed ``count`` returns into a returner whose spool disk fills up."""
    import resource
    import signal

    if not mounted:  # every spool file then stops growing at the limit: "disk full" (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (SPOOL_FS_BYTES, SPOOL_FS_BYTES))
    logging.basicConfig(level=logging.CRITICAL)
    records_seen: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records_seen.append(record.getMessage())

    logging.getLogger("salt_ext").addHandler(Catch(level=logging.CRITICAL))
    cache = JobCache.for_opts(opts)
    jid = new_jid()
    for i in range(count):
        cache.returner(ret(jid, f"m-{i:05d}", {"pad": "x" * 300}))
    flushed = cache.flush(wait)
    stats = dict(cache.writer.stats)
    spooled = b"".join(b"".join(pending_bytes(d)) for d in writer_dirs(
        cache.settings.spool_root))
    minions = [line.split(b"\t")[2].decode() for line in spooled.splitlines()]
    queue.put({"jid": jid, "flushed": flushed, "stats": stats, "spooled": minions,
               "critical": records_seen})
    queue.close()
    queue.join_thread()


def _run_filler(opts: dict, mounted: bool, count: int, wait: float) -> dict:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_fill_spool, args=(opts, mounted, count, wait, queue))
    child.start()
    try:
        return queue.get(timeout=120)
    finally:
        child.join(30)


def test_full_spool_disk_with_database_down_keeps_the_oldest_and_says_so(tiny_disk, tenant_id):
    mount, mounted = tiny_disk
    opts = opts_for("postgresql://serverflow_app:x@127.0.0.1:1/serverflow", tenant_id, mount,
                    buffer_max=100, spool_segment_bytes=1 << 20)
    out = _run_filler(opts, mounted, 2000, wait=1)
    spooled, stats = out["spooled"], out["stats"]
    assert not out["flushed"] and stats["submitted"] == 2000
    assert 100 < len(spooled) < 2000
    assert spooled == [f"m-{i:05d}" for i in range(len(spooled))]  # the oldest, in order
    assert stats["dropped"] == 2000 - len(spooled)
    assert any("full" in m and "oldest" in m for m in out["critical"])
    assert any("DROPPED" in m for m in out["critical"])


def test_full_spool_disk_with_database_up_still_stores_everything(tiny_disk, tenant_id, services,
                                                                  owner):
    mount, mounted = tiny_disk
    opts = opts_for(services.dsn("app"), tenant_id, mount, buffer_max=50_000,
                    batch_size=5000, flush_interval=2)
    out = _run_filler(opts, mounted, 2000, wait=60)
    assert out["flushed"] and out["stats"]["dropped"] == 0
    assert any("full" in m for m in out["critical"])
    assert count(owner, "salt_job_returns", tenant_id) == 2000
    shutil.rmtree(mount / "serverflow", ignore_errors=True)


def test_salt_call_return_serverflow_stores_the_minion_side_return(services, tenant_id, owner,
                                                                   tmp_path):
    """``--return serverflow`` on a minion: the returner runs in a short-lived process, whose
    exit flush writes the return before it ends (the spool would keep it otherwise)."""
    import yaml

    (tmp_path / "minion").write_text(yaml.safe_dump({
        "id": "call-minion", "file_client": "local", "root_dir": str(tmp_path),
        "cachedir": str(tmp_path / "cache"), "pki_dir": str(tmp_path / "pki"),
        "log_file": str(tmp_path / "minion.log"),
        "serverflow": {"tenant_id": tenant_id, "database": {"url": services.dsn("app")}}}))
    proc = subprocess.run([str(services.venv_bin / "salt-call"), "--local", "-c", str(tmp_path),
                           "test.echo", "hello from a minion", "--return", "serverflow",
                           "--out=json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = owner.execute("SELECT minion_id, full_ret, fun FROM salt_job_returns "
                         "WHERE tenant_id = %s", (tenant_id,)).fetchall()
    assert rows == [("call-minion", {"return": "hello from a minion", "retcode": 0,
                                     "success": True}, "test.echo")]
    assert writer_dirs(tmp_path / "cache" / "serverflow" / "spool") == []


def test_nocache_jobs_keep_no_returns_and_passed_jids_are_checked(caches, tenant_id, owner):
    cache = caches(tenant_id)
    quiet = cache.prep_jid(nocache=True)
    kept = cache.prep_jid(passed_jid=new_jid() + "_custom")
    assert kept.endswith("_custom")
    assert cache.prep_jid(passed_jid=20240101000000000001) == "20240101000000000001"
    with pytest.raises(records.BadRecord):
        cache.prep_jid(passed_jid="bad\njid")
    for jid in (quiet, kept):
        cache.returner(ret(jid, "m1"))
    assert cache.flush(30)
    assert cache.get_jid(quiet) == {} and set(cache.get_jid(kept)) == {"m1"}
    assert count(owner, "salt_job_returns", tenant_id) == 1
