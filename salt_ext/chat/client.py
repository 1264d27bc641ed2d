"""Asking the engine from outside it (the runner, tests, benchmarks): fire a request on the
master bus and follow the conversation's events until the answer is done."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Callable

from salt_ext.chat.signing import load_key, sign
from salt_ext.errors import ServerFlowError

CHAT_REQUEST = "serverflow/chat/request"


def describe_delta(data: dict[str, Any]) -> str | None:
    """One progress line for a delta event (None for deltas not worth a line)."""
    kind = data.get("type")
    if kind == "plan":
        plan = data.get("plan") or {}
        steps = ", ".join(s["function"] for s in plan.get("steps", [])) or "no step"
        targets = ", ".join(plan.get("targets") or []) or "no server"
        return f"plan: {plan.get('intent')} on {targets}: {steps}"
    if kind == "step":
        return f"running {data['function']} on {', '.join(data['targets'])} (jid {data['jid']})"
    if kind == "result":
        state = "answered" if data.get("success") else "answered with an error"
        return f"{data['minion']} {state} {data['function']}"
    if kind == "preview":
        return f"preview of {data['function']} taken on {data['minion']}"
    return None


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_actions(actions: list[dict[str, Any]]) -> str:
    """The proposed actions of an answer with their previews, for a terminal ('' when none)."""
    if not actions:
        return ""
    lines = ["Proposed, waiting for approval (salt-run serverflow.approve <id> / serverflow.reject <id>):"]
    for action in actions:
        args = " ".join(f"{k}={_short(v, 60)}" for k, v in (action.get("args") or {}).items())
        lines.append(f"  {action['action_id']}  {action['function']} on {', '.join(action['targets'])}"
                     + (f"  {args}" if args else ""))
        preview = action.get("preview") or {}
        if preview:
            lines.append(f"    preview: {preview.get('note', preview.get('mode'))}"
                         + (f" (jid {preview['jid']})" if preview.get("jid") else ""))
        for minion, states in (preview.get("would_change") or {}).items():
            for state in states or [{"comment": "no change"}]:
                lines.append(f"      {minion}: {_short(state.get('comment'))}")
        if not preview.get("would_change"):
            for minion, ret in (preview.get("returns") or {}).items():
                lines.append(f"      {minion}: {_short(ret.get('ret'))}")
        for minion in preview.get("missing") or []:
            lines.append(f"      {minion}: did not answer")
    return "\n".join(lines)


def ask(opts: dict[str, Any], question: str, *, conversation_id: str | None = None,
        user: str | None = None, timeout: float = 120,
        on_event: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Ask the engine and wait for its ``done`` payload; errors raise ServerFlowError.

    ``user`` is who Salt authenticated; by default the local account running this
    code on the master (mapped to a role by ``serverflow:cli_identities``).
    """
    import getpass

    import salt.utils.event

    user = user or getpass.getuser()
    try:
        conversation_id = str(uuid.UUID(str(conversation_id))) if conversation_id else str(uuid.uuid4())
    except ValueError:
        raise ServerFlowError("AI001", f"conversation id {conversation_id!r} is not a UUID; "
                              "use an id printed by `salt-run serverflow.conversations`") from None
    request_id = uuid.uuid4().hex
    prefix = f"serverflow/chat/{conversation_id}/"
    bus = salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=True)
    try:
        bus.subscribe(prefix)
        request = sign(load_key(opts), {"conversation_id": conversation_id, "request_id": request_id,
                                        "message": question, "user": user})
        bus.fire_event(request, CHAT_REQUEST)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = bus.get_event(wait=min(1.0, max(0.05, deadline - time.monotonic())), tag=prefix,
                                  full=True)
            if not event:
                continue
            data = event.get("data") or {}
            if data.get("request_id") != request_id:
                continue
            kind = event["tag"].rsplit("/", 1)[-1]
            if on_event:
                on_event(kind, data)
            if kind == "done":
                return data
            if kind == "error":
                error = data.get("error") or {}
                raise ServerFlowError(error.get("code", "AI001"), error.get("message", "failed"),
                                      conversation_id=conversation_id)
        raise ServerFlowError("EXEC002", f"no answer from the serverflow engine within {timeout:.0f}s; "
                              "is `engines: [serverflow: {}]` in the master config and the master "
                              "running? (`salt-run serverflow.health`)", conversation_id=conversation_id)
    finally:
        bus.destroy()
