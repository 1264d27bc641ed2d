"""Providers behind one interface (``Provider.complete`` / ``Provider.stream``).

==================  =============================================  ===============================
provider            what it talks to                               structured answers
==================  =============================================  ===============================
openai              api.openai.com (official ``openai`` SDK)       json_schema response format
openai_compatible   llama_cpp.server, Ollama, vLLM (``base_url``)  forced tool call / json_object
anthropic           Messages API (official ``anthropic`` SDK)      forced tool use
local               a GGUF file in process (llama-cpp-python)      JSON-schema grammar
==================  =============================================  ===============================
"""

from __future__ import annotations

from typing import Any, Mapping

from salt_ext.llm.config import ProviderConfig
from salt_ext.llm.providers.base import Provider, estimate_tokens


def build_provider(config: ProviderConfig, local: Mapping[str, Any] | None = None) -> Provider:
    """The provider object for one configuration entry (SDKs are imported here, lazily)."""
    if config.kind in ("openai", "openai_compatible"):
        from salt_ext.llm.providers.openai_provider import OpenAIProvider

        return OpenAIProvider(config)
    if config.kind == "anthropic":
        from salt_ext.llm.providers.anthropic_provider import AnthropicProvider

        return AnthropicProvider(config)
    if config.kind == "local":
        from salt_ext.llm.providers.local_provider import LocalProvider

        local = local or {}
        return LocalProvider(config, n_ctx=local.get("n_ctx"), n_threads=local.get("n_threads"),
                             cache_mb=local.get("prompt_cache_mb", 0))
    raise ValueError(f"unknown provider kind {config.kind!r}")


__all__ = ["Provider", "build_provider", "estimate_tokens"]
