"""``serverflow:llm`` resolved into provider configurations (spec §3.2.2).

The defaults and the meaning of every key are in ``salt_ext.config.DEFAULTS['llm']``.
``primary`` and each ``fallback`` entry may be a mapping (``provider``, ``model``,
``temperature``, ``max_tokens``, ``timeout``, ``base_url``, ``api_key`` /
``api_key_env``, ``model_path`` ...) or the name of an entry of ``providers``.
No primary means no LLM: the offline planner and the template responder answer.

API keys come from the config or from the environment variable named by
``api_key_env`` (``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY`` by default); they
are kept out of ``repr`` and out of ``describe()``, which is what gets logged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from salt_ext.config import DEFAULTS, merge
from salt_ext.errors import ServerFlowError

PROVIDER_KINDS = ("openai", "anthropic", "openai_compatible", "local")
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
# Context windows (tokens) of well-known models; anything else uses ``context_window``.
CONTEXT_WINDOWS = {"gpt-4o": 128000, "gpt-4o-mini": 128000, "gpt-4-turbo": 128000, "gpt-4.1": 1047576,
                   "gpt-4.1-mini": 1047576, "claude-3-5-sonnet": 200000, "claude-3-5-haiku": 200000,
                   "claude-3-sonnet": 200000, "claude-sonnet-4": 200000, "claude-3-haiku": 200000}


@dataclass
class ProviderConfig:
    """One provider of the chain; ``api_key`` never appears in repr or describe()."""

    name: str
    kind: str
    model: str
    temperature: float = 0.1
    max_tokens: int = 1024
    timeout: float = 30.0
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model_path: str | None = None
    context_window: int = 8192
    structured_output: str = "auto"  # auto | json_schema | json_object | tool
    options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        out = {"name": self.name, "provider": self.kind, "model": self.model, "timeout": self.timeout}
        if self.base_url:
            out["base_url"] = self.base_url
        if self.model_path:
            out["model_path"] = self.model_path
        out["api_key"] = "***" if self.api_key else None
        return out


@dataclass
class LLMSettings:
    providers: list[ProviderConfig]
    raw: dict[str, Any]

    @property
    def enabled(self) -> bool:
        return bool(self.providers)

    def section(self, name: str) -> dict[str, Any]:
        return dict(self.raw.get(name) or {})


def _provider(name: str, raw: Mapping[str, Any], base: Mapping[str, Any]) -> ProviderConfig:
    kind = str(raw.get("provider") or "").strip().lower().replace("-", "_")
    aliases = {"ollama": "openai_compatible", "vllm": "openai_compatible", "llama_cpp": "openai_compatible",
               "llamacpp": "openai_compatible", "openai_compat": "openai_compatible", "llama_cpp_python": "local"}
    kind = aliases.get(kind, kind)
    if kind not in PROVIDER_KINDS:
        raise ServerFlowError("SYS003", f"serverflow:llm provider {name!r}: 'provider' must be one of "
                              f"{', '.join(PROVIDER_KINDS)} (or ollama, vllm, llama_cpp), got {raw.get('provider')!r}")
    model = raw.get("model")
    model_path = raw.get("model_path")
    if kind == "local":
        if not model_path:
            from salt_ext.llm.local_model import model_path as default_path

            model_path = str(default_path())
        model = model or Path(str(model_path)).stem
    if not model:
        raise ServerFlowError("SYS003", f"serverflow:llm provider {name!r}: 'model' is required")
    if kind == "openai_compatible" and not raw.get("base_url"):
        raise ServerFlowError("SYS003", f"serverflow:llm provider {name!r}: an OpenAI-compatible server needs "
                              "'base_url' (e.g. http://127.0.0.1:8011/v1 for llama_cpp.server, "
                              "http://127.0.0.1:11434/v1 for Ollama)")
    key = raw.get("api_key")
    if not key:
        env = raw.get("api_key_env") or KEY_ENV.get(kind)
        key = os.environ.get(env) if env else None
    window = raw.get("context_window") or CONTEXT_WINDOWS.get(str(model)) or (
        int(base.get("local", {}).get("n_ctx") or 4096) if kind == "local" else base.get("context_window") or 8192)
    known = {"provider", "model", "temperature", "max_tokens", "timeout", "base_url", "api_key", "api_key_env",
             "model_path", "context_window", "structured_output", "name"}
    return ProviderConfig(
        name=str(raw.get("name") or name),
        kind=kind,
        model=str(model),
        temperature=float(raw.get("temperature", base.get("temperature", 0.1))),
        max_tokens=int(raw.get("max_tokens", base.get("max_tokens", 1024))),
        timeout=float(raw.get("timeout", base.get("timeout", 30))),
        base_url=raw.get("base_url"),
        api_key=key,
        model_path=str(model_path) if model_path else None,
        context_window=int(window),
        structured_output=str(raw.get("structured_output") or "auto"),
        options={k: v for k, v in raw.items() if k not in known},
    )


def _entry(value: Any, named: Mapping[str, Any], label: str) -> tuple[str, Mapping[str, Any]] | None:
    if value in (None, "", False, "none", "offline"):
        return None
    if isinstance(value, str):
        if value in named:
            return value, named[value]
        if value in ("local", "openai", "anthropic"):
            return value, {"provider": value}
        raise ServerFlowError("SYS003", f"serverflow:llm {label}: no provider named {value!r} under serverflow:llm:providers")
    if isinstance(value, Mapping):
        return str(value.get("name") or value.get("provider") or label), value
    raise ServerFlowError("SYS003", f"serverflow:llm {label}: expected a mapping or a provider name, got {type(value).__name__}")


def llm_settings(settings: Mapping[str, Any] | None) -> LLMSettings:
    """The provider chain (primary first, then the fallbacks) from the effective settings."""
    raw = merge(DEFAULTS["llm"], (settings or {}).get("llm") or {})
    named = raw.get("providers") or {}
    chain: list[ProviderConfig] = []
    first = _entry(raw.get("primary"), named, "primary")
    if first is not None:
        chain.append(_provider(first[0], first[1], raw))
        fallback = raw.get("fallback") or []
        if isinstance(fallback, (Mapping, str)):
            fallback = [fallback]
        for i, item in enumerate(fallback):
            entry = _entry(item, named, f"fallback[{i}]")
            if entry is not None:
                chain.append(_provider(entry[0], entry[1], raw))
    names = [p.name for p in chain]
    for i, p in enumerate(chain):  # two entries of one kind need distinct names for the breaker
        if names.count(p.name) > 1:
            p.name = f"{p.name}#{i}"
    return LLMSettings(chain, raw)
