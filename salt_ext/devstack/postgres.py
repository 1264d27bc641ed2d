"""A private PostgreSQL cluster for the stack: initdb, pg_ctl, roles and database."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from salt_ext.devstack import processes
from salt_ext.devstack.layout import Layout


class StackError(RuntimeError):
    """A stack component could not be set up; the message says what to do."""


def bin_dir() -> Path:
    """Directory of initdb/pg_ctl: Debian's newest postgresql-N, else PATH."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if dirs:
        return Path(dirs[-1])
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise StackError("PostgreSQL server binaries not found: install them with "
                     "`apt-get install postgresql-15` (make up does this)")


def _as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; Debian's package creates the postgres user.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(_as_postgres(argv), capture_output=True, text=True)
    if proc.returncode != 0:
        raise StackError(f"{what} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")


def init_cluster(layout: Layout) -> bool:
    """Create the cluster once; returns True when it was created now."""
    if (layout.pgdata / "PG_VERSION").exists():
        return False
    layout.pgdata.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.pgdata, 0o700)
    _chown(layout.pgdata)
    # The postgres user must be able to reach pgdata through every parent directory.
    for parent in layout.pgdata.parents:
        if os.geteuid() == 0 and parent != Path("/"):
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)
    pwfile = layout.pgdata.parent / ".pg_pwfile"
    pwfile.write_text(layout.secrets()["postgres_password"] + "\n")
    os.chmod(pwfile, 0o600)
    _chown(pwfile)
    try:
        _run([str(bin_dir() / "initdb"), "-D", str(layout.pgdata), "-U", "postgres",
              "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8"],
             "initdb")
    finally:
        pwfile.unlink(missing_ok=True)
    return True


def start(layout: Layout) -> int:
    """Start (or find running) the cluster; returns the postmaster pid."""
    pid = processes.running(layout.run, "postgres")
    if pid:
        return pid
    layout.logs.mkdir(parents=True, exist_ok=True)
    logfile = layout.logs / "postgres.log"
    logfile.touch()
    _chown(logfile)
    options = (f"-p {layout.ports.postgres} -c listen_addresses=127.0.0.1 "
               "-c unix_socket_directories='' -c max_connections=200")
    _run([str(bin_dir() / "pg_ctl"), "-D", str(layout.pgdata), "-l", str(logfile),
          "-o", options, "-w", "-t", "60", "start"], "pg_ctl start")
    pid = int((layout.pgdata / "postmaster.pid").read_text().split()[0])
    processes.record(layout.run, "postgres", pid)
    return pid


def stop(layout: Layout) -> bool:
    """Fast shutdown through pg_ctl; falls back to the recorded pid."""
    if not processes.running(layout.run, "postgres"):
        processes.pid_file(layout.run, "postgres").unlink(missing_ok=True)
        return False
    try:
        _run([str(bin_dir() / "pg_ctl"), "-D", str(layout.pgdata), "-m", "fast", "-w", "stop"],
             "pg_ctl stop")
    except StackError:
        processes.stop(layout.run, "postgres", sig=15)
    processes.pid_file(layout.run, "postgres").unlink(missing_ok=True)
    return True


def _superuser(layout: Layout) -> psycopg.Connection:
    deadline = time.monotonic() + 30
    while True:
        try:
            return psycopg.connect(layout.dsn("super", "postgres"), autocommit=True, connect_timeout=3)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def drop_database(layout: Layout) -> None:
    """Drop the product database (tests start from an empty schema)."""
    with _superuser(layout) as conn:
        conn.execute("DROP DATABASE IF EXISTS serverflow WITH (FORCE)")


def provision(layout: Layout) -> None:
    """Roles (owner + non-owner application role) and the database; idempotent."""
    sec = layout.secrets()
    with _superuser(layout) as conn:
        for role, password in (("serverflow", sec["owner_password"]),
                               ("serverflow_app", sec["app_password"])):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(psycopg.sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                psycopg.sql.SQL(verb), psycopg.sql.Identifier(role),
                psycopg.sql.Literal(password)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'serverflow'").fetchone():
            conn.execute("CREATE DATABASE serverflow OWNER serverflow")
