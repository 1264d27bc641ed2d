"""The grounded writer: the LLM writes the summary, the data decides whether it is kept.

The template responder runs first (its findings, evidence, suggested actions
and follow-ups stay as they are). The LLM then gets the question and the
findings (compact: the first few, details cut short; raw results only when
``max_result_chars`` asks for them) and writes the summary and what to do,
streamed. The request is laid out for llama.cpp's prefix reuse: the system
rules come first and never change, then ``Question: ...``, then the findings,
those known first (from the steps that finished first) first: ``prefix_request``
lets the local model read the question and each step's findings while the
slower steps still run, so the first answer token waits only for the last
step's findings.

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
# characters of a warning's detail (0: its title alone, which carries its figure; every prompt
# token read after the last step's results delays the first answer token by ~10 ms on 2 cores)
MAX_DETAIL = 0
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


def single_target(results: list[Any]) -> str | None:
    """The one minion every step targeted, if there is only one."""
    targets = {t for step in results or [] for t in (step.targets or [])}
    return next(iter(targets)) if len(targets) == 1 else None


def finding_lines(response: Any, *, max_findings: int | None = MAX_FINDINGS, max_detail: int = MAX_DETAIL,
                  target: str | None = None) -> list[str]:
    """The prompt's findings, the first ``max_findings`` (None: all), each tagged with its severity
    (the model's cue for what is a problem): an info finding as its brief (a few words that carry
    its figure), a warning or worse as its title and its detail cut to ``max_detail`` characters
    (0: none). Findings about ``target`` are not prefixed with it (the header names it)."""
    lines = []
    for f in response.findings[:max_findings]:
        who = f"{f.minion_id}: " if f.minion_id and f.minion_id != target else ""
        if f.severity == "info":
            lines.append(f"- [info] {who}{f.brief or f.title}")
            continue
        detail = f.detail if max_detail > 0 else ""
        if len(detail) > max_detail:
            detail = detail[:max_detail].rsplit(" ", 1)[0] + " ..."
        lines.append(f"- [{f.severity}] {who}{f.title}: {detail}".rstrip(": "))
    return lines


def merge_lines(read: list[str], lines: list[str], limit: int | None = None) -> list[str]:
    """The findings lines of the prompt: those already read that are still findings, in the order
    they were read, then the first ``limit`` of ``lines`` not read yet (what keeps the model's
    prompt a growing prefix while the steps' results come in: a line already read costs nothing,
    so a more severe finding arriving later does not push it out)."""
    return [line for line in read if line in lines] + [line for line in lines[:limit] if line not in read]


def _findings_header(question: str, target: str | None) -> str:
    return _question_line(question) + (f"Findings on {target}:" if target else "Findings:")


def prefix_request(question: str, lines: list[str] | None = None, target: str | None = None) -> LLMRequest:
    """The start of every answer to ``question`` (the rules, the question, the findings known so far),
    for the local model to read while Salt runs."""
    text = _findings_header(question, target) + "\n" + "\n".join(lines) if lines else _question_line(question)
    return LLMRequest(messages=[Message("system", SYSTEM_RULES), Message("user", text)],
                      max_tokens=1, temperature=0.0, purpose="answer")


def build_request(question: str, response: Any, results: list[Any], max_result_chars: int, max_tokens: int, *,
                  max_findings: int = MAX_FINDINGS, max_detail: int = MAX_DETAIL,
                  read: list[str] | None = None) -> LLMRequest:
    """The writer's prompt; findings lines already in ``read`` (read ahead) come first."""
    target = single_target(results)
    found = finding_lines(response, max_findings=None, max_detail=max_detail, target=target)
    lines = [_findings_header(question, target), *merge_lines(read or [], found, max_findings)]
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

    def lines(self, response: Any, read: list[str], target: str | None = None) -> list[str]:
        """The findings lines of the prompt for ``response``, after those already ``read``."""
        found = finding_lines(response, max_findings=None, max_detail=self.max_detail, target=target)
        return merge_lines(read, found, self.max_findings)

    def write(self, question: str, intent: str, results: list[Any], inventory: dict, response: Any, *,
              on_delta: Delta | None = None, tenant_id: str | None = None, ledger: Ledger | None = None,
              cacheable: bool = False, read: list[str] | None = None) -> tuple[Any, dict[str, Any]]:
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
                                max_findings=self.max_findings, max_detail=self.max_detail, read=read)
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
                "first_token_ms": first_ms, "read_ahead_findings": len(read or [])}
        if final is not None:
            meta.update({k: v for k, v in final.meta().items() if k not in ("latency_ms", "first_token_ms")})
        if self.cache is not None and tenant_id and cacheable:
            self.cache.store(tenant_id, question, key, {"text": text})
        return dataclasses.replace(response, summary=text), meta
