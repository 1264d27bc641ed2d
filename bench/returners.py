"""Benchmark: the serverflow returner beside Salt's pgjsonb, a raw COPY and local_cache.

One run, one PostgreSQL (a private bench stack on loopback, started here), printed
side by side:
  1. ingest of 100k synthetic returns from 1,000 minion ids through Salt's loader:
     serverflow vs pgjsonb (configured per its docs, on a time-bounded sample since it
     opens a connection per return) - returns/s, and time inside returner() per call;
  2. the same rows by a raw COPY into an identical table (the physical limit), and the
     storage half of serverflow alone (its COPY + upserts of the same spooled rows);
     serverflow, storage half and raw COPY take turns on four slices of the stream;
  3. end to end on a live master with two minions: test.ping fan-out latency with
     ``master_job_cache: serverflow`` + ``event_return: serverflow`` vs local_cache only
     (two masters running side by side, pings alternating between them), and the publish
     round trip of both masters during a burst of jobs (do the workers keep answering?).
Timings on a shared 2-core box are noisy: medians, ratios, no pass/fail.

    .venv/bin/python bench/returners.py [--returns 100000] [--pings 30] [--burst 100] [--no-e2e]
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
import yaml  # noqa: E402

from salt_ext.devstack import salt_daemons, stack  # noqa: E402
from salt_ext.devstack.layout import Layout, Ports  # noqa: E402
from salt_ext.jobcache import MASTER_SETTINGS  # noqa: E402
from salt_ext.jobcache.encoding import copy_json, parse_copy_line  # noqa: E402
from salt_ext.jobcache.service import JobCache  # noqa: E402
from salt_ext.jobcache.sink import PgSink  # noqa: E402

LAYOUT = Layout(REPO / ".bench-returners",
                ports=Ports(postgres=35432, redis=36379, publish=34505, ret=34506, api=38400),
                minions={"bench-web-1": {"tags": ["bench"], "services": []},
                         "bench-db-1": {"tags": ["bench"], "services": []}})
# The local_cache master of the end-to-end comparison (its own keys and minions; it uses
# the first stack's PostgreSQL and Redis for its engine).
LAYOUT_B = Layout(REPO / ".bench-returners" / "local-cache",
                  ports=Ports(postgres=35432, redis=36379, publish=34515, ret=34516, api=38401),
                  minions={"bench-b-web-1": {"tags": ["bench"], "services": []},
                           "bench-b-db-1": {"tags": ["bench"], "services": []}})
PGJSONB_DB = "salt_pgjsonb_bench"
# pgjsonb's schema, as its module documentation gives it.
PGJSONB_SCHEMA = """
CREATE TABLE jids (jid varchar(255) NOT NULL primary key, load jsonb NOT NULL);
CREATE INDEX idx_jids_jsonb on jids USING gin (load) WITH (fastupdate=on);
CREATE TABLE salt_returns (
  fun varchar(50) NOT NULL, jid varchar(255) NOT NULL, return jsonb NOT NULL,
  id varchar(255) NOT NULL, success varchar(10) NOT NULL, full_ret jsonb NOT NULL,
  alter_time TIMESTAMP WITH TIME ZONE DEFAULT NOW());
CREATE INDEX idx_salt_returns_id ON salt_returns (id);
CREATE INDEX idx_salt_returns_jid ON salt_returns (jid);
CREATE INDEX idx_salt_returns_fun ON salt_returns (fun);
CREATE INDEX idx_salt_returns_return ON salt_returns USING gin (return) with (fastupdate=on);
CREATE INDEX idx_salt_returns_full_ret ON salt_returns USING gin (full_ret) with (fastupdate=on);
CREATE SEQUENCE seq_salt_events_id;
CREATE TABLE salt_events (
    id BIGINT NOT NULL UNIQUE DEFAULT nextval('seq_salt_events_id'), tag varchar(255) NOT NULL,
    data jsonb NOT NULL, alter_time TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    master_id varchar(255) NOT NULL);
