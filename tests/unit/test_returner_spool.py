"""The spool and jid allocation on real files and real processes (no database needed)."""

from __future__ import annotations

import datetime
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from salt_ext.jobcache import records, spool as spools
from salt_ext.jobcache.jids import NocacheMarks, allocate
from salt_ext.jobcache.queries import scan
from salt_ext.jobcache.spool import Spool, claim_orphan, pending_bytes, writer_dirs

TENANT = "00000000-0000-4000-8000-0000000000aa"


def _row(i: int, jid: str = "20240101000000000001") -> bytes:
    return records.return_row({"jid": jid, "id": f"m-{i:05d}", "fun": "test.ping",
                               "return": True, "retcode": 0, "success": True}, 0, at=1000.0 + i)


def _spool(tmp_path: Path, **kw) -> Spool:
    opts = {"segment_bytes": 1 << 20, "max_bytes": 0} | kw
    return Spool(tmp_path / "spool", TENANT, **opts)


def test_append_read_ack_in_order(tmp_path):
    sp = _spool(tmp_path, segment_bytes=4096)
    rows = [_row(i) for i in range(200)]
    positions = [sp.append(r) for r in rows]
    assert all(positions) and positions == sorted(positions)
    assert len(list((sp.dir).glob("seg-*.copy"))) > 1  # rotated by size
    data, pos = b"", (1, 0)
    while True:
        chunk, pos = sp.read(pos, 3000)
        if not chunk:
            break
        data += chunk
    assert data == b"".join(rows)
    assert sp.unacked_bytes == len(data)
    sp.ack(positions[99])
    assert sp.unacked_bytes == len(b"".join(rows[100:]))
    assert b"".join(pending_bytes(sp.dir)) == b"".join(rows[100:])
    first_live = positions[99][0]
    assert all(int(p.stem[4:]) >= first_live for p in sp.dir.glob("seg-*.copy"))
    sp.ack(positions[-1])
    assert sp.unacked_bytes == 0 and b"".join(pending_bytes(sp.dir)) == b""
    sp.close()
    assert not sp.dir.exists()  # nothing left to replay: removed


def test_close_keeps_unacknowledged_rows(tmp_path):
    sp = _spool(tmp_path)
    sp.append(_row(1))
    sp.close()
    assert sp.dir.exists() and b"".join(pending_bytes(sp.dir)) == _row(1)


def test_cap_keeps_the_oldest_rows_and_says_so(tmp_path, caplog):
    row = _row(0)
    sp = _spool(tmp_path, max_bytes=len(row) * 10)
    with caplog.at_level(logging.CRITICAL):
        kept = [sp.append(_row(i)) for i in range(25)]
    assert [p is not None for p in kept] == [True] * 10 + [False] * 15
    assert b"".join(pending_bytes(sp.dir)) == b"".join(_row(i) for i in range(10))
    assert any("spool" in r.message and "full" in r.message and "oldest" in r.message
               for r in caplog.records if r.levelno == logging.CRITICAL)
    sp.ack(kept[9])  # flushed: room again
    assert sp.append(_row(99)) is not None


def _own_spool_then_wait(root: str, ready: "multiprocessing.synchronize.Event") -> None:
    sp = Spool(Path(root), TENANT, segment_bytes=1 << 20, max_bytes=0)
    for i in range(50):
        sp.append(_row(i))
    sp.ack(sp.append(_row(50)) and (1, len(_row(0)) * 20))  # the first 20 are stored
    ready.set()
    time.sleep(60)


def test_a_killed_process_leaves_a_spool_others_can_claim(tmp_path):
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    child = ctx.Process(target=_own_spool_then_wait, args=(str(tmp_path / "spool"), ready))
    child.start()
    try:
        assert ready.wait(20)
        (directory,) = writer_dirs(tmp_path / "spool")
        assert claim_orphan(directory) is None  # its owner is alive
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        orphan = claim_orphan(directory)
        assert orphan is not None and orphan.tenant_id == TENANT
        assert claim_orphan(directory) is None  # we hold it now
        data = b"".join(chunk for chunk, _ in orphan.chunks(1 << 20))
        assert data == b"".join(_row(i) for i in range(20, 51))
        orphan.finish()
        assert not directory.exists()
    finally:
        if child.is_alive():
            child.kill()


