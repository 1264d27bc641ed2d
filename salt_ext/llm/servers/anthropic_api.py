"""An Anthropic Messages API server in front of a local GGUF model.

``python -m salt_ext.llm.servers.anthropic_api --model FILE.gguf --port 8012``

Speaks the real wire protocol - ``POST /v1/messages`` with ``x-api-key`` (or the
bearer token newer SDKs send) and ``anthropic-version`` headers, JSON or server-sent events (``message_start``,
``content_block_start``, ``content_block_delta`` with ``text_delta`` /
``input_json_delta``, ``content_block_stop``, ``message_delta``,
``message_stop``), tool use with ``tool_choice`` (the tool's ``input_schema``
becomes a JSON-schema grammar), errors as ``{"type": "error", "error": ...}``
- so the official ``anthropic`` SDK drives it unchanged. It lets the Anthropic
provider be developed and tested offline.

Fault injection for tests (all off by default): ``--delay S`` waits before
answering; ``--fail-first N --fail-status 429|500|529`` fails the first N
requests (429 with ``retry-after``).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from salt_ext.llm.config import ProviderConfig
from salt_ext.llm.providers.local_provider import LocalProvider
from salt_ext.llm.types import LLMRequest, Message, ProviderError, Structured

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
               429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    out = []
    for block in content or []:
        if block.get("type") == "text":
            out.append(block.get("text", ""))
        elif block.get("type") == "tool_result":
            out.append(_text_of(block.get("content")))
        elif block.get("type") == "tool_use":
            out.append(json.dumps(block.get("input")))
    return "\n".join(out)


def to_request(body: dict[str, Any]) -> LLMRequest:
    """A Messages API body as a provider-neutral LLMRequest (raises ValueError when malformed)."""
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise ValueError("messages: at least one message is required")
    if not isinstance(body.get("max_tokens"), int):
        raise ValueError("max_tokens: Field required")
    messages = []
    system = body.get("system")
    if system:
        messages.append(Message("system", _text_of(system)))
    for m in body["messages"]:
        messages.append(Message("assistant" if m.get("role") == "assistant" else "user", _text_of(m.get("content"))))
    structured = None
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    if tools and choice.get("type") in ("tool", "any"):
        tool = next((t for t in tools if t.get("name") == choice.get("name")), tools[0])
        structured = Structured(tool["name"], tool.get("input_schema") or {"type": "object"}, tool.get("description", ""))
    return LLMRequest(messages=messages, structured=structured, max_tokens=body["max_tokens"],
                      temperature=body.get("temperature"), stop=list(body.get("stop_sequences") or []))


class MessagesServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], provider: LocalProvider, *, api_key: str | None = None,
                 delay: float = 0.0, fail_first: int = 0, fail_status: int = 429) -> None:
        super().__init__(address, Handler)
        self.provider = provider
        self.api_key = api_key
        self.delay = delay
        self.fail_left = fail_first
        self.fail_status = fail_status
        self.requests = 0
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: MessagesServer
    # HTTP/1.1 with chunked event streams, as the real API: a server dying mid-stream is then an
    # incomplete body the client notices, not a normal end of a close-delimited one.
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet by default
        pass

    def do_GET(self) -> None:  # noqa: N802 - a liveness probe
        self._json(200, {"status": "ok"})

    def _json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._json(status, {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message}},
                   headers)

    def _event(self, name: str, data: dict[str, Any]) -> None:
        payload = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        srv = self.server
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))  # always, the connection is reused
        with srv.lock:
            srv.requests += 1
            failing = srv.fail_left > 0
            if failing:
                srv.fail_left -= 1
        if self.path.split("?")[0].rstrip("/") != "/v1/messages":
            return self._error(404, f"{self.path} not found")
        auth = self.headers.get("authorization") or ""
        given = self.headers.get("x-api-key") or (auth[7:] if auth.lower().startswith("bearer ") else None)
        if srv.api_key and given != srv.api_key:  # SDKs send x-api-key (1.x) or a bearer token (2.x)
            return self._error(401, "invalid API key")
        if failing:
            return self._error(srv.fail_status, "injected failure", {"retry-after": "1"} if srv.fail_status == 429 else None)
        try:
            body = json.loads(raw or b"{}")
            request = to_request(body)
        except (ValueError, KeyError, TypeError) as exc:
            return self._error(400, str(exc))
        if srv.delay:
            time.sleep(srv.delay)
        model = str(body.get("model") or srv.provider.model)
        msg_id = f"msg_{uuid.uuid4().hex[:24]}"
        if body.get("stream"):
            return self._stream(request, model, msg_id)
        try:
            response = srv.provider.complete(request)
        except ProviderError as exc:
            return self._error(500 if exc.kind != "bad_request" else 400, str(exc))
        if request.structured is not None:
            content = [{"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": request.structured.name,
                        "input": response.data}]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": response.text}]
            stop = "max_tokens" if response.finish_reason == "length" else "end_turn"
        self._json(200, {"id": msg_id, "type": "message", "role": "assistant", "model": model, "content": content,
                         "stop_reason": stop, "stop_sequence": None,
                         "usage": {"input_tokens": response.usage.prompt_tokens,
                                   "output_tokens": response.usage.completion_tokens}})

    def _stream(self, request: LLMRequest, model: str, msg_id: str) -> None:
        srv = self.server
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True
        prompt = sum(srv.provider.count_tokens(m.content) + 4 for m in request.messages)
        self._event("message_start", {"type": "message_start", "message": {
            "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": prompt, "output_tokens": 1}}})
        tool = request.structured is not None
        block = ({"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": request.structured.name, "input": {}}
                 if tool else {"type": "text", "text": ""})
        self._event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
        self._event("ping", {"type": "ping"})
        final = None
        for chunk in srv.provider.stream(request):
            if chunk.done:
                final = chunk.response
                break
            delta = {"type": "input_json_delta", "partial_json": chunk.text} if tool else {"type": "text_delta", "text": chunk.text}
            self._event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
        stop = "tool_use" if tool else ("max_tokens" if final and final.finish_reason == "length" else "end_turn")
        self._event("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                      "usage": {"output_tokens": final.usage.completion_tokens if final else 0}})
        self._event("message_stop", {"type": "message_stop"})
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def serve(model_path: str, host: str = "127.0.0.1", port: int = 8012, **options: Any) -> MessagesServer:
    """A started server (its thread runs ``serve_forever``); call ``shutdown()`` to stop it."""
    n_ctx = int(options.pop("n_ctx", 4096))
    config = ProviderConfig(name="local", kind="local", model="local", model_path=model_path, max_tokens=4096,
                            timeout=600, context_window=n_ctx)
    server = MessagesServer((host, port), LocalProvider(config, n_ctx=n_ctx), **options)
    server.provider.llama  # noqa: B018 - load the model before accepting requests
    threading.Thread(target=server.serve_forever, name="anthropic-api", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="GGUF model file")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8012)
    p.add_argument("--n-ctx", type=int, default=4096)
    p.add_argument("--api-key", default=None, help="require this x-api-key")
    p.add_argument("--delay", type=float, default=0.0, help="seconds to wait before answering (fault injection)")
    p.add_argument("--fail-first", type=int, default=0, help="fail the first N requests (fault injection)")
    p.add_argument("--fail-status", type=int, default=429, help="HTTP status of the injected failures")
    args = p.parse_args(argv)
    server = serve(args.model, args.host, args.port, n_ctx=args.n_ctx, api_key=args.api_key, delay=args.delay,
                   fail_first=args.fail_first, fail_status=args.fail_status)
    print(f"anthropic-api: listening on http://{args.host}:{args.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
