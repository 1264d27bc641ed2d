"""The grounded writer: the LLM writes the summary, the data decides whether it is kept.

The template responder runs first (its findings, evidence, suggested actions
and follow-ups stay as they are). The LLM then gets the question and the
findings (compact: the first few, details cut short; raw results only when
``max_result_chars`` asks for them) and writes the summary and what to do,
streamed. The request is laid out for llama.cpp's prefix reuse: the system
rules come first and never change, then ``Question: ...``, which
``prefix_request`` lets the local model read while Salt still runs.

The stream is released word by word: a word goes out as a ``{"type": "token"}``
delta once it is complete (the model wrote the space after it) and its numbers
and server names were found in the results or the inventory
(``grounding.grounding_problems``). The first word that is not grounded stops
the model; the template summary is used instead and an
``{"type": "answer_reset"}`` delta tells the client to drop what it showed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from typing import Any, Callable

from salt_ext.errors import ServerFlowError
from salt_ext.llm.budget import Ledger
from salt_ext.llm.gateway import Gateway
from salt_ext.llm.grounding import grounding_problems
from salt_ext.llm.types import LLMRequest, Message

SYSTEM_RULES = (
    "You are ServerFlow, an assistant for server operations. Answer the user's question in 2 or 3 plain "
    "sentences from the findings given: first what was found, then what to do about it. Use only numbers and "
    "server names that appear in the findings; never invent values. No lists, no headings."
)
MAX_FINDINGS = 5
MAX_DETAIL = 110  # characters of a finding's detail (prompt tokens are what the first answer token waits for)
_WORD_END = re.compile(r"\s+")

Delta = Callable[[dict[str, Any]], None]


def _compact_results(results: list[Any], limit: int) -> str:
    out: dict[str, Any] = {}
    for step in results or []:
        for minion, ret in (step.returns or {}).items():
            out.setdefault(minion, {})[step.function] = getattr(ret, "ret", ret)
    text = json.dumps(out, default=str, separators=(",", ":"))
    return text if len(text) <= limit else text[:limit] + " ..."


def results_fingerprint(results: list[Any]) -> str:
    data = [(s.function, sorted((m, json.dumps(getattr(r, "ret", r), default=str, sort_keys=True))
                                for m, r in (s.returns or {}).items())) for s in results or []]
    return hashlib.sha256(json.dumps(data, default=str).encode()).hexdigest()[:24]


def _question_line(question: str) -> str:
    return f"Question: {question.strip()}\n"


def prefix_request(question: str) -> LLMRequest:
    """What every answer to ``question`` starts with (the rules, then the question), to read ahead."""
    return LLMRequest(messages=[Message("system", SYSTEM_RULES), Message("user", _question_line(question))],
                      max_tokens=1, temperature=0.0, purpose="answer")


def build_request(question: str, response: Any, results: list[Any], max_result_chars: int, max_tokens: int, *,
                  max_findings: int = MAX_FINDINGS, max_detail: int = MAX_DETAIL) -> LLMRequest:
    lines = [_question_line(question) + "Findings:"]
    for f in response.findings[:max_findings]:
        who = f"{f.minion_id}: " if f.minion_id else ""
        detail = f.detail if f.severity != "info" else f.detail.split(". ")[0]
        if len(detail) > max_detail:
            detail = detail[:max_detail].rsplit(" ", 1)[0] + " ..."
        lines.append(f"- [{f.severity}] {who}{f.title}: {detail}".rstrip())
    if response.unanswered:
        lines.append(f"- no answer from: {', '.join(response.unanswered)}")
    if response.recommendations:
        lines.append("Checks suggest: " + " ".join(response.recommendations[:3]))
    if max_result_chars > 0 and results:
        lines.append("Results: " + _compact_results(results, max_result_chars))
    return LLMRequest(messages=[Message("system", SYSTEM_RULES), Message("user", "\n".join(lines))],
                      max_tokens=max_tokens, temperature=0.1, purpose="answer")


class GroundedWriter:
    def __init__(self, gateway: Gateway | None, *, settings: dict | None = None, cache: Any = None) -> None:
        self.gateway = gateway
        cfg = settings or (gateway.llm.section("writer") if gateway else {})
        self.enabled = bool(cfg.get("enabled", True))
        self.max_tokens = int(cfg.get("max_tokens", 100))
        self.max_result_chars = int(cfg.get("max_result_chars", 0))
        self.max_findings = int(cfg.get("max_findings", MAX_FINDINGS))
        self.max_detail = int(cfg.get("max_detail", MAX_DETAIL))
        self.timeout = float(cfg.get("timeout", 45))
        self.cache = cache

    def write(self, question: str, intent: str, results: list[Any], inventory: dict, response: Any, *,
              on_delta: Delta | None = None, tenant_id: str | None = None, ledger: Ledger | None = None,
              cacheable: bool = False) -> tuple[Any, dict[str, Any]]:
        """``response`` with an LLM summary when it is grounded, else unchanged; plus metadata."""
        emit = on_delta or (lambda d: None)
        meta: dict[str, Any] = {"writer": "template"}
        if self.gateway is None or not self.enabled:
            return response, meta
        started = time.monotonic()
        targets = sorted({t for s in results or [] for t in (s.targets or [])})
        key = {"kind": "answer", "intent": intent, "targets": targets, "results": results_fingerprint(results)}
        if self.cache is not None and tenant_id and cacheable:
            hit = self.cache.lookup(tenant_id, question, key)
            if hit is not None and not grounding_problems(hit["text"], response, results, inventory, question):
                emit({"type": "token", "text": hit["text"]})
                meta = {"writer": "llm", "cache": {"hit": True, "similarity": hit["similarity"]},
                        "first_token_ms": round((time.monotonic() - started) * 1000, 1)}
                return dataclasses.replace(response, summary=hit["text"]), meta
        request = build_request(question, response, results, self.max_result_chars, self.max_tokens,
                                max_findings=self.max_findings, max_detail=self.max_detail)
        request.timeout = self.timeout
        sent: list[str] = []
        buffer = ""
        first_ms = None
        final = None
        problems: list[str] = []

        def release(piece: str) -> bool:
            nonlocal first_ms
            piece_problems = grounding_problems(piece, response, results, inventory, question)
            if piece_problems:
                problems.extend(piece_problems)
                return False
            if piece.strip():
                emit({"type": "token", "text": piece})
                first_ms = first_ms if first_ms is not None else round((time.monotonic() - started) * 1000, 1)
                sent.append(piece)
            return True

        try:
            stream = self.gateway.stream(request, tenant_id=tenant_id, ledger=ledger)
            try:
                for chunk in stream:
                    if chunk.reset:
                        buffer = ""
                        if sent:
                            emit({"type": "answer_reset", "reason": "the LLM provider failed mid-answer; retrying"})
                            sent.clear()
                        continue
                    if chunk.done:
                        final = chunk.response
                        break
                    buffer += chunk.text
                    ends = list(_WORD_END.finditer(buffer))
                    if ends:  # every word followed by a space is complete: check it, send it
                        piece, buffer = buffer[:ends[-1].end()], buffer[ends[-1].end():]
                        if not release(piece):
                            break
            finally:
                stream.close()
            if not problems and buffer.strip():
                release(buffer)
        except ServerFlowError as exc:
            if sent:
                emit({"type": "answer_reset", "reason": exc.info.message})
            meta.update(fallback_reason=f"{exc.code}: {exc.info.message}", llm_error=exc.as_dict())
            return response, meta
        text = "".join(sent).strip()
        if problems or not text:
            if sent:
                emit({"type": "answer_reset", "reason": "the LLM answer was not supported by the results"})
            meta["fallback_reason"] = ("ungrounded: " + "; ".join(problems)) if problems else "the LLM wrote nothing"
            if final is not None:
                meta.update({k: v for k, v in final.meta().items() if k in ("provider", "model", "tokens")})
            return response, meta
        meta = {"writer": "llm", "grounded": True, "answer_ms": round((time.monotonic() - started) * 1000, 1),
                "first_token_ms": first_ms}
        if final is not None:
            meta.update({k: v for k, v in final.meta().items() if k not in ("latency_ms", "first_token_ms")})
        if self.cache is not None and tenant_id and cacheable:
            self.cache.store(tenant_id, question, key, {"text": text})
        return dataclasses.replace(response, summary=text), meta
