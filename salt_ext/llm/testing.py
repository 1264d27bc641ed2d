"""Real local LLM servers for tests and benchmarks (never mocks).

- ``ensure_local_model()`` runs the project's own ``scripts/local-llm.py
  --no-configure`` (install llama-cpp-python if missing, assemble and verify
  the model) once per process when either is missing, and fails loudly when it cannot;
- ``LlamaServer``: ``python -m llama_cpp.server`` (OpenAI-compatible) on the model;
- ``AnthropicServer``: ``salt_ext.llm.servers.anthropic_api`` on the model, with
  its fault-injection flags.

Each server is a child process stopped by its pid.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from salt_ext.llm import local_model

PORT_OFFSET = int(os.environ.get("SERVERFLOW_TEST_PORT_OFFSET", "0"))


def server_port(n: int) -> int:
    """Port 18011+n shifted by SERVERFLOW_TEST_PORT_OFFSET (two runs may share a machine)."""
    return 18011 + PORT_OFFSET + n


@functools.lru_cache(maxsize=1)
def ensure_local_model() -> str:
    """The assembled 0.5B model, built by the project's script; AssertionError with the reason otherwise.

    Cached: when the model file (only ever renamed into place after its sha256 matched)
    and llama-cpp-python are both there, the script is not run again.
    """
    found = local_model.find_model()
    if found and local_model.llama_cpp_available():
        return str(found)
    script = local_model.REPO / "scripts" / "local-llm.py"
    proc = subprocess.run([sys.executable, str(script), "--no-configure"], capture_output=True, text=True,
                          timeout=3600)
    found = local_model.find_model()
    assert proc.returncode == 0 and found and local_model.llama_cpp_available(), (
        "the local LLM could not be built by scripts/local-llm.py (tests need it, they do not skip):\n"
        + proc.stdout[-2000:] + proc.stderr[-2000:])
    return str(found)


def _wait_http(url: str, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers (404/405 is an answer)
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class _Process:
    url_path = "/"

    def __init__(self, argv: list[str], port: int, log: Path | None = None) -> None:
        self.port = port
        self.argv = argv
        self.log = log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> "_Process":
        assert port_free(self.port), f"port {self.port} is taken"
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        _wait_http(f"http://127.0.0.1:{self.port}{self.url_path}", timeout, self.proc)
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM if self.proc is not None else signal.SIGKILL)

    def __enter__(self) -> "_Process":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LlamaServer(_Process):
    """llama.cpp's OpenAI-compatible server; ``base_url`` ends in /v1."""

    url_path = "/v1/models"

    def __init__(self, model: str, port: int, n_ctx: int = 4096, threads: int | None = None, log: Path | None = None):
        threads = threads or os.cpu_count() or 2
        super().__init__([sys.executable, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
                          "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
                          "--model_alias", "local-qwen"], port, log)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


class AnthropicServer(_Process):
    """The Messages API server on the local model; ``base_url`` for the anthropic SDK."""

    url_path = "/"

    def __init__(self, model: str, port: int, *, delay: float = 0, fail_first: int = 0, fail_status: int = 429,
                 api_key: str | None = None, log: Path | None = None):
        argv = [sys.executable, "-m", "salt_ext.llm.servers.anthropic_api", "--model", model, "--port", str(port),
                "--delay", str(delay), "--fail-first", str(fail_first), "--fail-status", str(fail_status)]
        if api_key:
            argv += ["--api-key", api_key]
        super().__init__(argv, port, log)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
