"""Real-time events for the web: one listener on the master bus, filtered per user.

The raw salt-api ``/events`` stream shows the whole bus to anyone with a Salt
token; browsers get this instead. ``EventHub`` reads ``serverflow/...`` events
once, numbers them (a process-wide sequence), keeps the last ``capacity`` in a
ring buffer and wakes subscribers. Events that name another tenant
(``tenant_id`` in their data) are dropped. A subscriber sees only what its principal
may see (``visible``): chat events of conversations it started, action events
when it may approve or asked for the action, server status and alerts for
minions inside its tag scope. Reconnecting with ``Last-Event-ID: <n>`` replays
every buffered event after ``n`` (nothing is lost while the buffer holds it;
an id older than the buffer gets a ``reset`` event first).

Bus tags are translated to the message types of spec §5.2.3 / §5.3 by
``translate``: ``message_start``, ``content_delta``, ``action_available``,
``message_end``, ``error``, ``action_update``, ``server_status``, ``alert``.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from salt_ext.chat.client import describe_delta

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    id: int
    type: str  # the message type sent to the browser
    data: dict[str, Any]
    conversation_id: str | None = None
    request_id: str | None = None
    action_id: str | None = None
    minion_id: str | None = None
    owner: str | None = None  # who started the conversation / asked for the action
    created: float = 0.0


def sse(event: Event | None = None, *, comment: str | None = None, retry_ms: int | None = None) -> bytes:
    """One Server-Sent Events frame (a comment keeps proxies and the client awake)."""
    if event is None:
        lines = []
        if retry_ms is not None:
            lines.append(f"retry: {retry_ms}")
        lines.append(f": {comment or 'keep-alive'}")
        return ("\n".join(lines) + "\n\n").encode()
    payload = json.dumps(event.data, default=str, ensure_ascii=False, separators=(",", ":"))
    # json.dumps escapes newlines inside strings, so the payload is one line
    return f"id: {event.id}\nevent: {event.type}\ndata: {payload}\n\n".encode()


def _chat_text(data: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, text) for a chat delta worth showing, else None."""
    kind = data.get("type")
    if kind in ("plan", "step", "result", "preview"):
        line = describe_delta(data)
        return (kind, line + "\n") if line else None
    if kind == "notice":
        text = data.get("message") or data.get("text") or ""
        return ("notice", str(text) + "\n") if text else None
    if kind == "answer":
        return None  # the whole answer arrives with message_end; the text deltas came before
    text = data.get("delta") if isinstance(data.get("delta"), str) else data.get("text")
    if isinstance(text, str) and text:
        return ("text", text)
    return None


