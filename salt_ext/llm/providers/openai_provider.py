"""OpenAI and every OpenAI-compatible server (llama.cpp ``llama_cpp.server``, Ollama, vLLM), through the official SDK.

Structured answers (``structured_output``):

- ``json_schema``: ``response_format={"type": "json_schema", ...}`` (OpenAI's structured outputs;
  also vLLM and recent Ollama);
- ``json_object``: ``response_format={"type": "json_object", "schema": ...}`` (llama.cpp turns
  the schema into a grammar);
- ``tool``: one function whose parameters are the schema, forced with ``tool_choice``
  (OpenAI, llama.cpp, vLLM, Ollama).

``auto`` is ``json_schema`` for OpenAI and ``tool`` for compatible servers (the two that
work reliably against ``llama_cpp.server``, see ARCHITECTURE.md §8, are ``tool`` and
``json_object``). The SDK's own retries are off: the gateway retries, with backoff, and
falls back.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

from salt_ext.llm.config import ProviderConfig
from salt_ext.llm.providers.base import Provider, sdk_error
from salt_ext.llm.types import Chunk, LLMRequest, ProviderError, Usage


def _error(name: str, exc: Exception) -> ProviderError:
    import openai

    return sdk_error(name, exc, openai)


class OpenAIProvider(Provider):
    kind = "openai"

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        import openai

        self._client = openai.OpenAI(
            api_key=config.api_key or ("not-needed" if config.kind == "openai_compatible" else None),
            base_url=config.base_url, timeout=config.timeout, max_retries=0)

    @property
    def mode(self) -> str:
        mode = self.config.structured_output
        if mode == "auto":
            return "json_schema" if self.config.kind == "openai" else "tool"
        return mode

    def _kwargs(self, request: LLMRequest) -> dict[str, Any]:
        max_tokens, temperature, timeout = self.limits(request)
        kwargs: dict[str, Any] = {"model": self.model, "messages": [m.as_dict() for m in request.messages],
                                  "max_tokens": max_tokens, "temperature": temperature, "timeout": timeout}
        if request.stop:
            kwargs["stop"] = request.stop
        s = request.structured
        if s is not None:
            if self.mode == "tool":
                kwargs["tools"] = [{"type": "function", "function": {"name": s.name, "description": s.description or s.name,
                                                                      "parameters": s.schema}}]
                kwargs["tool_choice"] = {"type": "function", "function": {"name": s.name}}
            elif self.mode == "json_object":
                kwargs["response_format"] = {"type": "json_object", "schema": s.schema}
            else:
                kwargs["response_format"] = {"type": "json_schema",
                                             "json_schema": {"name": s.name, "schema": s.schema, "strict": False}}
        return kwargs

    def _stream(self, request: LLMRequest, deadline: float) -> Iterator[Chunk]:
        kwargs = self._kwargs(request)
        started = time.monotonic()
        first = None
        parts: list[str] = []
        tool_args: list[str] = []
        usage = Usage()
        finish = None
        try:
            if self.config.kind == "openai":
                kwargs["stream_options"] = {"include_usage": True}
            stream = self._client.chat.completions.create(stream=True, **kwargs)
            try:
                for event in stream:
                    if getattr(event, "usage", None):
                        usage = Usage(int(event.usage.prompt_tokens or 0), int(event.usage.completion_tokens or 0))
                    for choice in event.choices or []:
                        delta = choice.delta
                        if choice.finish_reason:
                            finish = choice.finish_reason
                        text = getattr(delta, "content", None) or ""
                        for call in getattr(delta, "tool_calls", None) or []:
                            if call.function and call.function.arguments:
                                tool_args.append(call.function.arguments)
                                first = first or time.monotonic()
                        if text:
                            first = first or time.monotonic()
                            parts.append(text)
                            yield Chunk(text=text)
                    if time.monotonic() > deadline:
                        raise ProviderError(self.name, "timeout", f"no complete answer within {self.config.timeout:g} s")
            finally:
                stream.close()
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - every SDK/transport error becomes a ProviderError
            raise _error(self.name, exc) from exc
        text = "".join(tool_args) if tool_args else "".join(parts)
        yield self.finish(request, text, usage, started, first, finish)

    def embed(self, texts: list[str], model: str) -> list[list[float]]:
        try:
            out = self._client.embeddings.create(model=model, input=texts)
        except Exception as exc:  # noqa: BLE001
            raise _error(self.name, exc) from exc
        return [list(d.embedding) for d in out.data]
