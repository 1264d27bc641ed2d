"""Secrets are masked on every way out: log lines (Salt's logging included) and LLM prompts."""

from __future__ import annotations

import io
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import salt._logging  # noqa: F401 - installs Salt's own log record factory, as in the daemons

from salt_ext.config import load_settings
from salt_ext.llm.gateway import Gateway
from salt_ext.llm.types import LLMRequest, Message
from salt_ext.security.masking import install_log_masking

SECRET_DSN = "postgresql://app:hunter2-db@db.internal/prod"
SECRET_TOKEN = "sk-abcdefghijklmnopqrstuvwxyz012345"


@pytest.fixture
def captured():
    install_log_masking()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("serverflow.test.masking")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_log_lines_are_masked_whoever_logs_them(captured):
    logger, stream = captured
    logger.info("connecting to %s", SECRET_DSN)
    logger.warning("provider said %(why)s", {"why": f"bad key {SECRET_TOKEN}"})
    logger.info("password=%s for %s", "letmein-now", "admin")
    out = stream.getvalue()
    assert "hunter2-db" not in out and SECRET_TOKEN not in out and "letmein-now" not in out
    assert "postgresql://app:***@db.internal/prod" in out
    assert "for admin" in out  # the rest of the line is kept


def test_tracebacks_are_masked_too(captured):
    logger, stream = captured
    try:
        raise RuntimeError(f"could not connect with {SECRET_DSN}")
    except RuntimeError:
        logger.exception("job cache write failed")
    out = stream.getvalue()
    assert "RuntimeError" in out and "hunter2-db" not in out


def test_plain_records_keep_lazy_arguments(captured):
    logger, stream = captured
    record_args = []

    class Keep(logging.Filter):
        def filter(self, record):
            record_args.append(record.args)
            return True

    keep = Keep()
    logger.addFilter(keep)
    try:
        logger.info("%d minions answered in %.1f%%", 3, 99.5)
    finally:
        logger.removeFilter(keep)
    assert record_args == [(3, 99.5)]  # nothing to mask: the record is untouched
    assert "3 minions answered in 99.5%" in stream.getvalue()


def test_install_is_idempotent():
    install_log_masking()
    factory = logging.getLogRecordFactory()
    install_log_masking()
    assert logging.getLogRecordFactory() is factory


class _RecordingOpenAI(BaseHTTPRequestHandler):
    """A local server speaking the OpenAI chat-completions protocol (streamed), keeping each request body."""

    bodies: list[dict] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": "All good."},
                              "finish_reason": None}]}
        last = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}
        payload = "".join(f"data: {json.dumps(c)}\n\n" for c in (chunk, last)) + "data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload.encode())


def test_prompts_are_masked_before_they_leave_for_a_model():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RecordingOpenAI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = load_settings({"serverflow": {"llm": {"primary": {
            "provider": "openai_compatible", "model": "m", "base_url": f"http://127.0.0.1:{server.server_port}/v1",
            "timeout": 10}}}})
        gateway = Gateway.from_settings(settings)
        request = LLMRequest([Message("system", "You are ServerFlow."),
                              Message("user", f"the app cannot reach {SECRET_DSN}; log says token={SECRET_TOKEN}")])
        answer = gateway.complete(request)
    finally:
        server.shutdown()
    assert answer.text == "All good."
    sent = json.dumps(_RecordingOpenAI.bodies[-1])
    assert "hunter2-db" not in sent and SECRET_TOKEN not in sent
    assert "postgresql://app:***@db.internal/prod" in sent
