"""Chat requests on the master bus are signed with a key only the master's account can read.

Minions can put events on the master bus (``event.send``), so a bare
``serverflow/chat/request`` could claim any user. The engine accepts a request
only with a valid HMAC over its fields made with ``<cachedir>/serverflow/bus.key``
(mode 0600, created by the engine), recent, and not seen before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from typing import Any

from salt_ext.errors import ServerFlowError

SIGNED_FIELDS = ("request_id", "conversation_id", "message", "user", "ts")


def key_path(opts: dict[str, Any]) -> str:
    return os.path.join(opts["cachedir"], "serverflow", "bus.key")


def load_key(opts: dict[str, Any], create: bool = False) -> bytes:
    """The bus key; the engine creates it, clients only read it."""
    path = key_path(opts)
    try:
        with open(path, "rb") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        if not create:
            raise ServerFlowError("AUTH001", "no ServerFlow bus key: the engine has not started "
                                  "on this master (or this account cannot read it)") from None
    except PermissionError:
        raise ServerFlowError("AUTH003", f"cannot read {path}: run as the master's user") from None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    key = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


def _mac(key: bytes, data: dict[str, Any]) -> str:
    body = json.dumps({f: data.get(f) for f in SIGNED_FIELDS}, sort_keys=True, default=str)
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def sign(key: bytes, data: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with ``ts`` and ``sig`` added."""
    out = {**data, "ts": time.time()}
    out["sig"] = _mac(key, out)
    return out


class Verifier:
    """Checks signature, age and single use of incoming requests."""

    def __init__(self, key: bytes, max_age: float = 60.0) -> None:
        self.key = key
        self.max_age = max_age
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, data: dict[str, Any], now: float | None = None) -> None:
        now = now or time.time()
        sig = data.get("sig")
        if not isinstance(sig, str) or not hmac.compare_digest(sig, _mac(self.key, data)):
            raise ServerFlowError("AUTH001", "chat request rejected: missing or invalid signature")
        try:
            age = now - float(data.get("ts"))
        except (TypeError, ValueError):
            raise ServerFlowError("AUTH001", "chat request rejected: no timestamp") from None
        if not -5 <= age <= self.max_age:
            raise ServerFlowError("AUTH002", f"chat request rejected: {age:.0f}s old")
        with self._lock:
            for rid, seen in list(self._seen.items()):
                if now - seen > self.max_age * 2:
                    del self._seen[rid]
            rid = str(data.get("request_id"))
            if rid in self._seen:
                raise ServerFlowError("AUTH001", "chat request rejected: replayed request id")
            self._seen[rid] = now
