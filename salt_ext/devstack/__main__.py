"""``python -m salt_ext.devstack up|down|status``: the commands behind ``make up/down/status``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from salt_ext.devstack import stack
from salt_ext.devstack.layout import Layout
from salt_ext.devstack.postgres import StackError


def _rel(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def _print_up(layout: Layout, result: dict) -> None:
    etc = _rel(layout.etc)
    venv = _rel(layout.venv_bin)
    sec = layout.secrets()
    pids = stack.status(layout)
    print(f"\nServerFlow is up ({result['seconds']}s).")
    print(f"  PostgreSQL   127.0.0.1:{layout.ports.postgres} database serverflow   pid {pids['postgres']}")
    print(f"  Redis        127.0.0.1:{layout.ports.redis}                         pid {pids['redis']}")
    print(f"  salt-master  127.0.0.1:{layout.ports.publish}/{layout.ports.ret} (engine serverflow)"
          f"   pid {pids['salt-master']}")
    for minion in layout.minions:
        state = result["inventory"].get(minion, "not in inventory yet")
        print(f"  minion       {minion:<14} {state:<8}                 pid {pids[f'minion-{minion}']}")
    print(f"  salt-api     http://127.0.0.1:{layout.ports.api}                pid {pids['salt-api']}")
    print(f"\nURL:   http://127.0.0.1:{layout.ports.api}/ui/   (web app; REST API under /v1,"
          f" OpenAPI at /v1/openapi.json; Salt's own endpoints unchanged at /)")
    admin = result.get("admin") or {}
    if admin:
        print(f"Login: {admin['email']} / {admin['password']}   (eauth serverflow, role owner;"
              " generated once, kept in secrets.json)")
        print(f"  curl -si http://127.0.0.1:{layout.ports.api}/login -d eauth=serverflow "
              f"-d username={admin['email']} -d password='{admin['password']}'")
    print(f"Automation (dev only): username admin, password {sec['api_secret']} (eauth sharedsecret)")
    print("\nSalt CLIs against this stack:")
    print(f"  {venv}/salt -c {etc} '*' test.ping")
    print(f"  {venv}/salt-run -c {etc} serverflow.servers --out=json")
    print(f"  {venv}/salt-run -c {etc} serverflow.health")
    print("\nStop everything with `make down`; logs are in", _rel(layout.logs))
    missing = sorted(set(layout.minions) - set(result["answered"]))
    if missing:
        print(f"\nWARNING: minions did not answer: {', '.join(missing)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m salt_ext.devstack")
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--home", default=os.environ.get("SERVERFLOW_HOME", ".serverflow"),
                        help="state directory (default .serverflow)")
    parser.add_argument("--no-api", action="store_true", help="do not start salt-api")
    args = parser.parse_args(argv)
    layout = Layout(Path(args.home))
    try:
        if args.command == "up":
            result = stack.up(layout, api=not args.no_api)
            _print_up(layout, result)
            return 0 if set(result["answered"]) >= set(layout.minions) else 1
        if args.command == "down":
            stopped = stack.down(layout)
            print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
            return 0
        states = stack.status(layout)
        for name, pid in states.items():
            print(f"  {name:<22} {'running, pid ' + str(pid) if pid else 'stopped'}")
        return 0 if all(states.values()) else 3
    except StackError as exc:
        print(f"serverflow: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # one line, not a traceback wall
        from salt_ext.engine.inventory_service import describe

        print(f"serverflow: {args.command} failed: {describe(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