CREATE INDEX idx_salt_events_tag on salt_events (tag);
CREATE INDEX idx_salt_events_data ON salt_events USING gin (data) with (fastupdate=on);
"""


def synthetic_returns(count: int, minions: int) -> list[dict]:
    """``count`` returns of ``count // minions`` jobs, a mix of small and mid-sized payloads."""
    base = datetime.datetime.now(tz=datetime.timezone.utc)
    jids = [(base + datetime.timedelta(microseconds=k)).strftime("%Y%m%d%H%M%S%f")
            for k in range(max(1, count // minions))]
    shapes = [
        ("test.ping", lambda i: True),
        ("status.loadavg", lambda i: {"1-min": i % 7 / 10, "5-min": 0.2, "15-min": 0.31}),
        ("disk.usage", lambda i: {f"/mnt/vol{d}": {
            "filesystem": f"/dev/vd{chr(97 + d)}1", "1K-blocks": 102400000 + i,
            "used": 51200000 + d, "available": 51200000 - d, "capacity": f"{40 + d}%"}
            for d in range(6)}),
    ]
    out = []
    for i in range(count):
        fun, make = shapes[i % 3]
        out.append({"jid": jids[i // minions], "id": f"minion-{i % minions:04d}", "fun": fun,
                    "fun_args": [], "return": make(i), "retcode": 0, "success": True,
                    "cmd": "_return", "_stamp": "2026-01-01T00:00:00.000000"})
    return out


def master_opts(workdir: Path, tenant: str) -> dict:
    """Master opts with both returners configured (ours: serverflow:, pgjsonb: its docs)."""
    import salt.config

    sec = LAYOUT.secrets()
    config = {
        "root_dir": str(workdir), "cachedir": str(workdir / "cache"),
        "pki_dir": str(workdir / "pki"), "sock_dir": str(workdir / "sock"),
        "log_file": str(workdir / "master.log"), "id": "bench-master",
        "serverflow": {"tenant_id": tenant, "database": {"url": LAYOUT.dsn("app")}},
        "returner.pgjsonb.host": "127.0.0.1", "returner.pgjsonb.port": LAYOUT.ports.postgres,
        "returner.pgjsonb.user": "serverflow", "returner.pgjsonb.pass": sec["owner_password"],
        "returner.pgjsonb.db": PGJSONB_DB,
    }
    path = workdir / "master"
    path.write_text(yaml.safe_dump(config))
    return salt.config.master_config(str(path))


def timed_calls(fn, loads, budget: float | None = None) -> tuple[list[float], float, int]:
    """Per-call seconds, wall seconds and calls made (stops early after ``budget`` s)."""
    calls: list[float] = []
    started = time.perf_counter()
    for load in loads:
        t = time.perf_counter()
        fn(load)
        calls.append(time.perf_counter() - t)
        if budget is not None and time.perf_counter() - started > budget:
            break
    return calls, time.perf_counter() - started, len(calls)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def raw_copy_rows(spooled: bytes, tenant: str) -> bytes:
    """The spooled return rows in salt_job_returns' own column layout."""
    out = []
    for line in spooled.splitlines(keepends=True):
        f = parse_copy_line(line)
        if f[0] != "r":
            continue
        at = datetime.datetime.fromtimestamp(float(f[7]), tz=datetime.timezone.utc).isoformat()
        out.append("\t".join([tenant, f[1], f[2], f[3], copy_json(f[10]), f[4], f[5],
                              copy_json(f[9]), f[6], at]) + "\n")
    return "".join(out).encode()


RAW_COPY = ("COPY bench_raw_returns (tenant_id, jid, minion_id, fun, fun_args, success, retcode,"
            " full_ret, truncated, returned_at) FROM STDIN")


def ingest(count: int, minions: int, chunks: int = 4) -> dict:
    """serverflow, its storage half and a raw COPY take turns on ``chunks`` slices of the same
    stream, so the box's changing load falls on all three alike; pgjsonb gets a sample."""
    import salt.loader

    loads = synthetic_returns(count, minions)
    work = Path(tempfile.mkdtemp(prefix="sf-bench-"))
    tenant, tenant2 = str(uuid.uuid4()), str(uuid.uuid4())
    spent = {"ours": 0.0, "storage": 0.0, "raw": 0.0}
    calls: list[float] = []
    try:
        opts = master_opts(work, tenant)
        returners = salt.loader.returners(opts, {})
        ours = returners["serverflow.returner"]
        cache = JobCache.for_opts(opts)
        sink = PgSink(LAYOUT.dsn("app"))
        owner = psycopg.connect(LAYOUT.dsn("owner"))
        owner.execute("DROP TABLE IF EXISTS bench_raw_returns")
        owner.execute("CREATE TABLE bench_raw_returns (LIKE salt_job_returns INCLUDING ALL)")
        owner.commit()
        size = -(-count // chunks)
        for k in range(0, count, size):
            part = loads[k:k + size]
            # serverflow: every returner() call, until all of them are committed
            t = time.perf_counter()
            calls += timed_calls(ours, part)[0]
            assert cache.flush(600), "serverflow did not finish writing"
            spent["ours"] += time.perf_counter() - t
            # the same rows as the returner spools them: its COPY + upserts alone ...
            lines = _rows(part, cache)
            step = 4 * cache.settings.batch_size
            t = time.perf_counter()
            for i in range(0, len(lines), step):
                sink.write(tenant2, b"".join(lines[i:i + step]))
            spent["storage"] += time.perf_counter() - t
            # ... and a raw COPY of them into an identical table: the physical limit
            raw = raw_copy_rows(b"".join(lines), tenant2)
            t = time.perf_counter()
            with owner.cursor() as cur, cur.copy(RAW_COPY) as copy:
                copy.write(raw)
            owner.commit()
            spent["raw"] += time.perf_counter() - t
        stored = owner.execute("SELECT count(*) FROM salt_job_returns WHERE tenant_id = %s",
                               (tenant,)).fetchone()[0]
        assert stored == count, f"serverflow stored {stored} of {count}"
        owner.execute("DROP TABLE bench_raw_returns")
        owner.commit()
        owner.close()
        sink.close()
        results = {"ours": {"rate": count / spent["ours"], "median": statistics.median(calls),
                            "p99": pct(calls, 0.99), "n": count},
                   "storage": count / spent["storage"], "raw_copy": count / spent["raw"]}
        # pgjsonb: the same stream, a time-bounded sample (it connects once per return)
        theirs = returners["pgjsonb.returner"]
        theirs(loads[0])  # import/connect warm-up, like ours had its first call
        calls, wall, made = timed_calls(theirs, loads[1:], budget=10.0)
        results["pgjsonb"] = {"rate": made / wall, "median": statistics.median(calls),
                              "p99": pct(calls, 0.99), "n": made}
        cache.close(5)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def _rows(loads: list[dict], cache: JobCache) -> list[bytes]:
    from salt_ext.jobcache import records

    return [records.return_row(load, cache.settings.max_return_bytes) for load in loads]


def prepare_pgjsonb() -> None:
    with psycopg.connect(LAYOUT.dsn("super", "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PGJSONB_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PGJSONB_DB}" OWNER serverflow')
    with psycopg.connect(LAYOUT.dsn("owner", PGJSONB_DB), autocommit=True) as conn:
        conn.execute(PGJSONB_SCHEMA)


def timed_ping(client, layout: Layout) -> float:
    t = time.perf_counter()
    ret = client.cmd("*", "test.ping", timeout=20)
    took = time.perf_counter() - t
    assert set(ret) == set(layout.minions), ret
    return took


def end_to_end(pings: int, burst: int) -> dict:
    """Two masters side by side on the same PostgreSQL and Redis: A with the serverflow job
    cache and event returns (the `make up` default), B with local_cache only; pings alternate
    A, B, A, B... so the box's changing load hits both alike."""
    settings = stack.settings_for(LAYOUT)
    local_only = {"master_job_cache": "local_cache", "event_return": [],
                  "serverflow": {"tenant_id": str(uuid.uuid4()),
                                 "database": settings["database"], "redis": settings["redis"]}}
    for layout, extra in ((LAYOUT, MASTER_SETTINGS), (LAYOUT_B, local_only)):  # start together
        salt_daemons.write_configs(layout, extra)
        salt_daemons.start_master(layout)
        for minion_id in layout.minions:
            salt_daemons.start_minion(layout, minion_id)
    for layout in (LAYOUT, LAYOUT_B):
        answered = salt_daemons.wait_minions(layout, list(layout.minions), timeout=300)
        assert answered == set(layout.minions), f"minions did not answer: {answered}"
    assert yaml.safe_load((LAYOUT.etc / "master").read_text())["master_job_cache"] == "serverflow"
    assert yaml.safe_load((LAYOUT_B.etc / "master").read_text())["master_job_cache"] == \
        "local_cache"
    client_a, client_b = salt_daemons.local_client(LAYOUT), salt_daemons.local_client(LAYOUT_B)
    try:
        for _ in range(3):  # warm-up
            timed_ping(client_a, LAYOUT), timed_ping(client_b, LAYOUT_B)
        ours, theirs = [], []
        for _ in range(pings):
            ours.append(timed_ping(client_a, LAYOUT))
            theirs.append(timed_ping(client_b, LAYOUT_B))
        # A burst: publish requests back to back while returns pour in; a master whose
        # workers block on their job cache answers these late.
        pub_a, pub_b = [], []
        for n in range(burst):
            for client, out in ((client_a, pub_a), (client_b, pub_b)):
                t = time.perf_counter()
                assert client.cmd_async("*", "test.echo", [f"burst-{n}"])
                out.append(time.perf_counter() - t)
    finally:
        client_a.destroy()
        client_b.destroy()
    return {"ours": statistics.median(ours), "theirs": statistics.median(theirs), "n": pings,
            "pub_ours": (statistics.median(pub_a), max(pub_a)),
            "pub_theirs": (statistics.median(pub_b), max(pub_b)), "burst": burst}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--returns", type=int, default=100_000)
    parser.add_argument("--minions", type=int, default=1000)
    parser.add_argument("--pings", type=int, default=30)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--no-e2e", action="store_true")
    parser.add_argument("--keep", action="store_true", help="leave the bench stack running")
    args = parser.parse_args()
    started = time.monotonic()
    print(f"bench stack: {LAYOUT.home} (PostgreSQL 127.0.0.1:{LAYOUT.ports.postgres}), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    try:
        stack.start_services(LAYOUT)
        prepare_pgjsonb()
        ing = ingest(args.returns, args.minions)
        e2e = None if args.no_e2e else end_to_end(args.pings, args.burst)
    finally:
        if not args.keep:
            salt_daemons.stop_all(LAYOUT_B)
            stack.down(LAYOUT)
    ours, pg = ing["ours"], ing["pgjsonb"]
    row = "  {:<44} {:>14} {:>24} {:>10}"
    print()
    print(row.format("", "serverflow", "baseline", "ratio"))
    print(row.format(f"ingest, returns/s ({ours['n']:,} from {args.minions:,} minions)",
                     f"{ours['rate']:,.0f}", f"pgjsonb {pg['rate']:,.0f} (n={pg['n']:,})",
                     f"{ours['rate'] / pg['rate']:.1f}x"))
    print(row.format("time inside returner(), median", f"{ours['median'] * 1e3:.3f} ms",
                     f"pgjsonb {pg['median'] * 1e3:.3f} ms",
                     f"{pg['median'] / ours['median']:.0f}x"))
    print(row.format("time inside returner(), p99", f"{ours['p99'] * 1e3:.3f} ms",
                     f"pgjsonb {pg['p99'] * 1e3:.3f} ms", f"{pg['p99'] / ours['p99']:.0f}x"))
    print(row.format("ingest vs raw COPY of the same rows, rows/s", f"{ours['rate']:,.0f}",
                     f"COPY {ing['raw_copy']:,.0f}", f"{ours['rate'] / ing['raw_copy']:.0%}"))
    print(row.format("  storage half only (COPY + upserts), rows/s", f"{ing['storage']:,.0f}",
                     f"COPY {ing['raw_copy']:,.0f}", f"{ing['storage'] / ing['raw_copy']:.0%}"))
    if e2e:
        print(row.format(f"test.ping fan-out to 2 minions, median (n={e2e['n']})",
                         f"{e2e['ours'] * 1e3:.0f} ms", f"local_cache {e2e['theirs'] * 1e3:.0f} ms",
                         f"{e2e['ours'] / e2e['theirs']:.2f}"))
        (med_a, max_a), (med_b, max_b) = e2e["pub_ours"], e2e["pub_theirs"]
        print(row.format(f"publish round trip in a burst of {e2e['burst']}, median",
                         f"{med_a * 1e3:.0f} ms", f"local_cache {med_b * 1e3:.0f} ms",
                         f"{med_a / med_b:.2f}"))
        print(row.format("  slowest publish of the burst", f"{max_a * 1e3:.0f} ms",
                         f"local_cache {max_b * 1e3:.0f} ms", f"{max_a / max_b:.2f}"))
    print("\n  goals: >= 20x pgjsonb, <= 0.2 ms median in returner(), >= 50% of raw COPY, "
          "e2e ratio <= 1.10")
    print(f"  ({time.monotonic() - started:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
