"""What the chat turn uses: plan with the LLM, write with the LLM, fall back, account for it.

``LLMAssist.from_settings(settings)`` reads ``serverflow:llm``. With no provider
configured (the default) every call is the offline planner / template
responder, and the metadata says so. Otherwise:

- ``plan``: the hybrid planner (``planner.HybridPlanner``), offline on any LLM failure;
- ``read_ahead`` / ``read_along``: while Salt runs, the local model reads the writer's
  prompt as it grows: its rules and the question first, then the findings of each step
  that has finished, so the answer's first token waits only for the last step's findings;
- ``write``: the grounded writer (``writer.GroundedWriter``), template on any failure;
- ``turn_meta``: provider, model, tokens, cost and fallback reasons for the message
  metadata and ``messages.tokens_used``;
- ``record``: one ``llm_usage`` row per call, in the message's transaction.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from salt_ext.errors import ServerFlowError
from salt_ext.llm.budget import Ledger, record_usage
from salt_ext.llm.cache import SemanticCache
from salt_ext.llm.gateway import Gateway
from salt_ext.llm.planner import HybridPlanner
from salt_ext.llm.writer import GroundedWriter, prefix_request, single_target
from salt_ext.pipeline import lexicon
from salt_ext.responder import respond

log = logging.getLogger(__name__)


class PromptReader:
    """A thread that makes the model read the newest prompt prefix offered (older offers are
    dropped: the newest one contains them). ``lines`` are the findings lines offered so far."""

    def __init__(self, prefill: Callable[[Any], Any]) -> None:
        self._prefill = prefill
        self._cond = threading.Condition()
        self._pending: Any = None
        self._closed = False
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._run, name="serverflow-llm-read-ahead", daemon=True)
        self._thread.start()

    def offer(self, request: Any, lines: list[str] | None = None) -> None:
        with self._cond:
            if self._closed:
                return
            self._pending = request
            if lines is not None:
                self.lines = lines
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._pending is None:
                    return
                request, self._pending = self._pending, None
            try:
                self._prefill(request)
            except Exception as exc:  # noqa: BLE001 - reading ahead only saves time
                log.warning("serverflow: the LLM could not read ahead: %s", exc)

    def close(self) -> list[str]:
        """Stop reading (what is being read is finished: the answer starts from it); the lines offered."""
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify()
        self._thread.join()
        return self.lines


@dataclass
class Turn:
    """The LLM side of one chat turn."""

    ledger: Ledger = field(default_factory=Ledger)
    plan: dict[str, Any] = field(default_factory=dict)
    answer: dict[str, Any] = field(default_factory=dict)
    reader: PromptReader | None = None

    def meta(self) -> dict[str, Any]:
        fallback = [m["fallback_reason"] for m in (self.plan, self.answer) if m.get("fallback_reason")]
        providers = sorted({e.provider for e in self.ledger.entries})
        out = {"planner": self.plan.get("planner", "offline"), "writer": self.answer.get("writer", "template"),
               "tokens": self.ledger.summary(), "providers": providers,
               "llm": {"plan": _slim(self.plan), "answer": _slim(self.answer)}}
        if fallback:
            out["fallback_reason"] = fallback[0]  # the first, as a sentence; all of them below
            out["fallback_reasons"] = fallback
        return out

    def stop_reading(self) -> list[str]:
        """End the read-ahead (idempotent); the findings lines it was given."""
        reader, self.reader = self.reader, None
        return reader.close() if reader is not None else []

    @property
    def tokens_used(self) -> int:
        return self.ledger.tokens

    def notices(self, stage: str = "plan") -> list[dict[str, Any]]:
        """What to tell the user when the LLM failed and the offline path answered (AI002, RATE001, AI003)."""
        meta = self.plan if stage == "plan" else self.answer
        error = meta.get("llm_error")
        if not error:
            return []
        who = "the offline planner" if stage == "plan" else "the template responder"
        return [{"code": error["code"], "stage": stage,
                 "text": f"{error['code']}: {error['message']} - answered by {who} instead."}]


def _slim(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if k not in ("proposal", "candidates")}


class LLMAssist:
    def __init__(self, gateway: Gateway | None, *, cache: SemanticCache | None = None, disabled_reason: str | None = None,
                 planner_settings: Mapping[str, Any] | None = None, writer_settings: Mapping[str, Any] | None = None) -> None:
        self.gateway = gateway
        self.cache = cache
        self.disabled_reason = disabled_reason
        self.planner = HybridPlanner(gateway, settings=dict(planner_settings or {}) or None, cache=cache)
        self.writer = GroundedWriter(gateway, settings=dict(writer_settings or {}) or None, cache=cache)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, warm: bool = True) -> "LLMAssist":
        try:
            gateway = Gateway.from_settings(settings)
        except (ServerFlowError, ImportError) as exc:
            reason = exc.info.message if isinstance(exc, ServerFlowError) else f"an LLM SDK is missing: {exc}"
            log.error("serverflow: LLM disabled, answering offline: %s", reason)
            return cls(None, disabled_reason=reason)
        if gateway is None:
            return cls(None, disabled_reason="no LLM configured")
        cache = None
        try:
            cache = SemanticCache.from_settings(settings, provider=gateway.primary)
        except Exception as exc:  # noqa: BLE001 - the cache is optional
            log.warning("serverflow: LLM cache disabled: %s", exc)
        log.info("serverflow: LLM providers: %s", gateway.describe())
        assist = cls(gateway, cache=cache, planner_settings=gateway.llm.section("planner"),
                     writer_settings=gateway.llm.section("writer"))
        if warm:
            assist.warm_up()
        return assist

    @property
    def enabled(self) -> bool:
        return self.gateway is not None

    def warm_up(self) -> None:
        """Load a local model in the background, so the first question does not pay for it."""
        provider = self.gateway.primary if self.gateway else None
        if provider is not None and provider.config.kind == "local":
            threading.Thread(target=self._warm, args=(provider,), name="serverflow-llm-warm", daemon=True).start()

    @staticmethod
    def _warm(provider: Any) -> None:
        try:
            provider.llama  # noqa: B018 - loads the model
        except Exception as exc:  # noqa: BLE001
            log.error("serverflow: the local model could not be loaded: %s", exc)

    def turn(self) -> Turn:
        return Turn()

    def plan(self, turn: Turn, question: str, servers: Sequence[Any], history: list[dict] | None, *,
             max_chars: int, tenant_id: str):
        plan, meta = self.planner.plan(question, servers, history, max_chars=max_chars, tenant_id=tenant_id,
                                       ledger=turn.ledger)
        if self.gateway is None and self.disabled_reason and self.disabled_reason != "no LLM configured":
            meta["llm_disabled"] = self.disabled_reason  # configured, but unusable (logged at start)
        turn.plan = meta
        return plan

    def read_ahead(self, turn: Turn, question: str, plan: Any) -> None:
        """Start reading the answer's prefix into the local model while the plan's steps run (no-op otherwise)."""
        if (self.gateway is None or not self.writer.enabled or self.gateway.primary.config.kind != "local"
                or plan.refused or plan.error is not None or plan.clarification
                or not any(s.safety == "read" and not s.requires_approval for s in plan.steps)):
            return
        turn.reader = PromptReader(self.gateway.prefill)
        turn.reader.offer(prefix_request(question))

    def read_along(self, turn: Turn, question: str, plan: Any, results: list[Any], inventory: dict) -> None:
        """The steps in ``results`` have finished: let the model read their findings while the others run."""
        reader = turn.reader
        if reader is None or not results:
            return
        try:
            response = respond(question, plan.intent or "", results, inventory=inventory)
        except Exception as exc:  # noqa: BLE001 - reading ahead only saves time; the answer is made later
            log.warning("serverflow: no findings to read ahead: %s", exc)
            return
        if not hasattr(response, "findings"):
            return
        target = single_target(results)
        lines = self.writer.lines(response, reader.lines, target)
        reader.offer(prefix_request(question, lines, target), lines)

    def write(self, turn: Turn, question: str, plan: Any, results: list[Any], inventory: dict, response: Any, *,
              on_delta: Callable[[dict[str, Any]], None] | None, tenant_id: str) -> Any:
        read = turn.stop_reading()  # what it read is the start of this prompt: nothing is read twice
        if not hasattr(response, "findings"):  # an error, refusal or question back: nothing to write about
            return response
        cacheable = (plan.intent in lexicon.READ_INTENTS and not plan.requires_approval)
        response, meta = self.writer.write(question, plan.intent or "", results, inventory, response,
                                           on_delta=on_delta, tenant_id=tenant_id, ledger=turn.ledger,
                                           cacheable=cacheable, read=read)
        turn.answer = meta
        return response

    @staticmethod
    def record(conn: Any, tenant_id: str, turn: Turn, *, conversation_id: str, message_id: str,
               request_id: str | None) -> None:
        if turn.ledger.entries:
            record_usage(conn, tenant_id, turn.ledger.entries, conversation_id=conversation_id,
                         message_id=message_id, request_id=request_id)
