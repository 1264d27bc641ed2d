"""LLM settings for command-line tools (evals, benchmarks) that have no master config.

Looked up in order:

1. ``$SERVERFLOW_LLM_CONFIG``: a YAML file holding the ``llm`` block (either
   ``{llm: {...}}``, ``{serverflow: {llm: {...}}}`` or the block itself);
2. ``.serverflow/llm/llm.yaml``, written by ``make local-llm`` (the local model).

A model file alone is not a configuration (the test suite assembles one without
configuring it). Nothing found: ServerFlowError AI002 saying how to get a model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from salt_ext.errors import ServerFlowError
from salt_ext.llm import local_model

STATE_DIR = local_model.REPO / ".serverflow" / "llm"
CONFIG_FILE = STATE_DIR / "llm.yaml"


def _read(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    if "serverflow" in doc:
        doc = doc["serverflow"] or {}
    return dict(doc.get("llm", doc))


def local_llm_block(model: Path | None = None) -> dict[str, Any]:
    path = model or local_model.model_path()
    return {"primary": {"provider": "local", "model": local_model.DEFAULT_MODEL.name, "model_path": str(path),
                        "timeout": 120}}


def cli_llm_block() -> dict[str, Any]:
    env = os.environ.get("SERVERFLOW_LLM_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ServerFlowError("AI002", f"SERVERFLOW_LLM_CONFIG={env} does not exist")
        return _read(path)
    if CONFIG_FILE.is_file():
        return _read(CONFIG_FILE)
    found = local_model.find_model()
    state = (f"a model is at {found} but `make local-llm` did not configure it" if found
             else f"no model at {local_model.model_path()}")
    raise ServerFlowError("AI002", f"no LLM is configured ({state}): run `make local-llm` to build and configure "
                          "the local Qwen2.5-Coder-0.5B model, or point SERVERFLOW_LLM_CONFIG at a YAML file with "
                          "an `llm:` block (OpenAI, Anthropic, Ollama/vLLM/llama.cpp)")


def cli_settings(redis_url: str | None = None) -> dict[str, Any]:
    """Settings with the CLI's LLM block (no Redis unless given: no rate limits, no cache)."""
    return {"llm": cli_llm_block(), "redis": {"url": redis_url}}


def eval_planner():
    """A planner for ``python -m salt_ext.evals --planner llm``: hybrid over the CLI's LLM."""
    from salt_ext.llm.gateway import Gateway
    from salt_ext.llm.planner import HybridPlanner

    settings = cli_settings()
    gateway = Gateway.from_settings(settings)
    if gateway is None:
        raise ServerFlowError("AI002", "the LLM configuration names no primary provider")
    planner = HybridPlanner(gateway)

    def plan(question: str, inventory: list, history: list[dict] | None):
        result, meta = planner.plan(question, inventory, history)
        plan.calls.append(meta)
        if meta.get("planner") == "hybrid":
            result.notes.append(f"llm: {meta.get('provider')}/{meta.get('model')}, "
                                f"{(meta.get('tokens') or {}).get('total', 0)} tokens, {meta.get('latency_ms', 0):.0f} ms")
        elif meta.get("fallback_reason"):
            result.notes.append(f"llm fallback to offline: {meta['fallback_reason']}")
        return result

    plan.calls = []  # type: ignore[attr-defined]
    plan.planner = planner  # type: ignore[attr-defined]
    return plan
