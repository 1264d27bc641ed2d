"""Chat reads and dry planning for the runners and the API: settings in, JSON-safe dicts out."""

from __future__ import annotations

import uuid
from typing import Any

from salt_ext.chat import store as chat_store
from salt_ext.db import Database
from salt_ext.errors import ServerFlowError
from salt_ext.inventory import store as inventory_store
from salt_ext.pipeline import plan_question


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ServerFlowError("AI001", f"{value!r} is not a conversation id") from None


def plan(settings: dict[str, Any], question: str, conversation_id: str | None = None,
         db: Database | None = None) -> dict[str, Any]:
    """The plan for ``question`` against the live inventory, executing nothing."""
    own = db is None
    db = db or Database.from_settings(settings)
    try:
        with db.tenant(settings["tenant_id"]) as conn:
            servers, _ = inventory_store.list_servers(conn)
            history = (chat_store.recent_messages(conn, _uuid(conversation_id),
                                                  int(settings["chat"]["history"]))
                       if conversation_id else [])
    finally:
        if own:
            db.close()
    result = plan_question(question, servers, [{"role": m["role"], "content": m["content"]} for m in history],
                           max_chars=int(settings["chat"]["max_message_chars"]))
    return result.as_dict()


def conversations(settings: dict[str, Any], limit: int = 50) -> list[dict[str, Any]]:
    db = Database.from_settings(settings)
    try:
        with db.tenant(settings["tenant_id"]) as conn:
            return chat_store.list_conversations(conn, max(1, min(int(limit), 500)))
    finally:
        db.close()


def conversation(settings: dict[str, Any], conversation_id: str) -> dict[str, Any]:
    db = Database.from_settings(settings)
    try:
        with db.tenant(settings["tenant_id"]) as conn:
            found = chat_store.get_conversation(conn, _uuid(conversation_id))
    finally:
        db.close()
    if found is None:
        raise ServerFlowError("AI001", f"no conversation {conversation_id}")
    return found
