"""A GGUF model in this process, through llama-cpp-python.

Structured answers use ``response_format={"type": "json_object", "schema": ...}``:
llama.cpp compiles the schema into a grammar, so the model can only emit a
document of that shape (the enums of functions and targets included). One model
file is loaded once per process and shared; calls on it are serialised (a
llama.cpp context is not thread-safe).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import Any, Iterator

from salt_ext.llm.config import ProviderConfig
from salt_ext.llm.providers.base import Provider
from salt_ext.llm.types import Chunk, LLMRequest, ProviderError, Usage

_MODELS: dict[tuple[str, int, int], tuple[Any, threading.Lock]] = {}
_LOAD_LOCK = threading.Lock()


def load_model(path: str, n_ctx: int = 4096, n_threads: int | None = None, cache_mb: int = 0) -> tuple[Any, threading.Lock]:
    """The shared ``llama_cpp.Llama`` for ``path`` (loaded on first use) and its lock.

    ``cache_mb`` > 0 keeps evaluated prompt states in RAM (llama.cpp's prompt cache):
    a request sharing a prefix with an earlier one (the planner's or the writer's
    system rules) skips re-reading it, which is most of the time to first token on
    2 cores.
    """
    threads = int(n_threads or os.cpu_count() or 2)
    key = (os.path.abspath(path), int(n_ctx), threads)
    with _LOAD_LOCK:
        if key not in _MODELS:
            # llama.cpp's OpenMP threads spin while waiting; on a shared 2-core machine
            # spinning threads starve each other (measured: 4-6x slower). Read at load time.
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
            try:
                import llama_cpp
            except ImportError as exc:
                raise ProviderError("local", "connection", "llama-cpp-python is not installed: run `make local-llm`") from exc
            if not os.path.isfile(path):
                raise ProviderError("local", "connection", f"model file {path} not found: run `make local-llm`")
            model = llama_cpp.Llama(model_path=path, n_ctx=int(n_ctx), n_threads=threads, n_threads_batch=threads,
                                    verbose=False)
            if cache_mb:
                model.set_cache(llama_cpp.LlamaRAMCache(capacity_bytes=int(cache_mb) << 20))
            _MODELS[key] = (model, threading.Lock())
        return _MODELS[key]


@atexit.register
def _close_models() -> None:
    # Close while the interpreter is whole: llama-cpp-python's own __del__ runs too late at
    # exit (its C bindings are already gone) and prints a TypeError traceback.
    with _LOAD_LOCK:
        for model, _ in _MODELS.values():
            model.close()
        _MODELS.clear()


class LocalProvider(Provider):
    kind = "local"

    def __init__(self, config: ProviderConfig, n_ctx: int | None = None, n_threads: int | None = None,
                 cache_mb: int = 0) -> None:
        super().__init__(config)
        self.n_ctx = int(n_ctx or config.context_window or 4096)
        self.n_threads = n_threads
        self.cache_mb = int(cache_mb or 0)

    @property
    def llama(self) -> tuple[Any, threading.Lock]:
        return load_model(str(self.config.model_path), self.n_ctx, self.n_threads, self.cache_mb)

    def count_tokens(self, text: str) -> int:
        model, _ = self.llama
        return len(model.tokenize((text or "").encode("utf-8"), add_bos=False, special=False))

    def prefill(self, request: LLMRequest) -> bool:
        """Evaluate ``request``'s prompt now (one token generated, discarded); False when the model is busy.

        llama.cpp keeps the evaluated tokens in its KV cache, and the next call reuses
        the longest common token prefix: a request that starts with these messages
        only reads what comes after them.
        """
        model, lock = self.llama
        if not lock.acquire(blocking=False):
            return False
        try:
            model.create_chat_completion(messages=[m.as_dict() for m in request.messages], max_tokens=1,
                                         temperature=0.0)
            return True
        except Exception as exc:  # noqa: BLE001 - reading ahead is an optimisation only
            raise ProviderError(self.name, "bad_request", f"{type(exc).__name__}: {exc}"[:200]) from exc
        finally:
            lock.release()

    def _stream(self, request: LLMRequest, deadline: float) -> Iterator[Chunk]:
        max_tokens, temperature, timeout = self.limits(request)
        model, lock = self.llama
        kwargs: dict[str, Any] = {"messages": [m.as_dict() for m in request.messages], "max_tokens": max_tokens,
                                  "temperature": temperature, "stream": True}
        if request.stop:
            kwargs["stop"] = request.stop
        if request.structured is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.structured.schema}
        started = time.monotonic()
        first = None
        parts: list[str] = []
        finish = None
        if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            raise ProviderError(self.name, "timeout", "the local model stayed busy with other requests")
        try:
            stream = model.create_chat_completion(**kwargs)
            try:
                for event in stream:
                    choice = event["choices"][0]
                    text = choice.get("delta", {}).get("content") or ""
                    finish = choice.get("finish_reason") or finish
                    if text:
                        first = first or time.monotonic()
                        parts.append(text)
                        yield Chunk(text=text)
                    if time.monotonic() > deadline:
                        raise ProviderError(self.name, "timeout", f"no complete answer within {timeout:g} s")
            finally:
                close = getattr(stream, "close", None)
                if close:
                    close()
        except ProviderError:
            raise
        except Exception as exc:  # noqa: BLE001 - llama.cpp errors (context overflow ...) become ProviderErrors
            raise ProviderError(self.name, "bad_request", f"{type(exc).__name__}: {exc}"[:200]) from exc
        finally:
            lock.release()
        text = "".join(parts)
        usage = Usage(sum(self.count_tokens(m.content) + 4 for m in request.messages), len(parts))
        yield self.finish(request, text, usage, started, first, finish)
