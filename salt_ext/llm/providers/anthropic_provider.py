"""Anthropic's Messages API through the official ``anthropic`` SDK.

Structured answers are a forced tool call (``tool_choice={"type": "tool", ...}``) whose
``input_schema`` is the JSON schema; streaming uses ``messages.stream``. ``base_url``
points the SDK at any server speaking the same API (the tests use
``salt_ext.llm.servers.anthropic_api`` in front of the local model).
"""

from __future__ import annotations

import inspect
import json
import time
from typing import Any, Iterator

from salt_ext.llm.config import ProviderConfig
from salt_ext.llm.providers.base import Provider, sdk_error
from salt_ext.llm.types import Chunk, LLMRequest, ProviderError, Usage


def _error(name: str, exc: Exception) -> ProviderError:
    import anthropic

    return sdk_error(name, exc, anthropic)


def _sdk_takes_temperature() -> bool:
    try:
        from anthropic.resources.messages import Messages

        return "temperature" in inspect.signature(Messages.stream).parameters
    except Exception:  # noqa: BLE001
        return False


_SDK_TAKES_TEMPERATURE = _sdk_takes_temperature()


def _turns(request: LLMRequest) -> list[dict[str, str]]:
    """Alternating user/assistant turns starting with a user turn, as the API requires."""
    out: list[dict[str, str]] = []
    for m in request.turns:
        role = "assistant" if m.role == "assistant" else "user"
        if out and out[-1]["role"] == role:
            out[-1]["content"] += "\n\n" + m.content
        else:
            out.append({"role": role, "content": m.content})
    if not out or out[0]["role"] != "user":
        out.insert(0, {"role": "user", "content": "(conversation start)"})
    return out


class AnthropicProvider(Provider):
    kind = "anthropic"

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        import anthropic

        self._client = anthropic.Anthropic(api_key=config.api_key or "not-needed", base_url=config.base_url,
                                           timeout=config.timeout, max_retries=0)

    def _kwargs(self, request: LLMRequest) -> dict[str, Any]:
        max_tokens, temperature, timeout = self.limits(request)
        kwargs: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "messages": _turns(request),
                                  "timeout": timeout}
        if _SDK_TAKES_TEMPERATURE:  # anthropic 2.x dropped the parameter (the model decides)
            kwargs["temperature"] = temperature
        if request.system:
            kwargs["system"] = request.system
        if request.stop:
            kwargs["stop_sequences"] = request.stop
        s = request.structured
        if s is not None:
            kwargs["tools"] = [{"name": s.name, "description": s.description or s.name, "input_schema": s.schema}]
            kwargs["tool_choice"] = {"type": "tool", "name": s.name}
        return kwargs

    def _stream(self, request: LLMRequest, deadline: float) -> Iterator[Chunk]:
        kwargs = self._kwargs(request)
        started = time.monotonic()
        first = None
        parts: list[str] = []
        try:
            with self._client.messages.stream(**kwargs) as stream:
                for event in stream:
                    etype = getattr(event, "type", "")
                    if etype == "content_block_delta":
                        delta = event.delta
                        text = getattr(delta, "text", None) or getattr(delta, "partial_json", None) or ""
                        if text:
                            first = first or time.monotonic()
                            if getattr(delta, "type", "") == "text_delta":
                                parts.append(text)
                                yield Chunk(text=text)
                    if time.monotonic() > deadline:
                        raise ProviderError(self.name, "timeout", f"no complete answer within {self.config.timeout:g} s")
                final = stream.get_final_message()
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - every SDK/transport error becomes a ProviderError
            raise _error(self.name, exc) from exc
        data = None
        text = "".join(parts)
        for block in final.content:
            if block.type == "tool_use":
                data = block.input if isinstance(block.input, dict) else json.loads(block.input)
                text = json.dumps(data)
            elif block.type == "text" and not parts:
                text += block.text
        usage = Usage(int(final.usage.input_tokens or 0), int(final.usage.output_tokens or 0))
        yield self.finish(request, text, usage, started, first, final.stop_reason, data=data)