def translate(tag: str, data: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Bus event -> [(type, payload, routing)]; routing holds conversation/action/minion ids."""
    parts = tag.split("/")
    if len(parts) < 4 or parts[0] != "serverflow":
        return []
    area, key, verb = parts[1], parts[2], parts[3]
    if area == "chat" and key != "request":
        base = {"conversation_id": key, "request_id": data.get("request_id")}
        route = {"conversation_id": key, "request_id": data.get("request_id")}
        if verb == "delta":
            found = _chat_text(data)
            if found is None:
                return []
            kind, text = found
            payload = {**base, "delta": text, "kind": kind}
            if kind == "plan":
                payload["plan"] = data.get("plan")
            return [("content_delta", payload, route)]
        if verb == "action":
            payload = {**base, "action_id": data.get("action_id"), "label": data.get("label"),
                       "description": data.get("reason") or data.get("label"),
                       "function": data.get("function"), "targets": data.get("targets") or [],
                       "args": data.get("args") or {}, "preview": data.get("preview"),
                       "requires_confirmation": True}
            return [("action_available", payload, {**route, "action_id": data.get("action_id")})]
        if verb == "done":
            llm = data.get("llm") or {}
            tokens = llm.get("tokens") if isinstance(llm.get("tokens"), int) else \
                sum(v for v in (llm.get("usage") or {}).values() if isinstance(v, int)) if llm else 0
            payload = {**base, "message_id": data.get("message_id"), "tokens_used": tokens or 0,
                       "text": data.get("text"), "response": data.get("response"),
                       "intent": data.get("intent"), "actions": data.get("actions") or [],
                       "executions": data.get("executions") or [], "timings": data.get("timings")}
            return [("message_end", payload, route)]
        if verb == "error":
            return [("error", {**base, "error": data.get("error") or {}}, route)]
        return []
    if area == "action":
        payload = {"action_id": key, "status": verb, "by": data.get("by"), "jid": data.get("jid")}
        return [("action_update", payload, {"action_id": key})]
    if area == "server" and verb in ("connected", "disconnected"):
        payload = {"server_id": key, "minion_id": key,
                   "status": "online" if verb == "connected" else "offline"}
        if isinstance(data.get("metrics"), dict):
            payload["metrics"] = data["metrics"]
        return [("server_status", payload, {"minion_id": key})]
    if area == "alert" and verb in ("triggered", "resolved"):
        minion = data.get("minion_id") or data.get("server_id")
        payload = {"alert_id": key, "state": verb, "severity": data.get("severity"),
                   "server_id": data.get("server_id") or minion, "minion_id": minion,
                   "title": data.get("title"), "description": data.get("description"),
                   "resolution": data.get("resolution"), "metric_name": data.get("metric_name"),
                   "metric_value": data.get("metric_value"), "threshold": data.get("threshold"),
                   "created_at": data.get("created_at")}
        return [("alert", payload, {"minion_id": minion})]
    return []


class Visibility:
    """Decides whether a principal may see an event; owners of things come from lookups."""

    def __init__(self, conversation_owner: Callable[[str], str | None],
                 action_owner: Callable[[str], str | None],
                 minion_tags: Callable[[str], set[str] | None]) -> None:
        self.conversation_owner = conversation_owner
        self.action_owner = action_owner
        self.minion_tags = minion_tags

    def visible(self, principal: Any, event: Event) -> bool:
        me = (principal.email or "").lower()
        if event.conversation_id:
            owner = event.owner or self.conversation_owner(event.conversation_id)
            return bool(owner) and owner.lower() == me
        if event.action_id:
            if "approve" in principal.permissions:
                return True
            owner = event.owner or self.action_owner(event.action_id)
            return bool(owner) and owner.lower() == me
        if event.minion_id is not None or event.type in ("server_status", "alert"):
            scope = set(principal.tags or ())
            if not scope:
                return True
            tags = self.minion_tags(event.minion_id or "") or set()
            return bool(scope & tags)
        return "administer" in principal.permissions


class EventHub:
    """Sequence-numbered ring buffer fed by ``publish`` (from the bus thread or tests)."""

    def __init__(self, visibility: Visibility, capacity: int = 5000, tenant_id: str | None = None) -> None:
        self.visibility = visibility
        self.tenant_id = tenant_id  # events naming another tenant are dropped
        self.capacity = capacity
        self._events: collections.deque[Event] = collections.deque(maxlen=capacity)
        self._seq = int(time.time() * 1000) * 1000  # ids keep growing across restarts
        self._cond = threading.Condition()
        self._owners: dict[str, str] = {}  # conversation id -> user, for requests we fired
        self.thread: threading.Thread | None = None

    # -- input ------------------------------------------------------------------------------
    def claim_conversation(self, conversation_id: str, user: str) -> None:
        with self._cond:
            self._owners[conversation_id] = user

    def publish(self, tag: str, data: dict[str, Any]) -> list[Event]:
        made: list[Event] = []
        named = (data or {}).get("tenant_id")
        if self.tenant_id and named and str(named) != self.tenant_id:
            return made
        for kind, payload, route in translate(tag, data or {}):
            with self._cond:
                self._seq += 1
                cid = route.get("conversation_id")
                event = Event(self._seq, kind, payload, conversation_id=cid,
                              request_id=route.get("request_id"), action_id=route.get("action_id"),
                              minion_id=route.get("minion_id"),
                              owner=self._owners.get(cid) if cid else None, created=time.time())
                self._events.append(event)
                self._cond.notify_all()
            made.append(event)
        return made

    @property
    def last_id(self) -> int:
        with self._cond:
            return self._seq

    # -- output -----------------------------------------------------------------------------
    def _after(self, after: int) -> tuple[list[Event], bool]:
        """Events with id > after, and whether some may have been dropped from the buffer."""
        with self._cond:
            events = [e for e in self._events if e.id > after]
            gap = bool(self._events) and after < self._events[0].id - 1 and after > 0
            return events, gap

    def stream(self, principal: Any, after: int, *, match: Callable[[Event], bool] | None = None,
               until: Callable[[Event], bool] | None = None, heartbeat: float = 15.0,
               max_seconds: float = 3600.0) -> Iterator[Event | None]:
        """Visible events after ``after``; None every ``heartbeat`` s of silence; stops after ``until``."""
        deadline = time.monotonic() + max_seconds
        cursor = after
        events, gap = self._after(cursor)
        if gap:
            yield Event(cursor, "reset", {"reason": "events were dropped; reload the conversation"})
        while time.monotonic() < deadline:
            for event in events:
                cursor = max(cursor, event.id)
                if match is not None and not match(event):
                    continue
                if not self.visibility.visible(principal, event):
                    continue
                yield event
                if until is not None and until(event):
                    return
            with self._cond:
                if self._seq <= cursor:
                    self._cond.wait(timeout=heartbeat)
                woke = self._seq > cursor
            if not woke:
                yield None
            events, _ = self._after(cursor)

    # -- the bus ----------------------------------------------------------------------------
    def start_bus_listener(self, opts: dict[str, Any]) -> threading.Thread:
        """Follow ``serverflow/`` events on the master bus in a daemon thread (reconnects)."""
        def run() -> None:
            import salt.utils.event

            while True:
                bus = None
                try:
                    bus = salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=True)
                    bus.subscribe("serverflow/")
                    while True:
                        event = bus.get_event(wait=5, tag="serverflow/", full=True)
                        if event and isinstance(event.get("data"), dict):
                            self.publish(event["tag"], event["data"])
                except Exception:  # the master restarted; try again
                    log.warning("serverflow api: event bus listener failed; reconnecting", exc_info=True)
                    time.sleep(2)
                finally:
                    if bus is not None:
                        try:
                            bus.destroy()
                        except Exception:
                            pass

        self.thread = threading.Thread(target=run, name="serverflow-api-events", daemon=True)
        self.thread.start()
        return self.thread
