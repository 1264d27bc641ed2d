"""Benchmark: the REST API under load: GET /v1/servers vs salt-api's own GET /minions.

Starts a stack of its own (see bench/web_chat.py: ``$SERVERFLOW_BENCH_HOME``, default
``.bench-api/``, ports + ``$SERVERFLOW_BENCH_PORT_OFFSET``, default 520) and stops it at
the end. A Python load generator on loopback (asyncio, one HTTP/1.1 keep-alive
connection per client, ``--clients`` 50 concurrent) hits each endpoint for
``--seconds`` after a short warm-up; printed side by side from the same run:
requests/s, median and p99 latency, errors.

- ``GET /v1/servers`` with a bearer access token (ServerFlow: the inventory from PostgreSQL);
- ``GET /minions`` with a Salt token (rest_cherrypy: publishes ``grains.items`` to the
  minions and waits for their returns): the baseline the issue names.

    .venv/bin/python bench/web_api_load.py [--clients 50] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.functional.api_stack import own_stack  # noqa: E402


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length, chunked = 0, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).strip().split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _client(port: int, request: bytes, stop_at: float, record: bool,
                  latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                status = await _one(reader, writer, request)
            except (ConnectionError, asyncio.IncompleteReadError, ValueError, IndexError):
                errors.append(0)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if record:
                if status == 200:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors.append(status)
    finally:
        writer.close()


async def load(port: int, path: str, headers: dict[str, str], clients: int, seconds: float,
               warmup: float = 3.0) -> dict[str, float]:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n"
               f"Connection: keep-alive\r\n{head}\r\n").encode()
    await asyncio.gather(*(_client(port, request, time.perf_counter() + warmup, False, [], [])
                           for _ in range(clients)))
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, request, started + seconds, True, latencies, errors)
                           for _ in range(clients)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies) or [float("nan")]
    return {"requests": len(latencies), "rps": len(latencies) / elapsed,
            "median": statistics.median(ordered), "p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "errors": len(errors)}


def main() -> int:
    # a stopped benchmark still stops its stack (the `with own_stack` exit runs)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    home = Path(os.environ.get("SERVERFLOW_BENCH_HOME", REPO / ".bench-api"))
    offset = int(os.environ.get("SERVERFLOW_BENCH_PORT_OFFSET", "520"))
    with own_stack(home, offset) as (layout, api):
        token = api.login("viewer")["access_token"]
        secret = layout.secrets()["api_secret"]
        salt_login = api.request("POST", "/login", {"username": "admin", "password": secret,
                                                    "eauth": "sharedsecret"})
        salt_token = salt_login.json()["return"][0]["token"]
        servers = api.request("GET", "/v1/servers?limit=100", token=token).json()["pagination"]["total"]
        port = layout.ports.api
        ours = asyncio.run(load(port, "/v1/servers?limit=100", {"Authorization": f"Bearer {token}"},
                                args.clients, args.seconds))
        salts = asyncio.run(load(port, "/minions", {"X-Auth-Token": salt_token}, args.clients, args.seconds))

    print(f"\n{args.clients} concurrent keep-alive clients, {args.seconds:.0f} s each, loopback, "
          f"{servers} servers in the inventory")
    print(f"{'endpoint':<50}{'req/s':>9}{'median ms':>11}{'p99 ms':>9}{'requests':>10}{'errors':>8}")
    for name, r in (("GET /v1/servers (ServerFlow)", ours), ("GET /minions (salt-api rest_cherrypy, baseline)", salts)):
        print(f"{name:<50}{r['rps']:>9.1f}{r['median']:>11.1f}{r['p99']:>9.1f}{r['requests']:>10}{r['errors']:>8}")
    if salts["rps"]:
        print(f"ratio req/s ours/baseline: {ours['rps'] / salts['rps']:.1f}x   "
              f"p99 ours/baseline: {ours['p99'] / salts['p99']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