def test_a_directory_being_created_is_never_claimed(tmp_path):
    root = tmp_path / "spool"
    (root / ".new-123").mkdir(parents=True)
    assert writer_dirs(root) == []


def test_readers_find_unflushed_rows_of_one_job(tmp_path):
    sp = _spool(tmp_path)
    for i in range(5):
        sp.append(_row(i, jid="20240101000000000001"))
    sp.append(_row(7, jid="20240101000000000002"))
    pending = scan(sp.root, "r", "20240101000000000001")
    assert sorted(pending.returns["20240101000000000001"]) == [f"m-{i:05d}" for i in range(5)]
    assert "20240101000000000002" not in pending.returns
    assert set(scan(sp.root, "r").returns) == {"20240101000000000001", "20240101000000000002"}


def test_rejected_rows_are_kept_with_the_reason(tmp_path):
    path = spools.reject(tmp_path, b"r\tbad\n", "invalid input syntax for type json")
    assert path is not None and path.read_bytes().startswith(b"-- invalid input syntax")


def _allocate_many(state: str, count: int, queue) -> None:
    frozen = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
    queue.put([allocate(Path(state), now=frozen) for _ in range(count)])


def test_jids_are_unique_across_processes_even_in_one_microsecond(tmp_path):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_allocate_many, args=(str(tmp_path / "last_jid"), 300, queue))
             for _ in range(4)]
    for proc in procs:
        proc.start()
    jids = [jid for _ in procs for jid in queue.get(timeout=60)]
    for proc in procs:
        proc.join(10)
    assert len(jids) == 1200 and len(set(jids)) == 1200
    assert all(records.normalize_jid(j) and records.jid_epoch(j) for j in jids)
    assert min(jids) == "20240501120000000000"


def test_jids_follow_the_clock_and_take_salts_unique_suffix(tmp_path):
    state = tmp_path / "last_jid"
    now = datetime.datetime.now(tz=datetime.timezone.utc)
    first = allocate(state, now=now)
    assert first == now.strftime("%Y%m%d%H%M%S%f")
    later = allocate(state, now=now + datetime.timedelta(seconds=1), suffix="4242")
    assert later.endswith("_4242") and later[:20] > first


def test_nocache_marks(tmp_path):
    marks = NocacheMarks(tmp_path / "nocache")
    assert not marks.marked("20240101000000000001")
    marks.mark("20240101000000000001")
    marks.mark("../../etc/passwd")
    assert marks.marked("20240101000000000001") and marks.marked("../../etc/passwd")
    assert not (tmp_path / "etc").exists()
    old = time.time() - 7200
    for entry in (tmp_path / "nocache").iterdir():
        os.utime(entry, (old, old))
    assert marks.expire(3600) == 2 and not marks.marked("20240101000000000001")


def test_loader_module_imports_without_salt_daemons():
    code = ("import importlib.util, sys; "
            "spec = importlib.util.spec_from_file_location('sfret', sys.argv[1]); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "print(m.__virtual__())")
    path = Path(__file__).resolve().parents[2] / "_returners" / "serverflow.py"
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "serverflow", out.stderr


def test_readers_look_at_the_newest_rows_only_when_asked(tmp_path):
    sp = _spool(tmp_path, segment_bytes=2000)
    rows = [_row(i) for i in range(100)]
    for row in rows:
        sp.append(row)
    tail = b"".join(rows[-10:])
    assert b"".join(pending_bytes(sp.dir)) == b"".join(rows)
    # a limit falling inside a row starts at the next whole row
    assert b"".join(pending_bytes(sp.dir, len(tail) + 5)) == tail
    assert b"".join(pending_bytes(sp.dir, len(tail))) == tail  # exactly on a row boundary
    assert b"".join(pending_bytes(sp.dir, 1)) == b""
